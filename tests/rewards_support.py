"""Helpers for the rewards and expiry tests: a station below the members' home offering a
reward of every kind, points given through the ledger, and API calls made one request per
application context, as in production."""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import func, select

from app.engine.periods import zone
from app.extensions import db
from app.models import LedgerEntry, LedgerKind, Member, PartnerMember, RewardUsage
from app.services import ledger
from app.services.rules import current_rules

SHANGHAI = zone("Asia/Shanghai")
# A station of the members' home district (tests.partner_api.HOME): a rules file with rewards
# and no rules; it has no organisation row unless a test makes one.
SHOP = "sx.dt.pingcheng.test-station"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def shop_rewards(today: dt.date) -> str:
    """The rewards of ``SHOP``; the valid windows lie around ``today`` (a local date)."""
    soon, lately = today + dt.timedelta(days=10), today - dt.timedelta(days=10)
    return f"""
    rewards:
      - {{id: tea, name: 姜茶一杯, cost: 10}}
      - {{id: mug, name: 保温杯, cost: 5, stock: {{total: 10}}}}
      - id: lunch
        name: 爱心午餐
        cost: 1
        stock: {{total: 5, per_period: {{per: day, count: 2}}}}
      - {{id: raincoat, name: 雨衣, cost: 1, limit: {{per: month, count: 1}}}}
      - id: gloves
        name: 手套
        cost: 10
        stock: {{total: 100}}
        sponsor: {{name: 测试赞助甲, budget: {{per: month, points: 20}}}}
      - id: topup
        name: 话费充值
        cost: 5
        sponsor: {{name: 测试赞助乙, budget: {{per: month, yuan: 30}}, yuan_per_item: 12.5}}
      - {{id: helmet, name: 头盔, cost: 1, eligibility: {{min_level: expert}}}}
      - {{id: badge-pin, name: 党徽, cost: 1, eligibility: {{party_member: true}}}}
      - {{id: taiyuan-card, name: 太原公交卡, cost: 1, eligibility: {{subtree: sx.ty}}}}
      - {{id: pioneer-cap, name: 先锋帽, cost: 1, eligibility: {{badge: pioneer-10}}}}
      - {{id: parcel-bag, name: 快递包, cost: 1, eligibility: {{industry: express}}}}
      - {{id: spring-gift, name: 春节礼包, cost: 1, valid: {{from: {soon}}}}}
      - {{id: autumn-gift, name: 中秋礼包, cost: 1, valid: {{until: {lately}}}}}
      - id: winter-gift
        name: 冬季礼包
        cost: 1
        valid: {{from: {lately}, until: {soon}}}
      - {{id: ice-cream, name: 冰淇淋, cost: 1, pickup_hours: 1}}
      - {{id: city-map, name: 城市地图, cost: 1, sponsor: {{name: 测试赞助丙}}}}
      - {{id: bee-tea, name: 蜜蜂茶, cost: 1, eligibility: {{min_level: bee}}}}
    """


def install_shop(rules_dir_extra):
    """Install ``SHOP``'s rules file; the rule set now in force."""
    rules_dir_extra.add(SHOP, shop_rewards(dt.datetime.now(SHANGHAI).date()))
    return current_rules()


def key(reward_id: str) -> str:
    """The key of a reward of ``SHOP``, as the catalogue gives it."""
    return f"{SHOP}:{reward_id}"


def member_id(ref: str) -> int:
    return db.session.scalar(select(PartnerMember.member_id).where(PartnerMember.ref == ref))


def give(member: int, points: int, created_at: dt.datetime | None = None,
         kind: str = LedgerKind.ADJUST) -> None:  # fmt: skip
    """Append one entry (an adjustment by default) to the member's ledger and commit."""
    state = ledger.lock_members([member])[member]
    writer = ledger.LedgerWriter(states={member: state})
    writer.append(member, points, kind, org_code="sx.dt.pingcheng", category="other",
                  created_at=created_at, reason=f"测试：{points} 分")  # fmt: skip
    ledger.write(writer)
    db.session.commit()


def entries(member: int) -> list[LedgerEntry]:
    return list(
        db.session.scalars(
            select(LedgerEntry).where(LedgerEntry.member_id == member).order_by(LedgerEntry.seq)
        )
    )


def balance(member: int) -> int:
    return db.session.scalar(select(Member.balance).where(Member.id == member))


def assert_ledger_consistent(member: int) -> None:
    """The balance is the sum of the ledger, which never went below zero, and the hash chain
    is unbroken."""
    rows = entries(member)
    running, prev = 0, ""
    for e in rows:
        running += e.points
        assert running >= 0, f"balance went negative at seq {e.seq}"
        assert e.prev_hash == prev and e.hash == e.content_hash()
        prev = e.hash
    assert [e.seq for e in rows] == list(range(1, len(rows) + 1))
    assert balance(member) == running


def used(counter: str, period: str = "ever") -> int | None:
    """A reward_usage count (``reward:<key>`` or ``sponsor:<name>``); None: no row."""
    return db.session.scalar(
        select(RewardUsage.count).where(RewardUsage.key == counter, RewardUsage.period == period)
    )


def usage_rows() -> list[tuple]:
    """Every usage counter as (key, period, count, points, yuan), in order."""
    u = RewardUsage
    query = select(u.key, u.period, u.count, u.points, u.yuan).order_by(u.key, u.period)
    return [tuple(r) for r in db.session.execute(query)]


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def call(app, method: str, url: str, headers: dict, **kwargs):
    """One API request in an application context of its own, as in production: what the
    request leaves uncommitted (stock a refused redemption had taken) is rolled back when its
    context ends. The test's session is closed first, so that on SQLite it holds no write
    lock while the request runs; the test reads afresh afterwards."""
    db.session.remove()
    with app.app_context():
        response = app.test_client().open(url, method=method, headers=headers, **kwargs)
    return response


class RewardsApi:
    """The rewards API as one partner; every call is one request (see ``call``)."""

    def __init__(self, app, headers: dict):
        self.app = app
        self.headers = headers

    def open(self, method: str, url: str, **kwargs):
        return call(self.app, method, url, self.headers, **kwargs)

    def catalogue(self, org: str = SHOP, **query):
        return self.open("GET", "/api/v1/rewards", query_string={"org": org, **query})

    def redeem(self, ref: str, reward_id: str):
        return self.open(
            "POST", f"/api/v1/members/{ref}/redemptions", json={"reward": key(reward_id)}
        )

    def redemptions(self, ref: str, **query):
        return self.open("GET", f"/api/v1/members/{ref}/redemptions", query_string=query)

    def get(self, code: str):
        return self.open("GET", f"/api/v1/redemptions/{code}")

    def qr(self, code: str):
        return self.open("GET", f"/api/v1/redemptions/{code}/qr.png")

    def confirm(self, code: str):
        return self.open("POST", f"/api/v1/redemptions/{code}/confirm")

    def cancel(self, code: str):
        return self.open("POST", f"/api/v1/redemptions/{code}/cancel")


def race(app, calls) -> list:
    """Run each call (given a test client) in its own thread with its own application context
    and database connection, all released at once; their responses, in order."""
    db.session.remove()  # on SQLite an open transaction of the test would hold the write lock
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call_):
        with app.app_context():
            client = app.test_client()
            barrier.wait()
            try:
                results[i] = call_(client)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results
