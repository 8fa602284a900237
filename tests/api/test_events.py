import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Event, LedgerEntry, Member

from ..conftest import local
from ..partner_api import HOME, STATION, hazard, shift


def ledger_sum(member_id: int) -> int:
    return db.session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.points), 0)).where(
            LedgerEntry.member_id == member_id
        )
    )


def test_an_event_earns_points_and_says_why(partner_api, rider):
    response = partner_api.post_event(shift("e1", hours=3))
    assert response.status_code == 201, response.json
    body = response.json
    assert body["event"] == "e1"
    assert body["status"] == "awarded"
    assert body["points"] == 15
    assert body["balance"] == 15
    (award,) = body["awards"]
    assert award["rule"] == "sx:pioneer-shift"
    assert (
        award["reason"]
        == "党员先锋岗值守：5 × min(3 小时, 8) = 15 分（每日上限 40 分，剩余 25 分）"
    )
    assert len(body["rules_version"]) == 12
    entry = db.session.scalar(select(LedgerEntry))
    assert (entry.points, entry.kind, entry.rule, entry.org_code) == (
        15, "award", "sx:pioneer-shift", HOME)  # fmt: skip
    assert entry.rules_version == body["rules_version"]
    assert entry.explanation["formula"] == "5 × min(3[[hours]], 8)"


def test_an_event_at_a_station_is_scored_by_the_station_and_its_ancestors(partner_api, rider):
    response = partner_api.post_event(shift("e1", hours=0.5, org=STATION))
    assert (
        response.json["awards"][0]["rule"] == "sx.ty.xiaodian.pingyang.station-01:st-short-checkin"
    )
    assert response.json["points"] == 1  # the station's stop rule: a check-in point only


def test_the_same_event_again_replays_the_first_answer_and_awards_nothing(partner_api, rider):
    first = partner_api.post_event(shift("e1"))
    again = partner_api.post_event(shift("e1"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json == first.json
    member = db.session.scalar(select(Member))
    assert member.balance == first.json["balance"] == ledger_sum(member.id)
    assert db.session.scalar(select(func.count(Event.id))) == 1


def test_the_same_id_with_another_body_is_a_conflict(partner_api, rider):
    partner_api.post_event(shift("e1", hours=3))
    response = partner_api.post_event(shift("e1", hours=4))
    assert response.status_code == 409
    assert response.json["error"]["code"] == "event_conflict"


def test_a_dry_run_scores_but_stores_nothing(partner_api, rider):
    response = partner_api.post_event(shift("e1"), dry_run="true")
    assert response.status_code == 200
    assert response.json["dry_run"] is True and response.json["points"] == 15
    assert db.session.scalar(select(func.count(Event.id))) == 0
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 0
    assert partner_api.post_event(shift("e1")).status_code == 201  # not taken by the dry run


@pytest.mark.parametrize(
    "query, field",
    [({"dry_run": "maybe"}, "dry_run"), ({"dry_run": ""}, "dry_run"), ({"dryrun": "1"}, "dryrun")],
)
def test_a_bad_query_is_refused_and_nothing_is_stored(partner_api, rider, query, field):
    for post in (
        lambda: partner_api.post_event(shift("q1"), **query),
        lambda: partner_api.post_batch([shift("q1")], **query),
    ):
        response = post()
        assert response.status_code == 422
        assert field in response.json["error"]["details"]
    assert db.session.scalar(select(func.count(Event.id))) == 0
    assert partner_api.post_event(shift("q1"), dry_run="True").json["dry_run"] is True


def test_caps_hold_across_events(partner_api, rider):
    # the same 09:00-12:00 shift three times (whole days back: a fraction of a day could cross
    # local midnight and land on another day, depending on when the tests run)
    points = [partner_api.post_event(shift(f"e{i}", hours=3, days_ago=1)).json for i in range(3)]
    # the three shifts overlap, so two are duplicates
    assert [p["status"] for p in points] == ["awarded", "duplicate", "duplicate"]
    later = [
        partner_api.post_event(
            shift(f"n{i}", hours=3, days_ago=1) | _span_at(1, 12 + 3 * i, 3)
        ).json
        for i in range(3)
    ]
    assert [p["points"] for p in later] == [15, 10, 0]  # day cap 40, 15 already earned
    assert "已达上限" in later[2]["awards"][0]["reason"]


def _span_at(days_ago, hour, hours):
    import datetime as dt

    start = local(days_ago, hour)
    end = start + dt.timedelta(hours=hours)
    return {
        "occurred_at": start.isoformat(),
        "data": {"hours": hours, "start": start.isoformat(), "end": end.isoformat()},
    }


def test_an_overlapping_span_is_a_duplicate_even_from_another_partner(
    partner_api, other_api, rider
):
    assert other_api.put_member("x9", phone="+86 138-0013-8000").status_code == 201
    first = partner_api.post_event(shift("e1", hours=3))
    second = other_api.post_event(shift("other-1", member="x9", hours=2))
    assert first.json["status"] == "awarded"
    assert second.status_code == 201
    assert second.json["status"] == "duplicate" and second.json["points"] == 0
    assert "重复" in second.json["reason"]


def test_a_verify_rule_leaves_the_event_pending(partner_api, rider):
    body = {
        "id": "v1",
        "type": "volunteer.hours",
        "member": "r1",
        "occurred_at": local(2, 9).isoformat(),
        "data": {"hours": 2, "start": local(2, 9).isoformat(), "end": local(2, 11).isoformat()},
    }
    response = partner_api.post_event(body)
    assert response.status_code == 201
    assert response.json["status"] == "pending"
    assert response.json["points"] == 0
    assert any(a["pending"] for a in response.json["awards"])


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"type": "pioneer.nope"}, 422, "unknown_event_type"),
        ({"member": "nobody"}, 422, "unknown_member"),
        ({"org": "sx.nowhere"}, 422, "unknown_org"),
        ({"data": {"hours": 30}}, 422, "invalid_data"),
        ({"data": {"hours": -1}}, 422, "invalid_data"),
        ({"data": {"hours": 1e308 * 10}}, 422, "invalid_data"),
        ({"data": {"hours": "3"}}, 422, "invalid_data"),
        ({"data": {"hours": 3, "extra": 1}}, 422, "invalid_data"),
        ({"occurred_at": "yesterday"}, 422, "invalid"),
        ({"occurred_at": "2099-01-01T00:00:00+08:00"}, 422, "in_future"),
        ({"occurred_at": "2020-01-01T00:00:00+08:00"}, 422, "too_old"),
        ({"id": ""}, 422, "invalid"),
        ({"id": "x" * 129}, 422, "invalid"),
        ({"surprise": 1}, 422, "invalid"),
        ({"data": "hours"}, 422, "invalid"),
    ],
)
def test_bad_events_get_a_clear_error_and_change_nothing(partner_api, rider, change, status, code):
    body = hazard("bad") | change
    response = partner_api.post_event(body)
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code
    assert set(response.json["error"]) == {"code", "message", "details"}
    assert db.session.scalar(select(func.count(Event.id))) == 0


@pytest.mark.parametrize(
    ("data", "content_type", "code"),
    [
        (b"{not json", "application/json", "bad_json"),
        (b"\xff\xfe\x00", "application/json", "bad_json"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", "bad_json"),
        (b"", "application/json", "bad_json"),
        (b"[1, 2]", "application/json", "invalid"),
    ],
)
def test_unreadable_bodies_are_400_not_500(partner_api, rider, data, content_type, code):
    response = partner_api.client.post(
        "/api/v1/events", data=data, content_type=content_type, headers=partner_api.headers
    )
    assert response.status_code in (400, 422)
    assert response.json["error"]["code"] == code


def test_a_body_over_one_mebibyte_is_413(partner_api, rider):
    body = hazard("big") | {"padding": "x" * (1024 * 1024)}
    response = partner_api.post_event(body)
    assert response.status_code == 413
    assert response.json["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("header", "code"),
    [(None, "missing_key"), ("Bearer nope", "invalid_key"), ("Basic abc", "missing_key"),
     ("Bearer pp_abcdefgh_" + "x" * 40, "invalid_key")],
)  # fmt: skip
def test_a_missing_or_wrong_key_is_401(client, orgs, header, code):
    headers = {"Authorization": header} if header else {}
    response = client.post("/api/v1/events", json=hazard("e1"), headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == code


def test_a_partner_only_reports_for_its_organisations_and_types(client, orgs):
    from app.services.partners import create_partner

    from ..partner_api import PartnerApi

    _, key = create_partner(
        "顺丰", code="sf", allowed_orgs=["sx.dt"], allowed_types=["governance.*"]
    )
    db.session.commit()
    api = PartnerApi(client, key)
    assert api.put_member("m", primary_org="sx.dt.pingcheng").status_code == 201
    assert api.put_member("n", primary_org=STATION).json["error"]["code"] == "org_not_allowed"
    assert api.post_event(hazard("e1", member="m")).status_code == 201
    wrong_org = api.post_event(hazard("e2", member="m", org=STATION))
    assert (wrong_org.status_code, wrong_org.json["error"]["code"]) == (403, "org_not_allowed")
    wrong_type = api.post_event(shift("e3", member="m"))
    assert (wrong_type.status_code, wrong_type.json["error"]["code"]) == (403, "type_not_allowed")


def test_batch_scores_each_event_and_commits_the_good_ones(partner_api, rider):
    events = [hazard(f"b{i}", severity="low", days_ago=1) for i in range(3)]
    events.insert(1, hazard("bad", member="nobody"))
    events.append(hazard("b0", severity="low", days_ago=1))  # repeat within the batch
    events.append(hazard("b1", severity="high", days_ago=1))  # same id, another body
    response = partner_api.post_batch(events)
    assert response.status_code == 200
    body = response.json
    statuses = [r["status"] for r in body["results"]]
    assert statuses == [201, 422, 201, 201, 200, 409]
    assert body["accepted"] == 4 and body["rejected"] == 2
    assert body["results"][1]["error"]["code"] == "unknown_member"
    assert body["results"][4]["result"] == body["results"][0]["result"]
    balances = [r["result"]["balance"] for r in body["results"] if r["status"] == 201]
    assert balances == [3, 6, 9]
    member = db.session.scalar(select(Member))
    assert member.balance == 9 == ledger_sum(member.id)
    again = partner_api.post_batch(events[:1])
    assert again.json["results"][0]["status"] == 200


@pytest.mark.parametrize("size", [0, 1001])
def test_batch_size_is_limited(partner_api, rider, size):
    response = partner_api.post_batch([hazard(f"x{i}") for i in range(size)])
    assert response.status_code == 422
    assert response.json["error"]["code"] == "batch_size"


def test_batch_needs_an_events_list(partner_api, rider):
    response = partner_api.client.post(
        "/api/v1/events/batch", json=[1], headers=partner_api.headers
    )
    assert response.status_code == 422


def test_emergency_multiplier_applies_in_the_declared_region(partner_api, rider):
    from app.services.ingest import clear_emergency_cache

    from ..factories import EmergencyFactory

    partner_api.post_event(hazard("before"))  # fills the emergency cache
    EmergencyFactory(org_code="sx.dt", name="暴雨", kind="flood")
    db.session.commit()
    clear_emergency_cache()
    response = partner_api.post_event(shift("e1", hours=2))
    assert response.json["points"] == 20  # 5 × 2 hours × 2
    assert "应急加倍：暴雨" in response.json["awards"][0]["reason"]


def test_ledger_is_a_hash_chain_and_balances_match(partner_api, rider):
    for i in range(4):
        partner_api.post_event(hazard(f"h{i}", severity="medium", days_ago=1 + i))
    member = db.session.scalar(select(Member))
    entries = list(db.session.scalars(select(LedgerEntry).order_by(LedgerEntry.seq)))
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    prev = ""
    for e in entries:
        assert e.prev_hash == prev and e.hash == e.content_hash()
        prev = e.hash
    assert member.ledger_head == prev and member.ledger_seq == 4
    assert member.balance == ledger_sum(member.id) == member.lifetime_points


@pytest.mark.parametrize(
    "body",
    [
        hazard("a\x00b"),
        hazard("n1") | {"data": {"severity": "high\x00"}},
        hazard("n2") | {"data": {"severity": "high", "k\x00": 1}},
    ],
)
def test_nul_characters_are_refused_not_a_500(partner_api, rider, body):
    response = partner_api.post_event(body)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_json"


def test_nul_in_a_member_reference_or_body_is_refused(partner_api):
    assert partner_api.put_member("r\x00x").status_code == 422
    assert partner_api.put_member("r2", name="a\x00b").status_code == 400
