"""The rewards API: the catalogue, redemption races, refusals and what they leave behind,
pickup and cancellation at the station, who may reach a redemption, and the QR image.

Every request runs in an application context of its own (``tests.rewards_support.call``), as
in production, so what a refused request leaves uncommitted is rolled back as it would be."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from sqlalchemy import select, update

from app.extensions import db
from app.models import LedgerKind, Member, Redemption, RedemptionStatus
from app.models.base import utcnow
from app.services import rewards
from app.services.partners import create_partner

from ..partner_api import STATION
from ..rewards_support import (
    PNG_SIGNATURE,
    SHANGHAI,
    SHOP,
    RewardsApi,
    assert_ledger_consistent,
    balance,
    count,
    entries,
    give,
    install_shop,
    key,
    member_id,
    race,
    usage_rows,
    used,
)


@pytest.fixture
def shop(rules_dir_extra):
    return install_shop(rules_dir_extra)


@pytest.fixture
def api(app, partner_api, shop) -> RewardsApi:
    """The member's partner (meituan): knows r1, may report for every organisation."""
    return RewardsApi(app, partner_api.headers)


def _partner(app, name: str, code: str, orgs: list[str]) -> RewardsApi:
    _, secret = create_partner(name, code=code, allowed_orgs=orgs)
    db.session.commit()
    return RewardsApi(app, {"Authorization": f"Bearer {secret}"})


@pytest.fixture
def shop_api(app, orgs) -> RewardsApi:
    """A partner serving the shop only: it knows none of the members."""
    return _partner(app, "驿站终端", "shop-terminal", [SHOP])


@pytest.fixture
def taiyuan_api(app, orgs) -> RewardsApi:
    """A partner of Taiyuan only: it neither knows r1 nor serves the shop."""
    return _partner(app, "太原平台", "taiyuan", ["sx.ty"])


def _member(ref: str, **attrs) -> int:
    """Set attributes of the member a partner calls ``ref`` directly on the row."""
    member = db.session.get(Member, member_id(ref))
    for name, value in attrs.items():
        setattr(member, name, value)
    db.session.commit()
    return member.id


def _today() -> dt.date:
    return dt.datetime.now(SHANGHAI).date()


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.json
    assert set(response.json) == {"error"}
    assert response.json["error"]["code"] == code
    assert response.json["error"]["message"]
    return response.json["error"]["details"]


def _snapshot(member: int) -> tuple:
    return balance(member), len(entries(member)), count(Redemption), usage_rows()


def _post(ref: str, reward: str, headers: dict):
    return lambda client: client.post(
        f"/api/v1/members/{ref}/redemptions", json={"reward": key(reward)}, headers=headers
    )


# --- races ---------------------------------------------------------------------------------


def test_fifty_concurrent_redemptions_on_a_balance_for_seven_take_exactly_seven(app, api, rider):
    member = member_id(rider)
    give(member, 70)  # tea costs 10
    responses = race(app, [_post(rider, "tea", api.headers)] * 50)
    assert sorted(r.status_code for r in responses) == [201] * 7 + [409] * 43
    refused = [r.json["error"] for r in responses if r.status_code == 409]
    assert {e["code"] for e in refused} == {"insufficient_points"}
    assert all(e["details"] == {"cost": 10, "balance": 0} for e in refused)
    # each success saw the balance the one before it left
    assert sorted(r.json["balance"] for r in responses if r.status_code == 201) == list(
        range(0, 70, 10)
    )
    assert balance(member) == 0
    redeemed = [e for e in entries(member) if e.kind == LedgerKind.REDEEM]
    assert len(redeemed) == 7 and {e.points for e in redeemed} == {-10}
    assert count(Redemption) == 7
    assert_ledger_consistent(member)


def test_a_hundred_members_racing_for_ten_items_get_exactly_ten(app, api, partner_api):
    ids = []
    for i in range(100):
        assert partner_api.put_member(f"m{i}").status_code == 201
        ids.append(member_id(f"m{i}"))
    for member in ids:
        give(member, 5)  # the mug costs 5; stock 10
    responses = race(app, [_post(f"m{i}", "mug", api.headers) for i in range(100)])
    assert sorted(r.status_code for r in responses) == [201] * 10 + [409] * 90
    assert {r.json["error"]["code"] for r in responses if r.status_code == 409} == {"out_of_stock"}
    assert used(f"reward:{key('mug')}") == 10
    assert count(Redemption) == 10
    winners = {r.json["code"] for r in responses if r.status_code == 201}
    assert len(winners) == 10
    assert sorted(balance(m) for m in ids) == [0] * 10 + [5] * 90
    for m in ids:
        assert_ledger_consistent(m)
    mug = next(r for r in api.catalogue().json["rewards"] if r["reward"] == key("mug"))
    assert mug["stock_left"] == 0


def test_concurrent_redemptions_by_one_member_stay_within_the_limit(app, api, rider):
    member = member_id(rider)
    give(member, 10)  # the raincoat costs 1, once a month
    responses = race(app, [_post(rider, "raincoat", api.headers)] * 10)
    assert sorted(r.status_code for r in responses) == [201] + [409] * 9
    refused = [r.json["error"] for r in responses if r.status_code == 409]
    assert {e["code"] for e in refused} == {"limit_reached"}
    assert all(e["details"]["redeemed"] == 1 for e in refused)
    assert balance(member) == 9 and count(Redemption) == 1
    assert_ledger_consistent(member)


def test_members_racing_for_a_sponsors_budget_get_what_it_pays_for(app, api, partner_api):
    ids = []
    for i in range(10):
        assert partner_api.put_member(f"m{i}").status_code == 201
        ids.append(member_id(f"m{i}"))
        give(ids[-1], 10)  # the gloves cost 10; the sponsor pays for 20 points a month
    responses = race(app, [_post(f"m{i}", "gloves", api.headers) for i in range(10)])
    assert sorted(r.status_code for r in responses) == [201] * 2 + [409] * 8
    refused = [r.json["error"] for r in responses if r.status_code == 409]
    assert {(e["code"], e["details"]["sponsor"]) for e in refused} == {
        ("out_of_stock", "测试赞助甲")
    }
    assert used(f"reward:{key('gloves')}") == 2  # stock taken by the refused was given back
    ((_, _, n, points, _),) = [r for r in usage_rows() if r[0] == "sponsor:测试赞助甲"]
    assert (n, points) == (2, 20)
    assert sorted(balance(m) for m in ids) == [0] * 2 + [10] * 8


# --- eligibility ---------------------------------------------------------------------------


@pytest.fixture
def qualified(partner_api, shop) -> str:
    """A member every eligibility rule of the shop admits: an express courier and party
    member of the expert level, taking part in a Taiyuan station, holding the pioneer badge."""
    response = partner_api.put_member("q1", party_member=True, industry="express", orgs=[STATION])
    assert response.status_code == 201, response.json
    give(_member("q1", level="expert", progress={"b": {"sx:pioneer-10": 1}}), 10)
    return "q1"


@pytest.fixture
def ordinary(rider, shop) -> str:
    """r1: a delivery rider of Pingcheng, not a party member, at the first level, no badge."""
    give(_member(rider, level="bee"), 10)
    return rider


ELIGIBILITY = [
    ("helmet", {"min_level": "expert", "level": "bee"}),
    ("badge-pin", {"party_member": True}),
    ("taiyuan-card", {"subtree": "sx.ty"}),
    ("pioneer-cap", {"badge": "pioneer-10"}),
    ("parcel-bag", {"industry": "express"}),
]
WINDOWS = [("spring-gift", "valid_from", 10), ("autumn-gift", "valid_until", -10)]


@pytest.mark.parametrize(("reward", "details"), ELIGIBILITY)
def test_a_member_the_eligibility_rule_excludes_is_refused_not_eligible(
    api, ordinary, reward, details
):
    assert _error(api.redeem(ordinary, reward), 409, "not_eligible") == details


@pytest.mark.parametrize(("reward", "field", "days"), WINDOWS)
def test_a_reward_outside_its_valid_window_is_refused_not_eligible(
    api, ordinary, reward, field, days
):
    expected = (_today() + dt.timedelta(days=days)).isoformat()
    assert _error(api.redeem(ordinary, reward), 409, "not_eligible") == {field: expected}


@pytest.mark.parametrize("reward", [r for r, _ in ELIGIBILITY] + ["winter-gift"])
def test_a_member_the_eligibility_rules_admit_redeems(api, qualified, reward):
    response = api.redeem(qualified, reward)
    assert response.status_code == 201, response.json
    assert response.json["balance"] == 9


def test_a_member_without_the_badge_is_refused_and_the_same_member_holding_it_redeems(
    api, ordinary
):
    assert _error(api.redeem(ordinary, "pioneer-cap"), 409, "not_eligible") == {
        "badge": "pioneer-10"
    }
    _member(ordinary, progress={"b": {"sx:pioneer-10": 1}})
    assert api.redeem(ordinary, "pioneer-cap").status_code == 201


def test_the_catalogue_for_a_member_says_which_rewards_they_may_redeem_and_why_not(api, ordinary):
    response = api.catalogue(member=ordinary)
    assert response.status_code == 200, response.json
    view = {r["reward"].rpartition(":")[2]: r["member"] for r in response.json["rewards"]}
    refusals = {rid: v["refusal"]["code"] for rid, v in view.items() if not v["eligible"]}
    assert refusals == {
        "helmet": "not_eligible",
        "badge-pin": "not_eligible",
        "taiyuan-card": "not_eligible",
        "pioneer-cap": "not_eligible",
        "parcel-bag": "not_eligible",
        "spring-gift": "not_eligible",
        "autumn-gift": "not_eligible",
    }
    assert all(v["refusal"] is None for v in view.values() if v["eligible"])
    for reward, details in ELIGIBILITY:  # the same reasons a redemption would give
        assert view[reward]["refusal"]["details"] == details
    for reward, field, days in WINDOWS:
        expected = (_today() + dt.timedelta(days=days)).isoformat()
        assert view[reward]["refusal"]["details"] == {field: expected}
    # after a raincoat (once a month) the balance of 9 covers neither the tea nor the gloves
    assert api.redeem(ordinary, "raincoat").status_code == 201
    view = {
        r["reward"].rpartition(":")[2]: r["member"]
        for r in api.catalogue(member=ordinary).json["rewards"]
    }
    raincoat = view["raincoat"]
    assert (raincoat["eligible"], raincoat["redeemed"]) == (False, 1)
    assert raincoat["refusal"]["code"] == "limit_reached"
    assert raincoat["refusal"]["details"] == {"limit": 1, "redeemed": 1}
    for reward in ("tea", "gloves"):
        assert view[reward]["refusal"]["code"] == "insufficient_points"
        assert view[reward]["refusal"]["details"] == {"cost": 10, "balance": 9}
    assert view["mug"]["eligible"] and view["mug"]["redeemed"] == 0


def test_the_catalogue_for_a_qualified_member_lists_every_reward_in_its_window_as_eligible(
    api, qualified
):
    rewards_ = api.catalogue(member=qualified).json["rewards"]
    eligible = {r["reward"].rpartition(":")[2] for r in rewards_ if r["member"]["eligible"]}
    assert eligible == {
        "tea", "mug", "lunch", "raincoat", "gloves", "topup", "helmet", "badge-pin",
        "taiyuan-card", "pioneer-cap", "parcel-bag", "winter-gift", "ice-cream", "city-map",
        "bee-tea",
    }  # fmt: skip


def test_the_catalogue_says_no_once_the_sponsors_budget_is_spent(api, rider):
    give(member_id(rider), 30)
    for _ in range(2):  # the sponsor pays for two pairs of gloves a month
        assert api.redeem(rider, "gloves").status_code == 201
    assert _error(api.redeem(rider, "gloves"), 409, "out_of_stock")["sponsor"] == "测试赞助甲"
    rows = api.catalogue(member=rider).json["rewards"]
    gloves = next(r["member"] for r in rows if r["reward"] == key("gloves"))
    assert gloves["eligible"] is False
    assert gloves["refusal"]["code"] == "out_of_stock"


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "before", "reward", "code"),
    [
        (5, [], "tea", "insufficient_points"),
        (5, [], "helmet", "not_eligible"),
        (5, ["raincoat"], "raincoat", "limit_reached"),
        (5, ["mug"] * 10, "mug", "out_of_stock"),  # ten in all
        (5, ["lunch", "lunch"], "lunch", "out_of_stock"),  # two a day
        # the gloves' stock is taken before the sponsor's budget (20 points: two pairs) says no
        (30, ["gloves", "gloves"], "gloves", "out_of_stock"),
    ],
)
def test_a_refused_redemption_writes_nothing(api, shop, rider, points, before, reward, code):
    member = member_id(rider)
    give(member, points + sum(rewards.find_reward(shop, key(r)).cost for r in before))
    for earlier in before:
        assert api.redeem(rider, earlier).status_code == 201
    was = _snapshot(member)
    _error(api.redeem(rider, reward), 409, code)
    assert _snapshot(member) == was
    assert_ledger_consistent(member)


# --- cancel and pickup ---------------------------------------------------------------------


def _stock_left(api: RewardsApi, reward: str):
    rows = api.catalogue().json["rewards"]
    return next(r["stock_left"] for r in rows if r["reward"] == key(reward))


def _row(code: str) -> Redemption:
    return db.session.scalar(select(Redemption).where(Redemption.code == code))


@pytest.mark.parametrize("endpoint", ["get", "list", "confirm", "cancel"])
def test_the_endpoints_answering_a_redemption_answer_200_with_it(api, rider, endpoint):
    give(member_id(rider), 10)
    code = api.redeem(rider, "tea").json["code"]
    response = {
        "get": lambda: api.get(code),
        "list": lambda: api.redemptions(rider),
        "confirm": lambda: api.confirm(code),
        "cancel": lambda: api.cancel(code),
    }[endpoint]()
    assert response.status_code == 200, response.json
    body = response.json["items"][0] if endpoint == "list" else response.json
    assert body["code"] == code
    assert dt.datetime.fromisoformat(body["created_at"]) == _row(code).created_at


def test_cancelling_answers_the_redemption_cancelled_with_the_points_and_stock_back(api, rider):
    member = member_id(rider)
    give(member, 10)
    left = _stock_left(api, "mug")
    code = api.redeem(rider, "mug").json["code"]
    assert _stock_left(api, "mug") == left - 1
    response = api.cancel(code)
    assert response.status_code == 200, response.json
    assert response.json["status"] == "cancelled" and response.json["decided_at"]
    assert response.json["balance"] == 10 == balance(member)
    assert _stock_left(api, "mug") == left
    refund = entries(member)[-1]
    assert (refund.kind, refund.points, refund.ref) == ("refund", 5, f"redemption:{code}")
    assert (_row(code).status, _row(code).decided_by) == ("cancelled", "partner:meituan")


def test_a_partner_serving_the_station_confirms_the_pickup(api, shop_api, rider):
    give(member_id(rider), 10)
    code = api.redeem(rider, "tea").json["code"]
    response = shop_api.confirm(code)
    assert response.status_code == 200, response.json
    assert response.json["status"] == "confirmed" and response.json["decided_at"]
    assert (_row(code).status, _row(code).decided_by) == ("confirmed", "partner:shop-terminal")


def test_a_members_redemptions_are_listed_newest_first_and_by_status(api, rider):
    give(member_id(rider), 30)
    codes = [api.redeem(rider, "tea").json["code"] for _ in range(3)]
    rewards.refund(_row(codes[1]), RedemptionStatus.CANCELLED, "member")
    db.session.commit()
    listed = api.redemptions(rider)
    assert listed.status_code == 200, listed.json
    assert [(r["code"], r["status"]) for r in listed.json["items"]] == [
        (codes[2], "pending"), (codes[1], "cancelled"), (codes[0], "pending")
    ]  # fmt: skip
    cancelled = api.redemptions(rider, status="cancelled").json["items"]
    assert [r["code"] for r in cancelled] == [codes[1]]


def test_the_station_partner_reaches_a_redemption_of_a_member_it_does_not_know(
    api, shop_api, rider
):
    give(member_id(rider), 10)
    code = api.redeem(rider, "tea").json["code"]
    assert shop_api.qr(code).status_code == 200


def test_a_cancelled_redemption_is_not_cancelled_or_confirmed_again(api, shop_api, rider):
    member = member_id(rider)
    give(member, 10)
    code = api.redeem(rider, "tea").json["code"]
    rewards.refund(_row(code), RedemptionStatus.CANCELLED, "partner:meituan")
    db.session.commit()
    assert _error(api.cancel(code), 409, "not_pending") == {"code": code, "status": "cancelled"}
    assert _error(shop_api.confirm(code), 409, "not_pending")["status"] == "cancelled"
    assert balance(member) == 10
    assert [e.kind for e in entries(member)] == ["adjust", "redeem", "refund"]  # refunded once


def test_a_picked_up_redemption_is_not_confirmed_again_or_cancelled(api, shop_api, rider):
    member = member_id(rider)
    give(member, 10)
    code = api.redeem(rider, "tea").json["code"]
    rewards.confirm(_row(code), "partner:shop-terminal")
    db.session.commit()
    assert _error(shop_api.confirm(code), 409, "not_pending")["status"] == "confirmed"
    assert _error(api.cancel(code), 409, "not_pending") == {"code": code, "status": "confirmed"}
    assert balance(member) == 0 and len(entries(member)) == 2  # no refund


def test_a_partner_that_knows_the_member_but_does_not_serve_the_station_may_not_confirm(
    shop, taiyuan_api, shop_api
):
    response = taiyuan_api.open("PUT", "/api/v1/members/t1", json={"name": "李师傅",
                                "primary_org": STATION})  # fmt: skip
    assert response.status_code == 201, response.json
    give(member_id("t1"), 10)
    redeemed = taiyuan_api.redeem("t1", "tea")  # it may redeem anywhere for its member
    assert redeemed.status_code == 201, redeemed.json
    code = redeemed.json["code"]
    assert _error(taiyuan_api.confirm(code), 403, "org_not_allowed") == {"org": SHOP}
    assert _row(code).status == "pending"
    assert taiyuan_api.qr(code).status_code == 200  # it does reach it: it knows the member


@pytest.mark.parametrize("action", ["get", "qr", "confirm", "cancel"])
def test_a_partner_that_neither_knows_the_member_nor_serves_the_station_gets_404(
    api, taiyuan_api, rider, action
):
    member = member_id(rider)
    give(member, 10)
    code = api.redeem(rider, "tea").json["code"]
    assert _error(getattr(taiyuan_api, action)(code), 404, "unknown_redemption") == {"code": code}
    assert (_row(code).status, _row(code).decided_at) == ("pending", None)
    assert balance(member) == 0 and len(entries(member)) == 2


def test_the_catalogue_of_a_station_the_partner_does_not_serve_is_403(shop, taiyuan_api):
    assert _error(taiyuan_api.catalogue(), 403, "org_not_allowed") == {"org": SHOP}


def test_confirming_after_the_pickup_time_refunds_and_answers_not_pending(api, shop_api, rider):
    member = member_id(rider)
    give(member, 10)
    code = api.redeem(rider, "ice-cream").json["code"]  # one hour to pick it up
    db.session.execute(
        update(Redemption)
        .where(Redemption.code == code)
        .values(expires_at=utcnow() - dt.timedelta(minutes=1))
    )
    db.session.commit()
    assert _error(shop_api.confirm(code), 409, "not_pending") == {
        "code": code, "status": "expired"
    }  # fmt: skip
    assert (_row(code).status, _row(code).decided_by) == ("expired", "expiry")
    assert balance(member) == 10
    assert [e.kind for e in entries(member)] == ["adjust", "redeem", "refund"]
    assert rewards.expire_due() == 0  # the expiry job finds nothing left to do
    db.session.commit()
    assert [e.kind for e in entries(member)] == ["adjust", "redeem", "refund"]
    assert_ledger_consistent(member)


# --- the QR code ---------------------------------------------------------------------------


def test_the_qr_image_of_a_redemption_is_a_png_also_given_as_a_data_uri(api, rider):
    give(member_id(rider), 10)
    redeemed = api.redeem(rider, "tea")
    prefix = "data:image/png;base64,"
    assert redeemed.json["qr"].startswith(prefix)
    inline = base64.b64decode(redeemed.json["qr"].removeprefix(prefix), validate=True)
    assert inline.startswith(PNG_SIGNATURE)
    image = api.qr(redeemed.json["code"])
    assert image.status_code == 200
    assert image.mimetype == "image/png"
    assert image.data.startswith(PNG_SIGNATURE)
    assert image.data == inline  # the same code, drawn the same way
    assert api.qr(redeemed.json["code"].lower()).data == inline  # codes are read aloud


# --- bad requests --------------------------------------------------------------------------


@pytest.mark.parametrize("reward", [key("no-such-reward"), "sx.nowhere:tea", "tea"])
def test_an_unknown_reward_is_404_unknown_reward(api, rider, reward):
    give(member_id(rider), 10)
    response = api.open("POST", f"/api/v1/members/{rider}/redemptions", json={"reward": reward})
    assert _error(response, 404, "unknown_reward") == {"reward": reward}
    assert count(Redemption) == 0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"", 400, "bad_json"),
        (b"{reward: tea}", 400, "bad_json"),
        (b"\xff\xfe", 400, "bad_json"),
        (b"[]", 422, "invalid"),
        (b"{}", 422, "invalid"),
        (b'{"reward": 7}', 422, "invalid"),
        (b'{"reward": ""}', 422, "invalid"),
        (b'{"reward": "sx.dt.pingcheng.test-station:tea", "count": 2}', 422, "invalid"),
    ],
)
def test_a_malformed_redemption_body_is_refused_in_the_error_shape(api, rider, body, status,
                                                                   code):  # fmt: skip
    member = member_id(rider)
    give(member, 10)
    response = api.open("POST", f"/api/v1/members/{rider}/redemptions", data=body,
                        content_type="application/json")  # fmt: skip
    _error(response, status, code)
    assert count(Redemption) == 0 and len(entries(member)) == 1


def test_a_schema_refusal_names_the_field(api, rider):
    response = api.open("POST", f"/api/v1/members/{rider}/redemptions", json={})
    assert set(_error(response, 422, "invalid")) == {"reward"}


@pytest.mark.parametrize(
    ("method", "url", "query"),
    [
        ("POST", "/api/v1/members/nobody/redemptions", None),
        ("GET", "/api/v1/members/nobody/redemptions", None),
        ("GET", "/api/v1/rewards", {"org": SHOP, "member": "nobody"}),
    ],
)
def test_an_unknown_member_is_404(api, method, url, query):
    response = api.open(method, url, json={"reward": key("tea")} if method == "POST" else None,
                        query_string=query)  # fmt: skip
    _error(response, 404, "unknown_member")


def test_another_partners_member_is_unknown_to_this_partner(api, taiyuan_api, rider):
    give(member_id(rider), 10)
    _error(taiyuan_api.redeem(rider, "tea"), 404, "unknown_member")
    assert count(Redemption) == 0


@pytest.mark.parametrize(("code", "status", "error"), [("ZZZZ2345", 404, "unknown_redemption"),
                                                       ("ab", 422, "invalid")])  # fmt: skip
def test_an_unknown_or_malformed_redemption_code_is_refused(api, code, status, error):
    _error(api.get(code), status, error)
