import datetime as dt

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import BoardPeriod, LedgerEntry, Member, PartnerMember
from app.services.partners import create_partner

from ..factories import BoardArchiveFactory
from ..partner_api import HOME, STATION, PartnerApi, hazard, shift


def _member_id(ref: str) -> int:
    return db.session.scalar(select(PartnerMember.member_id).where(PartnerMember.ref == ref))


def _board(api: PartnerApi, scope: str, **query):
    return api.client.get(f"/api/v1/leaderboards/{scope}", query_string=query, headers=api.headers)


def _points(ref: str) -> int:
    return db.session.get(Member, _member_id(ref)).balance


@pytest.fixture
def three(partner_api):
    """r1 (1 hazard), r2 (2 hazards), r3 (3 hazards), all at HOME."""
    for ref, name in (("r1", "张小华"), ("r2", "李大明"), ("r3", "王芳")):
        assert partner_api.put_member(ref, name=name, industry="delivery").status_code == 201
    n = 0
    for ref, count in (("r1", 1), ("r2", 2), ("r3", 3)):
        for i in range(count):
            n += 1
            response = partner_api.post_event(hazard(f"h{n}", member=ref, days_ago=1 + i * 0.01))
            assert response.status_code == 201, response.json
    return partner_api


def test_a_board_lists_rank_masked_name_and_points_best_first(three):
    response = _board(three, "sx", period="all")
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["scope"], body["period"], body["category"]) == ("sx", "all", "total")
    assert body["archived"] is False
    assert body["total"] == 3
    assert [line["name"] for line in body["items"]] == ["王*", "李*明", "张*华"]
    assert [line["points"] for line in body["items"]] == [_points(r) for r in ("r3", "r2", "r1")]
    assert [line["rank"] for line in body["items"]] == [1, 2, 3]
    text = response.get_data(as_text=True)
    assert "r1" not in text and "张小华" not in text and "phone" not in text


def test_every_ancestor_industry_and_partner_board_has_the_points(three):
    expected = _points("r3")
    for scope in ("sx", "sx.dt", HOME, "ind", "ind.delivery", "partner"):
        body = _board(three, scope, period="all").json
        assert body["items"][0]["points"] == expected, scope
    assert _board(three, "sx.ty", period="all").json["total"] == 0  # nothing happened there
    assert _board(three, "ind.express", period="all").json["total"] == 0


def test_category_boards_hold_only_that_category(three):
    body = _board(three, "sx", period="all", category="governance").json
    assert body["total"] == 3  # hazards are governance
    assert _board(three, "sx", period="all", category="pioneer").json["total"] == 0


def test_limit_and_offset_keep_the_ranks(three):
    body = _board(three, "sx", period="all", limit=1, offset=1).json
    assert body["total"] == 3
    assert [(line["rank"], line["name"]) for line in body["items"]] == [(2, "李*明")]


def test_equal_points_share_a_rank_and_the_first_to_reach_them_is_listed_first(
    partner_api, monkeypatch
):
    import app.services.ingest as ingest_module

    # each request a minute after the one before: who reached a total first is unambiguous
    base = ingest_module.utcnow()
    clock = iter(base + dt.timedelta(minutes=i) for i in range(100))
    monkeypatch.setattr(ingest_module, "utcnow", lambda: next(clock))
    for ref, name in (("a", "赵一"), ("b", "钱二"), ("c", "孙三"), ("d", "周四")):
        partner_api.put_member(ref, name=name)
    # d and b reach the same total; b gets there first; c has more; a less
    for event_id, ref, severity in (
        ("1", "b", "high"), ("2", "c", "high"), ("3", "d", "high"), ("4", "c", "high"),
        ("5", "a", "low"),
    ):  # fmt: skip
        assert (
            partner_api.post_event(hazard(event_id, member=ref, severity=severity)).status_code
            == 201
        )
    items = _board(partner_api, "sx", period="all").json["items"]
    assert [line["name"] for line in items] == ["孙*", "钱*", "周*", "赵*"]
    assert [line["rank"] for line in items] == [1, 2, 2, 4]


def test_the_week_board_has_only_this_weeks_points(partner_api):
    partner_api.put_member("r1")
    partner_api.post_event(hazard("old", member="r1", days_ago=40))
    assert _board(partner_api, "sx", period="all").json["total"] == 1
    # 40 days ago is neither this week nor the last
    assert _board(partner_api, "sx", period="week").json["total"] == 0


def test_a_hidden_member_keeps_its_place_without_a_name(three):
    response = three.put_member("r3", hide_from_boards=True)
    assert response.status_code == 200 and response.json["hide_from_boards"] is True
    items = _board(three, "sx", period="all").json["items"]
    assert items[0]["name"] == "匿名" and items[0]["rank"] == 1
    assert items[1]["name"] == "李*明"
    ranks = three.client.get("/api/v1/members/r3/ranks", headers=three.headers).json["boards"]
    assert any(b["scope"] == "sx" and b["rank"] == 1 for b in ranks)  # still sees its own rank


def test_a_partner_reads_only_its_own_board_and_its_organisations(three, client, orgs):
    _, key = create_partner("大同平台", code="dt", allowed_orgs=["sx.dt"])
    db.session.commit()
    dt_api = PartnerApi(client, key)
    assert _board(dt_api, "sx.dt", period="all").status_code == 200
    assert _board(dt_api, HOME, period="all").status_code == 200
    refused = _board(dt_api, "sx.ty")
    assert refused.status_code == 403 and refused.json["error"]["code"] == "org_not_allowed"
    assert _board(dt_api, "sx").status_code == 403  # the province is above its subtree
    assert _board(dt_api, "ind.delivery", period="all").status_code == 200
    other = _board(dt_api, "partner:meituan")
    assert other.status_code == 403 and other.json["error"]["code"] == "not_your_board"
    assert _board(dt_api, "partner", period="all").json["total"] == 0  # its own: nobody yet


@pytest.mark.parametrize(
    "query",
    [
        {"period": "2026-W60"},
        {"period": "2026-13"},
        {"period": "yesterday"},
        {"category": "fun"},
        {"limit": 0},
        {"limit": 101},
        {"offset": -1},
        {"sort": "name"},
    ],
)
def test_a_bad_query_is_refused(three, query):
    response = _board(three, "sx", **query)
    assert response.status_code == 422, response.json
    assert set(response.json["error"]) == {"code", "message", "details"}


def test_a_bad_scope_is_refused(three):
    assert _board(three, "sx;drop").status_code == 422


def test_without_a_key_nothing_is_shown(client, three):
    assert client.get("/api/v1/leaderboards/sx").status_code == 401


def test_organisations_ranked_against_their_siblings(partner_api):
    partner_api.put_member("home1")
    partner_api.put_member("home2")
    partner_api.put_member("st1", primary_org=STATION)
    for i, ref in enumerate(("home1", "home2")):
        partner_api.post_event(hazard(f"h{i}", member=ref))
    partner_api.post_event(hazard("s1", member="st1", org=STATION, severity="high"))
    partner_api.post_event(hazard("s2", member="st1", org=STATION, days_ago=2))
    url = "/api/v1/leaderboards/sx/children"
    by_points = partner_api.client.get(
        url, query_string={"period": "all"}, headers=partner_api.headers
    ).json
    lines = {line["org"]: line for line in by_points["items"]}
    assert set(lines) == {"sx.dt", "sx.ty"}
    assert lines["sx.dt"]["active_members"] == 2 and lines["sx.ty"]["active_members"] == 1
    dt_points = _points("home1") + _points("home2")
    assert lines["sx.dt"]["points"] == dt_points
    assert lines["sx.ty"]["points"] == _points("st1")
    assert lines["sx.ty"]["points_per_member"] == _points("st1")
    per_member = partner_api.client.get(
        url, query_string={"period": "all", "by": "per_member"}, headers=partner_api.headers
    ).json
    order = [line["org"] for line in per_member["items"]]
    expected = sorted(lines, key=lambda c: -lines[c]["points_per_member"])
    assert order == expected and per_member["items"][0]["rank"] == 1


def test_a_members_ranks_with_the_members_above_and_below(three):
    response = three.client.get(
        "/api/v1/members/r2/ranks",
        query_string={"period": "all", "category": "total"},
        headers=three.headers,
    )
    assert response.status_code == 200, response.json
    boards = {b["scope"]: b for b in response.json["boards"]}
    assert {"sx", "sx.dt", HOME, "ind", "ind.delivery", "partner:meituan"} <= set(boards)
    sx = boards["sx"]
    assert (sx["rank"], sx["total"], sx["points"]) == (2, 3, _points("r2"))
    assert sx["above"] == {"rank": 1, "name": "王*", "points": _points("r3")}
    assert sx["below"] == {"rank": 3, "name": "张*华", "points": _points("r1")}
    first = three.client.get(
        "/api/v1/members/r3/ranks", query_string={"period": "all"}, headers=three.headers
    ).json
    top = next(b for b in first["boards"] if b["scope"] == "sx" and b["category"] == "total")
    assert top["rank"] == 1 and top["above"] is None and top["below"]["name"] == "李*明"


def test_ranks_of_a_member_of_another_partner_are_not_found(three, other_api):
    response = other_api.client.get("/api/v1/members/r1/ranks", headers=other_api.headers)
    assert response.status_code == 404


def test_an_archived_period_is_read_from_the_database(partner_api):
    partner_api.put_member("r1", name="张小华")
    member_id = _member_id("r1")
    db.session.add(BoardPeriod(period="2025-W10", kind="week", boards=1, rows=2))
    BoardArchiveFactory(scope="sx", period="2025-W10", position=1, rank=1, member_id=member_id,
                        points=30)  # fmt: skip
    BoardArchiveFactory(scope="sx", period="2025-W10", position=2, rank=1, member_id=999,
                        points=30)  # fmt: skip
    db.session.commit()
    body = _board(partner_api, "sx", period="2025-W10").json
    assert body["archived"] is True and body["total"] == 2
    assert [(line["rank"], line["points"]) for line in body["items"]] == [(1, 30), (1, 30)]
    assert body["items"][0]["name"] == "张*华"
    ranks = partner_api.client.get(
        "/api/v1/members/r1/ranks", query_string={"period": "2025-W10"},
        headers=partner_api.headers,
    ).json["boards"]  # fmt: skip
    assert ranks == [
        {"scope": "sx", "period": "2025-W10", "category": "total", "rank": 1, "points": 30,
         "total": 2, "above": None, "below": {"rank": 1, "name": "匿名", "points": 30}},
    ]  # fmt: skip


def test_boards_move_with_the_ledger_for_a_batch(partner_api):
    partner_api.put_member("r1")
    response = partner_api.post_batch([shift("s1"), hazard("h1", days_ago=2)])
    assert response.status_code == 200 and response.json["accepted"] == 2
    total = sum(e.points for e in db.session.scalars(select(LedgerEntry)))
    assert _board(partner_api, "sx", period="all").json["items"][0]["points"] == total


def test_hide_from_boards_takes_only_true_or_false_and_a_refusal_changes_nothing(three):
    response = three.put_member("r3", hide_from_boards="yes")
    assert response.status_code == 422, response.json
    assert "hide_from_boards" in response.json["error"]["details"]
    assert db.session.get(Member, _member_id("r3")).hidden is False
    assert three.get_member("r3").json["hide_from_boards"] is False
