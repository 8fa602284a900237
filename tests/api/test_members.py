import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Member, PartnerMember

from ..partner_api import HOME, STATION, hazard, shift


def test_put_creates_then_updates(partner_api):
    created = partner_api.put_member("r1", phone="13800138000", party_member=True,
                                     orgs=[STATION], tags=["grid_member"])  # fmt: skip
    assert created.status_code == 201, created.json
    assert created.json["primary_org"] == HOME
    assert created.json["orgs"] == [HOME, STATION]
    assert "phone" not in created.json
    updated = partner_api.put_member("r1", name="张大华", industry="express")
    assert updated.status_code == 200
    assert (updated.json["name"], updated.json["industry"]) == ("张大华", "express")
    assert updated.json["party_member"] is True


def test_the_phone_is_kept_only_as_a_keyed_hash(partner_api):
    partner_api.put_member("r1", phone="13800138000")
    member = db.session.scalar(select(Member))
    assert member.phone_hash and "13800138000" not in member.phone_hash
    assert len(member.phone_hash) == 64


def test_two_partners_one_phone_one_member_one_balance(partner_api, other_api):
    partner_api.put_member("r1", phone="13800138000")
    response = other_api.put_member("e-77", phone="+86 138 0013 8000", primary_org=STATION)
    assert response.status_code == 201
    assert db.session.scalar(select(func.count(Member.id))) == 1
    assert db.session.scalar(select(func.count(PartnerMember.id))) == 2
    partner_api.post_event(hazard("a", member="r1"))
    other_api.post_event(hazard("b", member="e-77", days_ago=2))
    assert (
        partner_api.get_member("r1").json["balance"]
        == other_api.get_member("e-77").json["balance"]
        == 20
    )
    assert STATION in other_api.get_member("e-77").json["orgs"]


def test_a_member_marked_not_to_merge_stays_separate(partner_api, other_api):
    partner_api.put_member("r1", phone="13800138000")
    db.session.scalar(select(Member)).no_phone_merge = True
    db.session.commit()
    other_api.put_member("e-1", phone="13800138000", name="另一个人", primary_org=STATION)
    assert db.session.scalar(select(func.count(Member.id))) == 2


def test_another_partners_member_is_404_without_a_leak(partner_api, other_api):
    partner_api.put_member("r1")
    response = other_api.get_member("r1")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "unknown_member"
    assert other_api.ledger("r1").status_code == 404
    assert other_api.post_event(hazard("x", member="r1")).json["error"]["code"] == "unknown_member"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"primary_org": "sx.nowhere"}, "orgs"),
        ({"orgs": ["nope"]}, "orgs"),
        ({"phone": "call me"}, "phone"),
        ({"party_member": "yes"}, "party_member"),
        ({"tags": ["Bad Tag"]}, "tags"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_member_input_is_422(partner_api, body, field):
    response = partner_api.put_member("r1", **body)
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["details"]
    assert db.session.scalar(select(func.count(Member.id))) == 0


def test_a_new_member_needs_name_and_primary_org(partner_api):
    response = partner_api.client.put(
        "/api/v1/members/r1", json={"phone": "13800138000"}, headers=partner_api.headers
    )
    assert response.status_code == 422
    assert set(response.json["error"]["details"]) == {"name", "primary_org"}


def test_get_member_has_balance_and_period_totals(partner_api, rider):
    partner_api.post_event(shift("s1", hours=2, days_ago=0.5))
    partner_api.post_event(hazard("h1", severity="low", days_ago=0.5))
    body = partner_api.get_member("r1").json
    assert body["balance"] == body["lifetime_points"] == 13
    # half a day ago may fall in last week or last month, depending on when the tests run
    for period in ("this_week", "this_month"):
        by_category = body[period]["by_category"]
        assert body[period]["total"] == sum(by_category.values()) in (0, 3, 10, 13)


def test_ledger_is_newest_first_with_cursor_pagination(partner_api, rider):
    for i in range(5):
        partner_api.post_event(hazard(f"h{i}", severity="low", days_ago=1 + i))
    first = partner_api.ledger("r1", limit=2).json
    assert [e["event"] for e in first["entries"]] == ["h4", "h3"]
    second = partner_api.ledger("r1", limit=2, cursor=first["next_cursor"]).json
    assert [e["event"] for e in second["entries"]] == ["h2", "h1"]
    last = partner_api.ledger("r1", limit=2, cursor=second["next_cursor"]).json
    assert [e["event"] for e in last["entries"]] == ["h0"] and last["next_cursor"] is None
    entry = first["entries"][0]
    assert entry["reason"] and entry["rule"] == "sx:hazard-report" and entry["kind"] == "award"


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 201}, {"cursor": "abc"}])
def test_bad_ledger_queries_are_422(partner_api, rider, query):
    response = partner_api.ledger("r1", **query)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "invalid"


def test_a_phone_links_only_to_a_member_the_partner_may_serve(partner_api, client, orgs):
    from app.services.partners import create_partner

    from ..partner_api import PartnerApi

    partner_api.put_member("r1", phone="13800138000")  # in Datong
    _, key = create_partner("太原平台", code="ty", allowed_orgs=["sx.ty"])
    db.session.commit()
    taiyuan = PartnerApi(client, key)
    response = taiyuan.put_member("t1", phone="13800138000", primary_org=STATION)
    assert response.status_code == 201
    assert response.json["balance"] == 0 and response.json["primary_org"] == STATION
    assert db.session.scalar(select(func.count(Member.id))) == 2
