"""The leaderboards page: the member's own boards only, switched by scope, period and category,
with masked names and the member's own row highlighted even when far from the top."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import BoardPeriod, Member, PartnerMember
from app.services.boards.keys import mask_name
from app.services.dashboard import rider_scopes

from ..conftest import local
from ..factories import BoardArchiveFactory
from ..partner_api import hazard
from .conftest import sign_in, text_of

SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施孔"
TODAY = local(0, 0).isoformat()  # this week, whatever day the tests run


def _member(ref: str) -> Member:
    db.session.expire_all()
    return db.session.scalar(
        select(Member).join(PartnerMember, PartnerMember.member_id == Member.id)
        .where(PartnerMember.ref == ref)
    )  # fmt: skip


def _post(api, events: list[dict]) -> None:
    response = api.post_batch(events)
    assert response.status_code == 200 and response.json["accepted"] == len(events), response.json


def _rows(response) -> list[tuple[str, str, str, bool]]:
    """(rank, name, points, highlighted) of every line of the board's table."""
    html = response.get_data(as_text=True)
    out = []
    for attrs, body in re.findall(r"<tr([^>]*)>(.*?)</tr>", html, flags=re.S):
        cells = [re.sub(r"<[^>]+>|\s+", " ", c).strip() for c in re.findall(
            r"<t[dh][^>]*>(.*?)</t[dh]>", body, flags=re.S)]  # fmt: skip
        if len(cells) == 3 and cells[0].isdigit():
            out.append((cells[0], cells[1], cells[2], 'class="me"' in attrs))
    return out


def _names(k: int) -> str:
    return f"{SURNAMES[k]}小{'一二三四五六七八九十'[k % 10]}"


@pytest.fixture
def crowd(partner_api, rider):
    """24 others with 10 to 50 points this week (five share the lowest, 10), and r1 with 3:
    r1 is 25th of 25, far from the top 20."""
    events = []
    for k in range(24):
        ref = f"crowd-{k:02d}"
        response = partner_api.put_member(ref, name=_names(k), phone=f"1390000{k:04d}",
                                          industry="delivery")  # fmt: skip
        assert response.status_code == 201, response.json
        events += [hazard(f"{ref}-{i}", member=ref, occurred_at=TODAY) for i in range(k % 5 + 1)]
    events.append(hazard("r1-low", member=rider, severity="low", occurred_at=TODAY))
    _post(partner_api, events)
    return partner_api


def test_the_page_needs_a_session(client, crowd):
    response = client.get("/m/boards")
    assert response.status_code == 401 and "请先登录" in text_of(response)


def test_the_top_20_with_masked_names_and_the_members_own_row_after_a_gap(web, crowd):
    response = web.get("/m/boards")
    assert response.status_code == 200
    rows = _rows(response)
    top, tail = rows[:20], rows[20:]
    assert [int(r[0]) for r in top] == sorted(int(r[0]) for r in top) and top[0][2] == "50"
    assert not any(me for *_, me in top)
    # the member just above (rank 20 shared by five with 10 points), then r1, 25th with 3
    assert tail == [("20", tail[0][1], "10", False), ("25", "张*华 （我）", "3", True)]
    html = response.get_data(as_text=True)
    assert "⋯" in html and html.count('class="me"') == 1
    assert "共 25 人上榜" in text_of(response)
    for k in range(24):  # masked names only: never a full name, a phone number or a reference
        assert _names(k) not in html
    assert mask_name(_names(4)) in html
    assert "1390000" not in html and "13800138000" not in html and "crowd-" not in html
    assert "张小华" not in html


def test_the_own_row_is_highlighted_inside_the_top(web, crowd):
    _post(crowd, [hazard(f"r1-{i}", occurred_at=TODAY) for i in range(4)])  # 3 + 40 = 43
    rows = _rows(web.get("/m/boards"))
    assert len(rows) == 20
    mine = [r for r in rows if r[3]]
    assert mine == [(mine[0][0], "张*华 （我）", "43", True)]
    assert int(mine[0][0]) <= 10


def test_right_after_the_top_there_is_no_gap(web, partner_api, rider):
    events = []
    for k in range(20):
        partner_api.put_member(f"c{k}", name=_names(k))
        events.append(hazard(f"c{k}", member=f"c{k}", occurred_at=TODAY))
    events.append(hazard("r1", member=rider, severity="low", occurred_at=TODAY))
    _post(partner_api, events)
    response = web.get("/m/boards")
    rows = _rows(response)
    assert len(rows) == 21 and rows[20] == ("21", "张*华 （我）", "3", True)
    assert "⋯" not in response.get_data(as_text=True)


def test_a_hidden_member_is_listed_as_anonymous(web, crowd):
    assert crowd.put_member("crowd-04", hide_from_boards=True).status_code == 200
    rows = _rows(web.get("/m/boards"))
    assert rows[0][1] == "匿名" and rows[0][2] == "50"
    assert mask_name(_names(4)) not in [r[1] for r in rows]


@pytest.mark.parametrize("period", ["week", "month", "year", "all"])
def test_every_period_of_every_own_scope(web, crowd, period):
    for board in rider_scopes(_member("r1")):
        response = web.get("/m/boards", query_string={"scope": board["scope"], "period": period})
        assert response.status_code == 200, board
        html = response.get_data(as_text=True)
        assert f'<option value="{board["scope"]}" selected>' in html
        assert f'<option value="{period}" selected>' in html
        # every rider board of r1 has the whole crowd: same organisations, same industry
        assert "共 25 人上榜" in text_of(response)


def test_the_default_is_the_first_own_board_this_week_in_total(web, crowd):
    first = rider_scopes(_member("r1"))[0]["scope"]
    html = web.get("/m/boards").get_data(as_text=True)
    assert f'<option value="{first}" selected>' in html
    assert '<option value="week" selected>' in html and '<option value="total" selected>' in html
    assert 'name="scope"' in html and 'name="period"' in html and 'name="category"' in html
    assert "<label" in html and '<button type="submit"' in html
    assert "/m/boards?scope=" in html and "period=month" in html  # the quick links


@pytest.mark.parametrize("scope", ["sx.ty", "ind.express", "partner:meituan", "nothing"])
def test_a_board_that_is_not_the_members_is_not_found(web, crowd, scope):
    response = web.get("/m/boards", query_string={"scope": scope})
    assert response.status_code == 404 and "找不到" in text_of(response)
    assert "赵*一" not in response.get_data(as_text=True)


def test_a_bad_period_or_category_falls_back_to_the_default(web, crowd):
    for query in ({"period": "2026-W99"}, {"period": "1999-W01"}, {"period": "<b>"},
                  {"category": "other"}, {"category": "nonsense"}):  # fmt: skip
        response = web.get("/m/boards", query_string=query)
        assert response.status_code == 200, query
        html = response.get_data(as_text=True)
        assert '<option value="week" selected>' in html
        assert '<option value="total" selected>' in html and "共 25 人上榜" in text_of(response)


def test_categories_hold_only_their_points(web, crowd):
    governance = web.get("/m/boards", query_string={"category": "governance"})
    assert "共 25 人上榜" in text_of(governance)
    assert '<option value="governance" selected>' in governance.get_data(as_text=True)
    for category in ("pioneer", "volunteer"):
        response = web.get("/m/boards", query_string={"category": category})
        assert response.status_code == 200 and "还没有人上榜" in text_of(response)
        assert "你在这个周期还没有上榜" in text_of(response)


def test_the_current_weeks_id_is_this_week(web, crowd):
    html = web.get("/m/boards").get_data(as_text=True)
    week_id = re.search(r"周期 (\d{4}-W\d\d)", html).group(1)
    again = web.get("/m/boards", query_string={"period": week_id}).get_data(as_text=True)
    assert '<option value="week" selected>' in again and "共 25 人上榜" in again


def test_a_closed_period_is_read_from_its_archive(web, crowd):
    first = rider_scopes(_member("r1"))[0]["scope"]
    me = _member("r1").id
    others = [_member(f"crowd-{k:02d}").id for k in range(23)]
    db.session.add(BoardPeriod(period="2025-W10", kind="week", boards=1, rows=24))
    for position, member_id in enumerate([*others, me], 1):
        BoardArchiveFactory(scope=first, period="2025-W10", position=position, rank=position,
                            member_id=member_id, points=100 - position)  # fmt: skip
    db.session.commit()
    response = web.get("/m/boards", query_string={"period": "2025-W10"})
    assert response.status_code == 200
    text = text_of(response)
    assert "已经结束" in text and "共 24 人上榜" in text
    rows = _rows(response)
    assert rows[0] == ("1", mask_name(_names(0)), "99", False)
    assert rows[-2:] == [
        ("23", mask_name(_names(22)), "77", False),
        ("24", "张*华 （我）", "76", True),
    ]
    assert '<option value="2025-W10" selected>' in response.get_data(as_text=True)


def test_last_weeks_board_is_live_until_it_closes(web, partner_api, rider):
    _post(partner_api, [hazard("old", occurred_at=local(7, 0).isoformat())])
    html = web.get("/m/boards").get_data(as_text=True)
    last_week = re.search(r"period=(\d{4}-W\d\d)", html).group(1)  # the quick link
    response = web.get("/m/boards", query_string={"period": last_week})
    assert [r[1:] for r in _rows(response)] == [("张*华 （我）", "10", True)]


def test_a_member_not_on_the_board_is_told_so(app_ctx, partner_api, crowd):
    partner_api.put_member("r2", name="李大明", industry="delivery")
    other = sign_in(app_ctx, partner_api, "r2")
    response = other.get("/m/boards")
    assert response.status_code == 200 and "你在这个周期还没有上榜" in text_of(response)
    assert 'class="me"' not in response.get_data(as_text=True)


def test_the_page_is_small(web, crowd):
    assert len(web.get("/m/boards").get_data()) < 100_000


def test_a_hidden_member_still_sees_its_own_row(web, crowd):
    assert crowd.put_member("r1", hide_from_boards=True).status_code == 200
    rows = _rows(web.get("/m/boards"))
    assert rows[-1] == ("25", "匿名 （我）", "3", True)
