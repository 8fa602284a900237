"""Appeals (诉求) in the console: the subtree's appeals by status and age, assigning, answering,
passing up and archiving, each for the roles that handle appeals, each audited, each a
conditional change; and the whole loop with the rider page."""

import datetime as dt

import pytest
from sqlalchemy import func, select, update

from app.errors import Conflict
from app.extensions import db
from app.models import Appeal, AuditEntry, ConsoleUser, LedgerEntry
from app.services import appeal_handling

from ..factories import AppealFactory, ConsoleUserFactory
from ..partner_api import shift
from ..web.conftest import sign_in as rider_sign_in
from ..web.conftest import text_of
from .test_console import sign_in

NOTE = "这次值守只算了 3 小时，实际是 4 小时。"
ANSWER = "已核实签到记录，补记 5 分。"


def appeal_row(appeal_id: int) -> Appeal:
    db.session.expire_all()
    return db.session.get(Appeal, appeal_id)


def actions() -> list[str]:
    return list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def audit_count() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEntry))


@pytest.fixture
def staff(app_ctx, orgs):
    """Users of Pingcheng (sx.dt.pingcheng) in each role, an admin of Datong above it, a
    Pingcheng verifier who is disabled, and an admin of Taiyuan (sx.ty)."""
    for role in ("admin", "verifier", "station", "viewer"):
        ConsoleUserFactory(username=f"pc-{role}", org_code="sx.dt.pingcheng", role=role)
    ConsoleUserFactory(username="dt-admin", org_code="sx.dt", role="admin")
    gone = ConsoleUserFactory(username="pc-gone", org_code="sx.dt.pingcheng", role="verifier")
    gone.disabled_at = gone.created_at
    ConsoleUserFactory(username="ty-admin", org_code="sx.ty", role="admin")
    ConsoleUserFactory(username="sx-admin", org_code="sx", role="admin")
    db.session.commit()
    return app_ctx


@pytest.fixture
def appeal(staff) -> int:
    """An open appeal at Pingcheng, raised two days ago."""
    row = AppealFactory(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=2, hours=1))
    db.session.commit()
    return row.id


def test_pages_need_a_signed_in_user(client, orgs):
    for path in ("/console/appeals", "/console/appeals/1"):
        response = client.get(path)
        assert response.status_code == 302 and "/console/login" in response.headers["Location"]


@pytest.mark.parametrize("role", ["admin", "verifier", "station", "viewer"])
def test_every_role_reads_only_admins_and_verifiers_act(staff, appeal, role):
    user = sign_in(staff, f"pc-{role}")
    listing = user.client.get("/console/appeals")
    assert listing.status_code == 200 and "昨天的值守没有积分" in text_of(listing)
    assert "诉求" in text_of(user.client.get("/console/"))  # in the menu
    page = user.client.get(f"/console/appeals/{appeal}")
    assert page.status_code == 200 and "昨天的值守没有积分" in text_of(page)
    handles = role in ("admin", "verifier")
    assert (f"/console/appeals/{appeal}/answer" in page.get_data(as_text=True)) is handles
    expected = 302 if handles else 403
    for action, form in (("assign", {"me": "1"}), ("answer", {"answer": ANSWER}),
                         ("archive", {}), ("escalate", {})):  # fmt: skip
        assert user.post(f"/console/appeals/{appeal}/{action}", form).status_code == expected
    if not handles:
        assert appeal_row(appeal).status == "open" and audit_count() == 0


def test_another_subtree_cannot_see_or_change_an_appeal(staff, appeal):
    outsider = sign_in(staff, "ty-admin")
    assert "昨天的值守没有积分" not in text_of(outsider.client.get("/console/appeals"))
    for appeal_id in (appeal, 999999, 2**63 - 1):
        assert outsider.client.get(f"/console/appeals/{appeal_id}").status_code == 404
        for action, form in (("assign", {"assignee": "ty-admin"}), ("answer", {"answer": ANSWER}),
                             ("escalate", {}), ("archive", {})):  # fmt: skip
            response = outsider.post(f"/console/appeals/{appeal_id}/{action}", form)
            assert response.status_code == 404
    assert outsider.client.get(f"/console/appeals/{2**63}").status_code == 404
    row = appeal_row(appeal)
    assert (row.status, row.assigned_to, row.answer) == ("open", None, None)
    assert audit_count() == 0


def test_the_list_shows_age_puts_reopened_first_and_filters_by_status(staff, appeal):
    now = dt.datetime.now(dt.UTC)
    AppealFactory(note="答复没有解决问题的诉求", status="reopened", created_at=now)
    AppealFactory(note="已经归档的诉求内容", status="archived", created_at=now)
    AppealFactory(note="大同市的诉求内容", org_code="sx.dt", created_at=now)
    db.session.commit()
    user = sign_in(staff, "pc-viewer")
    page = text_of(user.client.get("/console/appeals"))
    assert page.index("答复没有解决问题的诉求") < page.index("昨天的值守没有积分")
    assert "2 天" in page and "已经归档的诉求内容" not in page
    assert "大同市的诉求内容" not in page  # above Pingcheng
    archived = text_of(user.client.get("/console/appeals?status=archived"))
    assert "已经归档的诉求内容" in archived and "昨天的值守没有积分" not in archived
    unknown = text_of(user.client.get("/console/appeals?status=nonsense"))
    assert "昨天的值守没有积分" in unknown
    assert "大同市的诉求内容" in text_of(sign_in(staff, "dt-admin").client.get("/console/appeals"))


def test_assign_to_oneself_or_to_a_colleague_who_can_see_it(staff, appeal):
    admin = sign_in(staff, "dt-admin")
    html = admin.client.get(f"/console/appeals/{appeal}").get_data(as_text=True)
    offered = {name for name in ("pc-admin", "pc-verifier", "dt-admin", "pc-viewer", "pc-station",
                                 "pc-gone", "ty-admin", "sx-admin")
               if f'<option value="{name}"' in html}  # fmt: skip
    assert offered == {"pc-admin", "pc-verifier", "dt-admin"}
    admin.post(f"/console/appeals/{appeal}/assign", {"assignee": "pc-verifier"})
    row = appeal_row(appeal)
    assert (row.status, row.assigned_to) == ("assigned", "pc-verifier")
    admin.post(f"/console/appeals/{appeal}/assign", {"me": "1"})
    assert appeal_row(appeal).assigned_to == "dt-admin"
    entry = db.session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()))
    assert (entry.action, entry.username, entry.org_code, entry.target) == (
        "appeal.assign", "dt-admin", "sx.dt.pingcheng", f"appeal:{appeal}")  # fmt: skip
    assert (entry.before, entry.after) == ({"status": "assigned", "assigned_to": "pc-verifier"},
                                           {"status": "assigned", "assigned_to": "dt-admin"})  # fmt: skip


@pytest.mark.parametrize("assignee", ["pc-viewer", "pc-gone", "ty-admin", "sx-admin", "nobody", ""])
def test_assigning_to_someone_who_cannot_handle_it_writes_nothing(staff, appeal, assignee):
    admin = sign_in(staff, "pc-admin")
    response = admin.post(f"/console/appeals/{appeal}/assign", {"assignee": assignee})
    assert "请选择能处理这条诉求的人" in text_of(admin.client.get(response.headers["Location"]))
    row = appeal_row(appeal)
    assert (row.status, row.assigned_to) == ("open", None) and audit_count() == 0


@pytest.mark.parametrize(("text", "message"), [("  好的  ", "答复至少 5 个字"),
                                               ("答" * 2001, "答复不超过 2000 个字")])  # fmt: skip
def test_a_bad_answer_is_shown_again_and_writes_nothing(staff, appeal, text, message):
    verifier = sign_in(staff, "pc-verifier")
    response = verifier.post(f"/console/appeals/{appeal}/answer", {"answer": text})
    assert response.status_code == 422 and message in text_of(response)
    assert text.strip()[:50] in response.get_data(as_text=True)  # what was typed comes back
    row = appeal_row(appeal)
    assert (row.status, row.answer, row.answered_at) == ("open", None, None)
    assert audit_count() == 0


def test_answers_of_five_and_of_two_thousand_characters_are_fine(staff):
    first, second = AppealFactory(), AppealFactory()
    db.session.commit()
    verifier = sign_in(staff, "pc-verifier")
    for row, text in ((first, "已经核实。"), (second, "答" * 2000)):
        response = verifier.post(f"/console/appeals/{row.id}/answer", {"answer": text})
        assert response.status_code == 302
        assert appeal_row(row.id).answer == text


def test_passing_up_opens_it_at_the_parent_and_out_of_sight(staff, appeal):
    verifier = sign_in(staff, "pc-verifier")
    verifier.post(f"/console/appeals/{appeal}/assign", {"me": "1"})
    response = verifier.post(f"/console/appeals/{appeal}/escalate")
    assert response.headers["Location"].endswith("/console/appeals")  # it left the subtree
    assert "已上报给 sx.dt" in text_of(verifier.client.get(response.headers["Location"]))
    row = appeal_row(appeal)
    assert (row.org_code, row.status, row.assigned_to) == ("sx.dt", "open", None)
    assert verifier.client.get(f"/console/appeals/{appeal}").status_code == 404
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "appeal.escalate"))
    assert entry.org_code == "sx.dt.pingcheng" and entry.after["org_code"] == "sx.dt"
    # Datong sees it, and may pass it up again, staying in sight of its admins
    admin = sign_in(staff, "dt-admin")
    assert admin.client.get(f"/console/appeals/{appeal}").status_code == 200
    assert admin.post(f"/console/appeals/{appeal}/escalate").status_code == 302
    assert appeal_row(appeal).org_code == "sx"


def test_the_top_of_the_tree_cannot_pass_up(staff):
    top = AppealFactory(org_code="sx")
    db.session.commit()
    admin = sign_in(staff, "sx-admin")
    assert "上报给上级组织" not in text_of(admin.client.get(f"/console/appeals/{top.id}"))
    response = admin.post(f"/console/appeals/{top.id}/escalate")
    assert "不能再上报" in text_of(admin.client.get(response.headers["Location"]))
    assert appeal_row(top.id).org_code == "sx" and audit_count() == 0


@pytest.mark.parametrize(
    ("status", "archived"),
    [("open", False), ("assigned", False), ("reopened", False), ("archived", False),
     ("answered", True), ("resolved", True)],
)  # fmt: skip
def test_only_answered_or_resolved_appeals_are_archived(staff, status, archived):
    row = AppealFactory(status=status, answer="已经处理" if status != "open" else None)
    db.session.commit()
    admin = sign_in(staff, "pc-admin")
    page = admin.client.get(f"/console/appeals/{row.id}").get_data(as_text=True)
    assert (f"/console/appeals/{row.id}/archive" in page) is archived
    response = admin.post(f"/console/appeals/{row.id}/archive")
    after = text_of(admin.client.get(response.headers["Location"]))
    assert appeal_row(row.id).status == ("archived" if archived else status)
    assert ("已归档。" in after) is archived and ("才能归档" in after) is not archived
    assert actions() == (["appeal.archive"] if archived else [])


@pytest.mark.parametrize("status", ["answered", "resolved", "archived"])
def test_what_no_longer_waits_for_the_organisation_is_not_handled_again(staff, status):
    row = AppealFactory(status=status, answer="已经处理过了。")
    db.session.commit()
    admin = sign_in(staff, "pc-admin")
    for action, form in (("assign", {"me": "1"}), ("answer", {"answer": ANSWER}),
                         ("escalate", {})):  # fmt: skip
        response = admin.post(f"/console/appeals/{row.id}/{action}", form)
        assert "刚被别人处理过" in text_of(admin.client.get(response.headers["Location"]))
    again = appeal_row(row.id)
    assert (again.status, again.answer, again.org_code) == (status, "已经处理过了。",
                                                            "sx.dt.pingcheng")  # fmt: skip
    assert audit_count() == 0


def test_of_two_staff_acting_at_once_the_second_is_told_not_overwritten(staff, appeal):
    """Both saw the appeal open; the first answers, the second's assignment and answer, sent
    from the page they still have, are refused."""
    first, second = sign_in(staff, "pc-verifier"), sign_in(staff, "pc-admin")
    first.post(f"/console/appeals/{appeal}/answer", {"answer": ANSWER, "expect": "open"})
    for action, form in (("assign", {"me": "1"}), ("answer", {"answer": "另一个答复内容"})):
        response = second.post(f"/console/appeals/{appeal}/{action}", form | {"expect": "open"})
        assert "刚被别人处理过" in text_of(second.client.get(response.headers["Location"]))
    row = appeal_row(appeal)
    assert (row.status, row.answer, row.answered_by, row.assigned_to) == (
        "answered", ANSWER, "pc-verifier", None)  # fmt: skip
    # a stale page is refused even where the change would be allowed from the new status
    row.status = "assigned"
    db.session.commit()
    second.post(f"/console/appeals/{appeal}/assign", {"me": "1", "expect": "open"})
    assert appeal_row(appeal).assigned_to is None
    assert actions() == ["appeal.answer"]


def test_the_service_refuses_a_change_another_session_made_first(staff, appeal):
    """The condition is in the UPDATE: a row loaded before someone else's change is not
    trusted."""
    user = db.session.scalar(select(ConsoleUser).where(ConsoleUser.username == "pc-admin"))
    loaded = appeal_handling.get(user, appeal)
    db.session.execute(update(Appeal).where(Appeal.id == appeal).values(status="archived"))
    with pytest.raises(Conflict):
        appeal_handling.answer(user, loaded, ANSWER)
    db.session.rollback()


def test_the_loop_from_the_rider_page_to_the_console_and_back(staff, partner_api, rider):
    """Collect (the rider raises it), assign, answer, the rider's say, reopen, answer again,
    resolve, archive: every step written to the audit log."""
    assert partner_api.post_event(shift("s1")).status_code == 201
    entry = db.session.scalar(select(LedgerEntry))
    web = rider_sign_in(staff, partner_api, rider)
    raised = web.post("/m/appeals/new", {"entry": entry.id, "kind": "points", "note": NOTE})
    assert raised.status_code == 302
    (appeal_id,) = db.session.scalars(select(Appeal.id))
    assert appeal_row(appeal_id).org_code == "sx.dt.pingcheng"  # where the shift happened

    verifier = sign_in(staff, "pc-verifier")
    listing = text_of(verifier.client.get("/console/appeals"))
    assert "张小华" in listing and "0 天" in listing and "待处理" in listing
    page = text_of(verifier.client.get(f"/console/appeals/{appeal_id}"))
    assert NOTE in page and entry.reason in page and "+15" in page and "张小华" in page
    verifier.post(f"/console/appeals/{appeal_id}/assign", {"me": "1", "expect": "open"})
    verifier.post(f"/console/appeals/{appeal_id}/answer",
                  {"answer": "我们先核对签到记录。", "expect": "assigned"})  # fmt: skip
    row = appeal_row(appeal_id)
    assert (row.status, row.answered_by, row.assigned_to) == ("answered", "pc-verifier",
                                                              "pc-verifier")  # fmt: skip
    assert row.answered_at is not None

    assert "我们先核对签到记录。" in text_of(web.get(f"/m/appeals/{appeal_id}"))
    web.post(f"/m/appeals/{appeal_id}/feedback", {"resolved": "no"})
    assert appeal_row(appeal_id).status == "reopened"
    assert "骑手表示未解决" in text_of(verifier.client.get("/console/appeals"))
    assert "没有解决" in text_of(verifier.client.get(f"/console/appeals/{appeal_id}"))

    verifier.post(f"/console/appeals/{appeal_id}/answer", {"answer": ANSWER, "expect": "reopened"})
    assert ANSWER in text_of(web.get(f"/m/appeals/{appeal_id}"))
    web.post(f"/m/appeals/{appeal_id}/feedback", {"resolved": "yes"})
    assert appeal_row(appeal_id).status == "resolved"
    assert "骑手确认已解决" in text_of(verifier.client.get(f"/console/appeals/{appeal_id}"))

    verifier.post(f"/console/appeals/{appeal_id}/archive", {"expect": "resolved"})
    assert appeal_row(appeal_id).status == "archived"
    assert "已归档" in text_of(web.get(f"/m/appeals/{appeal_id}"))
    assert actions() == ["appeal.assign", "appeal.answer", "appeal.answer", "appeal.archive"]
    answers = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "appeal.answer"))
    assert [a.before["answer"] for a in answers] == [None, "我们先核对签到记录。"]
