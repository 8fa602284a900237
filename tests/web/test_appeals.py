"""Appeals (诉求): raised from a history line, an event or nothing in particular, only about the
member's own data, with a note that must make sense; followed through the organisation's
answer to the rider's say on it."""

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Appeal, LedgerEntry, PartnerMember

from ..factories import AppealFactory, EventFactory
from ..partner_api import HOME, STATION, shift
from .conftest import sign_in, text_of

CITY = "sx.dt"
NOTE = "这次值守只算了 3 小时，实际是 4 小时。"


def member_id(ref: str) -> int:
    return db.session.scalar(select(PartnerMember.member_id).where(PartnerMember.ref == ref))


def appeals() -> list[Appeal]:
    db.session.expire_all()
    return list(db.session.scalars(select(Appeal).order_by(Appeal.id)))


def appeal_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Appeal))


@pytest.fixture
def entry(partner_api, rider) -> LedgerEntry:
    """r1's line for a shift in the city (so its organisation is not r1's home district)."""
    response = partner_api.post_event(shift("s1", org=CITY))
    assert response.status_code == 201, response.json
    return db.session.scalar(select(LedgerEntry))


@pytest.fixture
def stranger(app_ctx, partner_api):
    """r2, another member, with a line, an event and an appeal of their own."""
    partner_api.put_member("r2", name="李大明")
    assert partner_api.post_event(shift("s2", member="r2")).status_code == 201
    them = member_id("r2")
    line = db.session.scalar(select(LedgerEntry).where(LedgerEntry.member_id == them))
    event = EventFactory(member_id=them, status="rejected", reason="别人的理由")
    appeal = AppealFactory(member_id=them, note="别人的诉求内容", status="answered",
                           answer="别人的答复")  # fmt: skip
    db.session.commit()
    return {"entry": line.id, "event": event.id, "appeal": appeal.id}


def answered(appeal_id: int, text: str = "已核实，补记 5 分。") -> None:
    """Answer as the organisation would (its console is issue #7)."""
    row = db.session.get(Appeal, appeal_id)
    row.answer, row.answered_at, row.status = text, dt.datetime.now(dt.UTC), "answered"
    db.session.commit()


def test_appeals_need_a_session(client, rider):
    for path in ("/m/appeals", "/m/appeals/new", "/m/appeals/1"):
        assert client.get(path).status_code == 401


def test_raise_an_appeal_from_a_history_line(web, entry):
    form = web.get(f"/m/appeals/new?entry={entry.id}")
    page = text_of(form)
    assert form.status_code == 200 and "党员先锋岗值守：5 × min(3 小时, 8) = 15 分" in page
    html = form.get_data(as_text=True)
    assert f'name="entry" value="{entry.id}"' in html and 'name="csrf"' in html
    assert 'value="points" checked' in html  # a line's points, by default
    assert '<label for="note">' in html

    response = web.post("/m/appeals/new", {"entry": entry.id, "kind": "points",
                                           "note": f"  {NOTE}\n"})  # fmt: skip
    (appeal,) = appeals()
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/m/appeals/{appeal.id}")
    assert (appeal.member_id, appeal.kind, appeal.note) == (member_id("r1"), "points", NOTE)
    assert appeal.ledger_entry_id == entry.id and appeal.event_id == entry.event_id
    assert appeal.org_code == CITY  # where the activity happened
    assert appeal.status == "open"
    detail = text_of(web.get(response.headers["Location"]))
    assert "诉求已提交" in detail and NOTE in detail and "已提交，等待处理" in detail
    assert "党员先锋岗值守：5 × min(3 小时, 8) = 15 分" in detail and "还没有答复" in detail


def test_raise_an_appeal_about_a_refused_event(web, rider):
    event = EventFactory(member_id=member_id("r1"), org_code=STATION, status="rejected",
                         type="governance.hazard_report", reason="照片看不清")  # fmt: skip
    db.session.commit()
    form = web.get(f"/m/appeals/new?event={event.id}")
    assert "隐患上报" in text_of(form) and "照片看不清" in text_of(form)
    assert 'value="missing" checked' in form.get_data(as_text=True)
    response = web.post("/m/appeals/new", {"event": event.id, "kind": "missing",
                                           "note": "照片里能看到井盖缺失。"})  # fmt: skip
    assert response.status_code == 302
    (appeal,) = appeals()
    assert (appeal.event_id, appeal.ledger_entry_id, appeal.org_code) == (event.id, None, STATION)
    assert "照片看不清" in text_of(web.get(response.headers["Location"]))


def test_raise_an_appeal_about_an_activity_that_is_missing_altogether(web):
    form = web.get("/m/appeals/new")
    assert "没有记上积分的活动" in text_of(form)
    assert 'name="entry"' not in form.get_data(as_text=True)
    response = web.post("/m/appeals/new", {"kind": "missing",
                                           "note": "11 月 20 日的志愿服务没有记录。"})  # fmt: skip
    assert response.status_code == 302
    (appeal,) = appeals()
    assert appeal.org_code == HOME  # the member's primary organisation
    assert appeal.ledger_entry_id is None and appeal.event_id is None
    assert "没有关联的记录" in text_of(web.get(response.headers["Location"]))


@pytest.mark.parametrize(
    ("kind", "note", "message"),
    [
        ("points", "", "至少 5 个字"),
        ("points", "     \n  ", "至少 5 个字"),
        ("points", "只有四字", "至少 5 个字"),
        ("points", "长" * 501, "不超过 500 个字"),
        ("wrong", NOTE, "请选择问题类型"),
        ("", NOTE, "请选择问题类型"),
    ],
)
def test_a_bad_appeal_is_shown_again_with_what_was_typed_and_writes_nothing(
    web, entry, kind, note, message
):
    response = web.post("/m/appeals/new", {"entry": entry.id, "kind": kind, "note": note})
    assert response.status_code == 422
    assert message in text_of(response) and "诉求还没有提交" in text_of(response)
    html = response.get_data(as_text=True)
    assert f'name="entry" value="{entry.id}"' in html  # still about the same line
    if note.strip():
        assert note in html  # what the rider typed is kept
    assert appeal_count() == 0


def test_notes_of_five_and_of_five_hundred_characters_are_fine(web):
    for note in ("五个字正好", "长" * 500, "  " + "长" * 500 + "  "):
        assert web.post("/m/appeals/new", {"kind": "other", "note": note}).status_code == 302
    assert [len(a.note) for a in appeals()] == [5, 500, 500]


def test_a_second_appeal_about_the_same_line_leads_to_the_first(web, entry):
    first = web.post("/m/appeals/new", {"entry": entry.id, "kind": "points", "note": NOTE})
    assert "已经就这件事提出过诉求" in text_of(web.get(f"/m/appeals/new?entry={entry.id}"))
    again = web.post("/m/appeals/new", {"entry": entry.id, "kind": "points", "note": NOTE})
    assert again.headers["Location"] == first.headers["Location"]
    assert appeal_count() == 1
    assert "已经就这件事提出过诉求" in text_of(web.get(again.headers["Location"]))


def test_the_list_shows_status_in_words_and_age(web):
    me = member_id("r1")
    old = AppealFactory(member_id=me, kind="points", note="旧的诉求说明",
                        created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=3))  # fmt: skip
    AppealFactory(member_id=me, kind="other", note="新的诉求说明", status="resolved")
    db.session.commit()
    answered(old.id)
    page = text_of(web.get("/m/appeals"))
    assert page.index("新的诉求说明") < page.index("旧的诉求说明")
    assert "其他问题" in page and "已解决" in page
    assert "积分有误" in page and "已答复，等你评价" in page
    assert "3天前" in page
    assert f'href="/m/appeals/{old.id}"' in web.get("/m/appeals").get_data(as_text=True)


def test_an_empty_list_says_how_to_start(web):
    page = text_of(web.get("/m/appeals"))
    assert "你还没有提出过诉求" in page and "提出诉求" in page


def test_the_answer_is_shown_and_the_rider_says_it_resolved_it(web, entry):
    response = web.post("/m/appeals/new", {"entry": entry.id, "kind": "points", "note": NOTE})
    (appeal,) = appeals()
    assert "这个答复解决了你的问题吗" not in text_of(web.get(response.headers["Location"]))
    answered(appeal.id, "已核实：按 4 小时补记 5 分。")
    detail = web.get(f"/m/appeals/{appeal.id}")
    page = text_of(detail)
    assert "已核实：按 4 小时补记 5 分。" in page and "答复于" in page
    assert "这个答复解决了你的问题吗？" in page
    assert f'action="/m/appeals/{appeal.id}/feedback"' in detail.get_data(as_text=True)

    done = web.post(f"/m/appeals/{appeal.id}/feedback", {"resolved": "yes"})
    assert done.status_code == 302
    (appeal,) = appeals()
    assert (appeal.status, appeal.resolved) == ("resolved", True)
    assert appeal.feedback_at is not None
    page = text_of(web.get(f"/m/appeals/{appeal.id}"))
    assert "谢谢你的反馈" in page and "你的评价：解决了" in page
    assert "这个答复解决了你的问题吗" not in page


def test_an_answer_that_did_not_help_reopens_the_appeal(web):
    web.post("/m/appeals/new", {"kind": "missing", "note": "周末的志愿服务没有积分。"})
    (appeal,) = appeals()
    answered(appeal.id)
    web.post(f"/m/appeals/{appeal.id}/feedback", {"resolved": "no"})
    (appeal,) = appeals()
    assert (appeal.status, appeal.resolved) == ("reopened", False)
    page = text_of(web.get(f"/m/appeals/{appeal.id}"))
    assert "已转回组织重新处理" in page and "未解决，重新处理中" in page


def test_feedback_is_refused_until_there_is_an_answer_and_given_once(web):
    web.post("/m/appeals/new", {"kind": "missing", "note": "周末的志愿服务没有积分。"})
    (appeal,) = appeals()
    response = web.post(f"/m/appeals/{appeal.id}/feedback", {"resolved": "yes"})
    assert response.status_code == 302
    page = web.get(f"/m/appeals/{appeal.id}").get_data(as_text=True)
    assert '<p class="error" role="status">现在还不能评价这条诉求' in page
    (appeal,) = appeals()
    assert (appeal.status, appeal.resolved, appeal.feedback_at) == ("open", None, None)

    answered(appeal.id)
    web.post(f"/m/appeals/{appeal.id}/feedback", {"resolved": "maybe"})
    assert appeals()[0].status == "answered"
    web.post(f"/m/appeals/{appeal.id}/feedback", {"resolved": "no"})
    web.post(f"/m/appeals/{appeal.id}/feedback", {"resolved": "yes"})  # too late: said no
    (appeal,) = appeals()
    assert (appeal.status, appeal.resolved) == ("reopened", False)


@pytest.mark.parametrize("what", ["entry", "event"])
def test_another_members_line_or_event_cannot_be_appealed(web, stranger, what):
    assert web.get(f"/m/appeals/new?{what}={stranger[what]}").status_code == 404
    response = web.post("/m/appeals/new", {what: stranger[what], "kind": "points", "note": NOTE})
    assert response.status_code == 404 and "不属于你" in text_of(response)
    assert appeal_count() == 1  # only the stranger's own


@pytest.mark.parametrize("bad", ["999999", "abc", "-3", "0", str(2**70)])
def test_a_made_up_id_is_not_found(web, bad):
    for what in ("entry", "event"):
        assert web.get(f"/m/appeals/new?{what}={bad}").status_code == 404
        assert web.post("/m/appeals/new", {what: bad, "kind": "other",
                                           "note": NOTE}).status_code == 404  # fmt: skip
    assert appeal_count() == 0


def test_another_members_appeal_cannot_be_seen_or_answered(web, stranger):
    appeal = stranger["appeal"]
    response = web.get(f"/m/appeals/{appeal}")
    assert response.status_code == 404 and "别人的" not in text_of(response)
    assert web.post(f"/m/appeals/{appeal}/feedback", {"resolved": "yes"}).status_code == 404
    assert appeals()[0].status == "answered" and appeals()[0].resolved is None
    assert "别人的诉求内容" not in text_of(web.get("/m/appeals"))
    for path in ("/m/appeals/0", f"/m/appeals/{2**70}"):
        assert web.get(path).status_code == 404


def test_the_owner_sees_their_appeal_after_the_stranger_is_refused(app_ctx, partner_api,
                                                                    stranger):  # fmt: skip
    owner = sign_in(app_ctx, partner_api, "r2")
    assert "别人的诉求内容" in text_of(owner.get(f"/m/appeals/{stranger['appeal']}"))


def test_forms_without_their_csrf_token_are_refused(web, entry):
    response = web.client.post("/m/appeals/new", data={"entry": entry.id, "kind": "points",
                                                       "note": NOTE})  # fmt: skip
    assert response.status_code == 400 and "页面已过期" in text_of(response)
    assert appeal_count() == 0
    web.post("/m/appeals/new", {"entry": entry.id, "kind": "points", "note": NOTE})
    (appeal,) = appeals()
    answered(appeal.id)
    refused = web.client.post(f"/m/appeals/{appeal.id}/feedback", data={"resolved": "yes"})
    assert refused.status_code == 400 and appeals()[0].status == "answered"


def test_the_appeal_pages_stay_small_and_script_free(web, entry):
    web.post("/m/appeals/new", {"entry": entry.id, "kind": "points", "note": NOTE})
    (appeal,) = appeals()
    answered(appeal.id)
    for path in ("/m/appeals", "/m/appeals/new", f"/m/appeals/{appeal.id}"):
        response = web.get(path)
        html = response.get_data(as_text=True)
        assert response.status_code == 200 and len(response.data) < 100_000
        assert "<script" not in html and re.search(r"<h1>", html)
