"""Demo data for a fresh machine: organisations, a demo partner, members and a few weeks of
their events, all made through the same services as real traffic, and idempotent.

Events go through ``ingest`` exactly as a partner's API calls would, so ledger, counters and
balances are consistent. Everything is deterministic from ``seed`` and the calendar: the
events of one member on one day depend only on (seed, member, day), and their ids name the
member and the day, so running the seed again replays what is stored instead of adding to it
(a run on a later day adds only the days that have passed since).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import select

from ..engine.periods import zone
from ..extensions import db
from ..models import Member, Organisation, OrgKind, Partner, PartnerMember
from ..models.base import utcnow
from ..models.member import PART_TIME_ROLES
from .ingest import ingest
from .members import upsert_member
from .orgs import import_orgs
from .partners import add_key, create_partner
from .rules import current_rules

PARTNER_CODE = "demo"
PARTNER_NAME = "演示平台"
BATCH = 500  # events per ingest call

# Names (and kinds) of the organisations the demo needs besides those with a rules file:
# ancestors a rules directory may leave out, and a few more stations below the streets.
KNOWN_ORGS: dict[str, tuple[str, str]] = {
    "sx": ("山西省", OrgKind.PROVINCE),
    "sx.ty": ("太原市", OrgKind.CITY),
    "sx.ty.xiaodian": ("小店区", OrgKind.DISTRICT),
    "sx.ty.xiaodian.pingyang": ("平阳路街道", OrgKind.STREET),
    "sx.ty.xiaodian.pingyang.station-01": ("平阳路暖心驿站", OrgKind.STATION),
    "sx.ty.xiaodian.wucheng": ("坞城街道", OrgKind.STREET),
    "sx.ty.yingze": ("迎泽区", OrgKind.DISTRICT),
    "sx.ty.yingze.liuxiang": ("柳巷街道", OrgKind.STREET),
    "sx.ty.yingze.liuxiang.station-01": ("柳巷暖心驿站", OrgKind.STATION),
    "sx.dt": ("大同市", OrgKind.CITY),
    "sx.dt.pingcheng": ("平城区", OrgKind.DISTRICT),
    "sx.dt.pingcheng.xinjian": ("新建南路街道", OrgKind.STREET),
    "sx.dt.pingcheng.xinjian.drivers-home": ("新建南路司机之家", OrgKind.DRIVERS_HOME),
    "sx.cz": ("长治市", OrgKind.CITY),
    "sx.cz.luzhou": ("潞州区", OrgKind.DISTRICT),
    "sx.cz.luzhou.dongjie": ("东街街道", OrgKind.STREET),
    "sx.cz.luzhou.dongjie.station-01": ("东街暖心驿站", OrgKind.STATION),
    "sx.yq": ("阳泉市", OrgKind.CITY),
    "sx.yq.chengqu": ("阳泉市城区", OrgKind.DISTRICT),
    "sx.yq.chengqu.beidajie": ("北大街街道", OrgKind.STREET),
    "ind": ("行业党委", OrgKind.INDUSTRY),
    "ind.delivery": ("网络餐饮外卖行业党委", OrgKind.INDUSTRY),
    "ind.express": ("快递行业党委", OrgKind.INDUSTRY),
    "ind.transport": ("交通运输行业党委", OrgKind.INDUSTRY),
    "ind.internet": ("互联网行业党委", OrgKind.INDUSTRY),
}
EXTRA_ORGS: dict[str, tuple[str, str]] = {
    "sx.ty.xiaodian.pingyang.station-02": ("平阳路第二暖心驿站", OrgKind.STATION),
    "sx.ty.xiaodian.wucheng.station-01": ("坞城暖心驿站", OrgKind.STATION),
    "sx.ty.yingze.liuxiang.station-02": ("柳巷南口暖心驿站", OrgKind.STATION),
    "sx.dt.pingcheng.xinjian.station-01": ("新建南路暖心驿站", OrgKind.STATION),
    "sx.cz.luzhou.dongjie.station-02": ("东街第二暖心驿站", OrgKind.STATION),
    "sx.yq.chengqu.beidajie.station-01": ("北大街暖心驿站", OrgKind.STATION),
}
# Volunteer projects the streets publish (their rules give bonuses for some prefixes).
PROJECTS = {
    "sx.ty.xiaodian.pingyang": ["PY-老年助餐", "PY-社区清洁"],
    "sx.ty.xiaodian.wucheng": ["WC-老年助餐", "WC-校园周边秩序"],
    "sx.dt.pingcheng.xinjian": ["XJ-冬季清雪", "XJ-助老理发"],
    "sx.cz.luzhou.dongjie": ["DJ-清理排水沟", "DJ-装沙袋"],
}
GENERAL_PROJECTS = ["文明交通劝导", "社区义诊协助", "公园环境清洁"]
POSTS = {"sx.ty.yingze.liuxiang.station-01": "LX-GATE"}
HOME_TOWNS = ["sx.yq", "sx.cz", "sx.dt", "sx.ty"]
SHOPS = ["老王刀削面", "晋味小厨", "某某黄焖鸡", "平遥牛肉馆", "太谷饼铺"]

SURNAMES = "王李张刘陈杨赵黄周吴徐孙马胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾田"
GIVEN = [
    "小华", "建国", "志强", "海波", "晓明", "春燕", "国庆", "红梅", "伟", "磊", "军",
    "勇", "杰", "娟", "丽", "强", "亮", "鹏飞", "文博", "子轩", "浩然", "雪梅", "桂英",
    "卫东", "振华", "立新", "宏伟", "晓东", "明辉", "俊杰",
]  # fmt: skip
ROLES = list(PART_TIME_ROLES)
INDUSTRIES = [("delivery", 50), ("express", 25), ("internet", 15), ("transport", 10)]


@dataclass
class DemoResult:
    orgs_created: int = 0
    members_created: int = 0
    members: int = 0
    events_posted: int = 0  # new events stored by this run
    events_replayed: int = 0  # posted before: answered from the store, nothing added
    events_refused: int = 0  # refused by ingest (should stay 0)
    points_awarded: int = 0  # by this run's new events
    key: str = ""
    sample_ref: str = ""
    refusals: list[str] = field(default_factory=list)  # the first few reasons


def seed_demo(
    weeks: int = 3,
    members_per_station: int = 8,
    seed: int = 7,
    now: dt.datetime | None = None,
) -> DemoResult:
    """Create (or complete) the demo data; return counts and a new API key of the demo
    partner. The caller commits. ``now`` (default: the current time) bounds the events."""
    result = DemoResult()
    tz = zone(current_app.config["APP_TIMEZONE"])
    now = (now or utcnow()).astimezone(tz)
    rules = current_rules()

    orgs = _org_rows(rules.files)
    result.orgs_created = _import_missing(orgs)
    result.key = _demo_key()
    partner = db.session.scalar(select(Partner).where(Partner.code == PARTNER_CODE))

    stations = [
        c for c, (_, kind) in orgs.items() if kind in (OrgKind.STATION, OrgKind.DRIVERS_HOME)
    ]
    members = [
        _profile(seed, code, i) for code in sorted(stations) for i in range(members_per_station)
    ]
    for m in members:
        result.members_created += _register(partner, m)
    result.members = len(members)
    showcase = "sx.ty.xiaodian.pingyang.station-01"  # the station with the most rules above it
    shown = [m["ref"] for m in members if m["primary_org"] == showcase] or [
        m["ref"] for m in members
    ]
    result.sample_ref = shown[0] if shown else ""

    horizon = current_app.config["EVENT_HORIZON_DAYS"]
    days = max(0, min(weeks * 7, horizon - 1))  # today and the days before, within the horizon
    events = []
    for m in members:
        for back in range(days - 1, -1, -1):
            events.extend(_day_events(seed, m, (now - dt.timedelta(days=back)).date(), tz))
    events = [e for e in events if e["type"] in rules.event_types and _ends(e) <= now]
    events.sort(key=lambda e: (dt.datetime.fromisoformat(e["occurred_at"]), e["id"]))
    for start in range(0, len(events), BATCH):
        for outcome in ingest(partner, events[start : start + BATCH]):
            if outcome.error is not None:
                result.events_refused += 1
                if len(result.refusals) < 5:
                    result.refusals.append(outcome.error.message)
            elif outcome.status == 201:
                result.events_posted += 1
                result.points_awarded += outcome.body["points"]
            else:
                result.events_replayed += 1
    return result


# --- organisations ----------------------------------------------------------------------------


def _org_rows(files: dict) -> dict[str, tuple[str, str]]:
    """Every organisation with a rules file, the extra stations, and all their ancestors."""
    wanted: dict[str, tuple[str, str]] = {}
    for code, f in files.items():
        wanted[code] = (f.name or _default_name(code), _kind(code))
    wanted.update(EXTRA_ORGS)
    for code in list(wanted):
        parent = Organisation.parent_of(code)
        while parent and parent not in wanted:
            wanted[parent] = KNOWN_ORGS.get(parent) or (_default_name(parent), _kind(parent))
            parent = Organisation.parent_of(parent)
    return dict(sorted(wanted.items(), key=lambda kv: (kv[0].count("."), kv[0])))


def _kind(code: str) -> str:
    if code in KNOWN_ORGS:
        return KNOWN_ORGS[code][1]
    last = code.rsplit(".", 1)[-1]
    if code == "ind" or code.startswith("ind."):
        return OrgKind.INDUSTRY
    if last.startswith("station"):
        return OrgKind.STATION
    if last.startswith("drivers-home"):
        return OrgKind.DRIVERS_HOME
    if last.startswith("service-centre"):
        return OrgKind.CENTRE
    by_depth = [OrgKind.PROVINCE, OrgKind.CITY, OrgKind.DISTRICT, OrgKind.STREET]
    depth = code.count(".")
    return by_depth[depth] if depth < len(by_depth) else OrgKind.COMMUNITY


def _default_name(code: str) -> str:
    return KNOWN_ORGS[code][0] if code in KNOWN_ORGS else code


def _import_missing(orgs: dict[str, tuple[str, str]]) -> int:
    """Create the organisations that do not exist yet; existing ones are left as they are
    (an administrator may have renamed them)."""
    existing = set(db.session.scalars(select(Organisation.code).where(Organisation.code.in_(orgs))))
    rows = [
        (i + 1, {"code": code, "name": name, "kind": str(kind)})
        for i, (code, (name, kind)) in enumerate(orgs.items())
        if code not in existing
    ]
    if not rows:
        return 0
    return import_orgs(rows, "demo").created


# --- partner and members ----------------------------------------------------------------------


def _demo_key() -> str:
    """The demo partner's new key: its first on creation, else one more."""
    partner = db.session.scalar(select(Partner).where(Partner.code == PARTNER_CODE))
    if partner is None:
        _, key = create_partner(PARTNER_NAME, code=PARTNER_CODE)
        return key
    return add_key(partner)


def _rng(seed: int, *parts) -> random.Random:
    return random.Random(":".join(str(p) for p in (seed, *parts)))


def _profile(seed: int, station: str, index: int) -> dict:
    """A member's registration, deterministic from (seed, station, index)."""
    ref = station.removeprefix("sx.").replace(".", "-") + f"-{index + 1:02d}"
    rng = _rng(seed, "member", ref)
    if station.rsplit(".", 1)[-1].startswith("drivers-home"):
        industry = rng.choices(["transport", "internet"], [4, 1])[0]
    else:
        industry = rng.choices([i for i, _ in INDUSTRIES], [w for _, w in INDUSTRIES])[0]
    roles = rng.choices([0, 1, 2], [3, 5, 2])[0]
    profile = {
        "ref": ref,
        "name": rng.choice(SURNAMES) + rng.choice(GIVEN),
        "phone": "139" + "".join(rng.choice("0123456789") for _ in range(8)),
        "primary_org": station,
        "party_member": rng.random() < 0.35,
        "industry": industry,
        "tags": sorted(rng.sample(ROLES, roles)),
    }
    home = rng.choice(HOME_TOWNS)
    if rng.random() < 0.25 and not station.startswith(home + "."):
        profile["orgs"] = [home]  # works here, comes from another city (流出地 + 流入地)
    return profile


def _register(partner: Partner, profile: dict) -> int:
    """Register or refresh one demo member; 1 if it is new.

    The phone number is set only once the reference exists, so a fake number can never link
    the demo member to a real person registered by another partner, and the member is marked
    no_phone_merge so nobody else's registration links to it either."""
    ref = profile["ref"]
    data = {k: v for k, v in profile.items() if k not in ("ref", "phone")}
    member, created = upsert_member(partner, ref, data)
    if created:
        upsert_member(partner, ref, {"phone": profile["phone"]})
    member.no_phone_merge = True
    return int(created)


# --- events -----------------------------------------------------------------------------------

# Times of day (local) for duties with a time span, so one member's spans never overlap:
# morning and afternoon shifts, volunteering in the late afternoon, a short night shift.
MORNING, AFTERNOON, VOLUNTEER, NIGHT = (7, 0), (13, 0), (16, 30), (22, 0)


def _ends(event: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(event["data"].get("end") or event["occurred_at"])


def _at(day: dt.date, hour: int, minute: int, tz) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)


def _day_events(seed: int, m: dict, day: dt.date, tz) -> list[dict]:
    """One member's events of one day, deterministic from (seed, member, day)."""
    rng = _rng(seed, "day", m["ref"], day.isoformat())
    tags = set(m["tags"])
    party = m["party_member"]
    weekend = day.isoweekday() >= 6
    out: list[dict] = []

    def add(type_: str, at: dt.datetime, data: dict) -> None:
        out.append(
            {
                "id": f"demo-{m['ref']}-{day:%Y%m%d}-{len(out) + 1}",
                "type": type_,
                "member": m["ref"],
                "occurred_at": at.isoformat(),
                "data": data,
            }
        )

    def span(type_: str, slot: tuple[int, int], hours: float, **extra) -> None:
        start = _at(day, *slot, tz)
        end = start + dt.timedelta(hours=hours)
        add(type_, start, {"hours": hours, "start": start.isoformat(), "end": end.isoformat()})
        out[-1]["data"].update(extra)

    def moment(first: int, last: int) -> dt.datetime:
        return _at(day, rng.randint(first, last), rng.choice([0, 10, 20, 30, 40, 50]), tz)

    def chance(p: float) -> bool:
        return rng.random() < p

    if not chance(0.75):  # a day off
        return out
    post = {"post": POSTS[m["primary_org"]]} if m["primary_org"] in POSTS else {}
    if chance(0.6 if party else 0.3):
        span("pioneer.shift", MORNING, rng.choice([0.5, 1, 2, 3, 4]), **post)
    if chance(0.3 if party else 0.15):
        span("pioneer.shift", AFTERNOON, rng.choice([1, 1.5, 2, 3]), **post)
    if party and chance(0.08):
        span("pioneer.shift", NIGHT, 1.5, **post)
    if chance(0.06 if party else 0.015):
        data = {"hours": rng.choice([1, 2, 3]), "urgent": chance(0.3)}
        add("pioneer.callout", moment(18, 21), data)
    if m["industry"] == "transport" and chance(0.35):
        data = {"km": rng.randint(3, 26) * 10, "red_flag": party and chance(0.4)}
        add("pioneer.fleet_run", moment(5, 20), data)
    if chance(0.3 if tags & {"traffic_safety_officer", "grid_member"} else 0.06):
        data = {"severity": rng.choices(["low", "medium", "high"], [5, 3, 2])[0]}
        add("governance.hazard_report", moment(8, 21), data)
    if "food_safety_supervisor" in tags and chance(0.2):
        data = {"severity": rng.choice(["low", "high"]), "shop": rng.choice(SHOPS)}
        add("governance.food_safety_report", moment(10, 20), data)
    if "grid_member" in tags and chance(0.35):
        data = {
            "minutes": rng.choice([30, 45, 60, 90, 120]),
            "issues_found": rng.choices([0, 1, 2, 3], [5, 3, 1, 1])[0],
        }
        add("governance.grid_patrol", moment(9, 17), data)
    if chance(0.3 if tags & {"building_head", "unit_head"} else 0.04):
        kind = rng.choices(["elderly", "disabled", "lost_child", "other"], [6, 2, 1, 3])[0]
        add("governance.resident_help", moment(8, 20), {"kind": kind})
    if tags & {"civilisation_ambassador", "traffic_safety_officer"} and chance(0.25):
        add("governance.safety_message", moment(9, 19), {"audience": rng.randint(2, 60) * 5})
    if chance(0.35 if weekend else 0.07):
        street = next((s for s in PROJECTS if m["primary_org"].startswith(s + ".")), None)
        project = rng.choice(PROJECTS.get(street, GENERAL_PROJECTS))
        span("volunteer.hours", VOLUNTEER, rng.choice([1, 2, 3]), project=project)
    out.sort(key=lambda e: e["occurred_at"])
    return out


def demo_member_ids() -> list[int]:
    """Ids of the members the demo partner registered (for checks and tests)."""
    return list(
        db.session.scalars(
            select(Member.id)
            .join(PartnerMember, PartnerMember.member_id == Member.id)
            .join(Partner, PartnerMember.partner_id == Partner.id)
            .where(Partner.code == PARTNER_CODE)
            .order_by(Member.id)
        )
    )
