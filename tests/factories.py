"""factory-boy factories for every model; one base, traits where a variant is common."""

from __future__ import annotations

import datetime as dt

import factory
from factory.alchemy import SQLAlchemyModelFactory

from app.extensions import db
from app.models import (
    Appeal,
    AuditEntry,
    BadgeGrant,
    BoardArchive,
    BoardPeriod,
    Certificate,
    ConsoleUser,
    Counter,
    Emergency,
    Event,
    LedgerEntry,
    LevelChange,
    LoginToken,
    Member,
    MemberOrg,
    Organisation,
    Partner,
    PartnerKey,
    PartnerMember,
    Redemption,
    RewardUsage,
    RuleVersion,
)
from app.services.console_users import hash_password


class Base(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = lambda: db.session  # noqa: E731 - the app's session
        sqlalchemy_session_persistence = "flush"


class OrganisationFactory(Base):
    class Meta:
        model = Organisation

    code = factory.Sequence(lambda n: f"sx.t{n}")
    name = factory.LazyAttribute(lambda o: f"组织 {o.code}")
    kind = "station"
    parent_code = factory.LazyAttribute(lambda o: Organisation.parent_of(o.code))
    depth = factory.LazyAttribute(lambda o: o.code.count("."))


class PartnerFactory(Base):
    class Meta:
        model = Partner

    code = factory.Sequence(lambda n: f"partner{n}")
    name = factory.LazyAttribute(lambda o: o.code.title())
    allowed_orgs = factory.LazyFunction(lambda: ["*"])
    allowed_types = factory.LazyFunction(lambda: ["*"])


class PartnerKeyFactory(Base):
    class Meta:
        model = PartnerKey

    partner = factory.SubFactory(PartnerFactory)
    key_id = factory.Sequence(lambda n: f"k{n:08d}")
    key_hash = "0" * 64


class MemberFactory(Base):
    class Meta:
        model = Member

    display_name = factory.Sequence(lambda n: f"骑手{n}")
    primary_org_id = factory.LazyFunction(lambda: OrganisationFactory().id)
    industry = "delivery"
    tags = factory.LazyFunction(list)

    class Params:
        party = factory.Trait(party_member=True)


class MemberOrgFactory(Base):
    class Meta:
        model = MemberOrg

    member_id = factory.LazyFunction(lambda: MemberFactory().id)
    org_id = factory.LazyFunction(lambda: OrganisationFactory().id)
    org_code = factory.LazyAttribute(lambda o: db.session.get(Organisation, o.org_id).code)


class PartnerMemberFactory(Base):
    class Meta:
        model = PartnerMember

    partner_id = factory.LazyFunction(lambda: PartnerFactory().id)
    ref = factory.Sequence(lambda n: f"rider-{n}")
    member_id = factory.LazyFunction(lambda: MemberFactory().id)


class EventFactory(Base):
    class Meta:
        model = Event

    partner_id = factory.LazyFunction(lambda: PartnerFactory().id)
    partner_event_id = factory.Sequence(lambda n: f"ev-{n}")
    body_hash = "0" * 64
    type = "governance.hazard_report"
    member_id = factory.LazyFunction(lambda: MemberFactory().id)
    org_code = "sx"
    occurred_at = factory.LazyFunction(lambda: dt.datetime.now(dt.UTC))
    data = factory.LazyFunction(lambda: {"severity": "low"})
    status = "awarded"
    rules_version = "test"
    response = factory.LazyFunction(dict)


class CounterFactory(Base):
    class Meta:
        model = Counter

    member_id = factory.LazyFunction(lambda: MemberFactory().id)
    bucket = "sx:pioneer-shift"
    period = "ever"
    points = 0
    count = 0


class EmergencyFactory(Base):
    class Meta:
        model = Emergency

    org_code = "sx"
    name = "汾河防汛"
    kind = "flood"
    starts_at = factory.LazyFunction(lambda: dt.datetime.now(dt.UTC) - dt.timedelta(days=30))


class LedgerEntryFactory(Base):
    """Only for tests that need a raw row; real entries go through services.ledger."""

    class Meta:
        model = LedgerEntry

    member_id = factory.LazyFunction(lambda: MemberFactory().id)
    seq = 1
    points = 10
    kind = "award"
    org_code = "sx"
    category = "other"
    occurred_at = factory.LazyFunction(lambda: dt.datetime.now(dt.UTC))
    created_at = factory.LazyFunction(lambda: dt.datetime.now(dt.UTC))
    reason = "测试"
    prev_hash = ""
    hash = "0" * 64


class BoardPeriodFactory(Base):
    class Meta:
        model = BoardPeriod

    period = factory.Sequence(lambda n: f"2025-W{n % 52 + 1:02d}")
    kind = "week"
    boards = 0
    rows = 0


class BoardArchiveFactory(Base):
    class Meta:
        model = BoardArchive

    board = "lb"
    scope = "sx"
    period = "2026-11"
    category = "total"
    position = factory.Sequence(lambda n: n + 1)
    rank = factory.LazyAttribute(lambda o: o.position)
    member_id = factory.Sequence(lambda n: n + 1)
    org_code = None
    points = 10


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BadgeGrantFactory(Base):
    """A raw grant row; real grants are made by services.achievements."""

    class Meta:
        model = BadgeGrant

    member_id = factory.LazyFunction(lambda: MemberFactory().id)
    badge = "sx:pioneer-10"
    n = factory.Sequence(lambda n: n + 1)
    granted_at = factory.LazyFunction(_now)
    reason = "第 10 次党员先锋岗值守（2026-11-20）"
    explanation = factory.LazyFunction(lambda: {"kind": "event_count", "threshold": 10})
    rules_version = "test"


class LevelChangeFactory(Base):
    class Meta:
        model = LevelChange

    member_id = factory.LazyFunction(lambda: MemberFactory().id)
    from_level = "bee"
    to_level = "expert"
    at = factory.LazyFunction(_now)
    lifetime_points = 300
    ladder_org = "sx"
    rules_version = "test"


class RedemptionFactory(Base):
    """A raw redemption row; real ones are made by services.rewards.redeem."""

    class Meta:
        model = Redemption

    code = factory.Sequence(lambda n: f"TEST{n:04d}")
    member_id = factory.LazyFunction(lambda: MemberFactory().id)
    reward = "sx.ty.xiaodian.pingyang.station-01:hot-drink"
    org_code = "sx.ty.xiaodian.pingyang.station-01"
    name = "热饮一杯"
    cost = 5
    status = "pending"
    created_at = factory.LazyFunction(_now)
    expires_at = factory.LazyFunction(lambda: _now() + dt.timedelta(hours=2))
    limit_period = "day:2026-11-30"
    rules_version = "test"


class RewardUsageFactory(Base):
    class Meta:
        model = RewardUsage

    key = factory.Sequence(lambda n: f"reward:sx:test-{n}")
    period = "ever"
    count = 1
    points = 5
    yuan = 0


class LoginTokenFactory(Base):
    """A raw token row; real links come from app.web.auth.issue_link."""

    class Meta:
        model = LoginToken

    jti = factory.Sequence(lambda n: f"jti{n:08d}")
    member_id = factory.LazyFunction(lambda: MemberFactory().id)
    partner_id = factory.LazyFunction(lambda: PartnerFactory().id)
    expires_at = factory.LazyFunction(lambda: _now() + dt.timedelta(minutes=5))


class AppealFactory(Base):
    class Meta:
        model = Appeal

    member_id = factory.LazyFunction(lambda: MemberFactory().id)
    org_code = "sx.dt.pingcheng"
    kind = "missing"
    note = "昨天的值守没有积分"


class CertificateFactory(Base):
    class Meta:
        model = Certificate

    code = factory.Sequence(lambda n: f"CERT{n:06d}")
    member_id = factory.LazyFunction(lambda: MemberFactory().id)
    year = 2026
    hours = 12.5


class ConsoleUserFactory(Base):
    """A console user; the password is ``secret-pass`` (hashed like real ones)."""

    class Meta:
        model = ConsoleUser

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.LazyAttribute(lambda o: f"管理员 {o.username}")
    org_code = "sx.dt.pingcheng"
    role = "admin"
    password_hash = factory.LazyFunction(lambda: hash_password("secret-pass"))


class AuditEntryFactory(Base):
    class Meta:
        model = AuditEntry

    username = "user0"
    org_code = "sx.dt.pingcheng"
    action = "test.action"
    target = "event:1"


class RuleVersionFactory(Base):
    """A stored rules version; real ones come from services.rules.publish."""

    class Meta:
        model = RuleVersion

    version = factory.Sequence(lambda n: f"v{n:011d}")
    files = factory.LazyFunction(lambda: {"sx.yaml": "org: sx\nname: 山西省\n"})
    published_by = "tester"
