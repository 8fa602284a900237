"""Ingest partners' events: validate, score with the rules engine, append to the ledger.

One function serves the single-event API, the batch API and dry runs. For a whole batch it
makes a fixed number of statements: look up the members, lock their rows (in id order), read
already-stored events, overlapping spans and cap counters, evaluate every event in memory,
then insert events and ledger entries with multi-row inserts and upsert the counters. An
event is stored once per (partner, partner's event id): the same id again with the same body
replays the first response; with another body it is a conflict.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass, field

from flask import current_app
from marshmallow import RAISE, Schema, ValidationError, fields, validate
from sqlalchemy import and_, or_, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..engine import (
    EmergencyFacts,
    EventDataError,
    EventFacts,
    MemberFacts,
    add_counters,
    evaluate,
    needed_counters,
    validate_event_data,
)
from ..engine.ruleset import ancestors
from ..errors import AppError, Conflict, Forbidden, Invalid
from ..extensions import db
from ..models import Counter, Emergency, Event, EventStatus, LedgerKind, Member, Organisation
from ..models.base import utcnow
from ..models.member import MemberOrg, PartnerMember
from .ledger import LedgerWriter, MemberState
from .rules import current_rules


class EventIn(Schema):
    """One activity event as a partner posts it."""

    class Meta:
        unknown = RAISE

    id = fields.String(
        required=True, validate=validate.Length(1, 128), metadata={"description": "Partner's id"}
    )
    type = fields.String(required=True, validate=validate.Length(1, 100))
    member = fields.String(
        required=True,
        validate=validate.Length(1, 128),
        metadata={"description": "The partner's reference of the member"},
    )
    occurred_at = fields.String(
        required=True,
        validate=validate.Length(1, 40),
        metadata={"description": "ISO 8601; without an offset it is local time (APP_TIMEZONE)"},
    )
    org = fields.String(
        validate=validate.Length(1, 200),
        metadata={"description": "Where it happened; default: the member's primary organisation"},
    )
    data = fields.Dict(
        keys=fields.String(), load_default=dict, metadata={"description": "Per event type"}
    )


_EVENT_IN = EventIn()


class _Retry(Exception):
    """Another transaction stored one of these events first: run the batch again."""


@dataclass
class Outcome:
    """What happened to one posted event: a response body with its status, or an error."""

    status: int
    body: dict | None = None
    error: AppError | None = None


@dataclass
class _Item:
    index: int
    raw: object
    body_hash: str = ""
    parsed: dict = field(default_factory=dict)
    occurred_at: dt.datetime | None = None
    member_id: int | None = None
    org: str = ""
    data: dict = field(default_factory=dict)
    outcome: Outcome | None = None


def body_hash(raw: object) -> str:
    text = json.dumps(raw, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def ingest(
    partner, raws: list, dry_run: bool = False, own_transaction: bool = False
) -> list[Outcome]:
    """Validate, score and (unless ``dry_run``) store ``raws``; one ``Outcome`` each, in order.

    The caller commits. A bad event gets its own error and does not affect the others. If
    another transaction stores one of these events meanwhile, the work is undone and done
    again (to answer it as stored): inside a savepoint, or, when the caller says the
    transaction holds nothing else (``own_transaction``), by rolling it back, which saves two
    statements per request.
    """
    for attempt in range(3):
        try:
            if own_transaction:
                return _ingest(partner, raws, dry_run)
            with db.session.begin_nested():
                return _ingest(partner, raws, dry_run)
        except _Retry:
            if own_transaction:
                db.session.rollback()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _ingest(partner, raws: list, dry_run: bool) -> list[Outcome]:
    rules = current_rules()
    now = utcnow()
    items = [_Item(i, raw) for i, raw in enumerate(raws)]
    for item in items:
        _parse(item, partner, rules, current_app.config, now)
    writer = LedgerWriter()
    members = _resolve_members(
        partner, [it for it in items if it.outcome is None], writer, lock=not dry_run
    )
    # Stored events are read after locking: a concurrent transaction storing one of these
    # events for the same member has committed by now, or waits for us.
    fresh = _replays(partner, items)
    spans = _stored_spans(fresh, rules)
    counters = _counters(fresh, rules, members)
    changed: set[tuple] = set()
    emergencies = _emergencies(fresh)
    event_rows = []
    for it in fresh:
        etype = rules.event_types[it.parsed["type"]]
        facts = members[it.member_id]
        state = writer.states[it.member_id]
        span = (it.data["start"], it.data["end"]) if etype.span else (None, None)
        awards = []
        if span[0] is not None and _overlaps(spans, it.member_id, etype.name, span):
            status = EventStatus.DUPLICATE
        else:
            mine = counters.setdefault(it.member_id, {})
            result = evaluate(
                rules,
                EventFacts(etype.name, it.org, it.occurred_at, it.data, partner.code),
                facts,
                mine,
                _emergency_at(emergencies, it),
            )
            add_counters(mine, result.counters)
            changed.update((it.member_id, *key) for key in result.counters)
            status = EventStatus(result.status.value)
            awards = result.awards
            if span[0] is not None:
                spans.setdefault((it.member_id, etype.name), []).append(span)
        credited = [a for a in awards if not a.pending and a.points > 0]
        points = sum(a.points for a in credited)
        if dry_run:
            state.balance += points  # nothing is written: only later events read it
        else:
            for a in credited:  # moves state.balance
                writer.append(
                    it.member_id,
                    a.points,
                    LedgerKind.AWARD,
                    org_code=it.org,
                    partner_id=partner.id,
                    rule=a.rule,
                    rules_version=rules.version,
                    category=a.category,
                    occurred_at=it.occurred_at,
                    created_at=now,
                    reason=a.reason,
                    # the organisation whose version of the rule applied (the key names the first)
                    explanation=a.explanation.as_dict() | {"rule_org": a.org},
                    ref=it.parsed["id"],
                )
        body = {
            "event": it.parsed["id"],
            "status": status.value,
            "points": points,
            "awards": [
                {"rule": a.rule, "points": a.points, "reason": a.reason, "pending": a.pending}
                for a in awards
            ],
            "balance": state.balance,
            "rules_version": rules.version,
        }
        if status is EventStatus.DUPLICATE:
            body["reason"] = "与已记录的同类时段重叠，视为重复上报，不再计分"
        if dry_run:
            body["dry_run"] = True
            it.outcome = Outcome(200, body)
            continue
        it.outcome = Outcome(201, body)
        event_rows.append(
            {
                "partner_id": partner.id,
                "partner_event_id": it.parsed["id"],
                "body_hash": it.body_hash,
                "type": etype.name,
                "member_id": it.member_id,
                "org_code": it.org,
                "occurred_at": it.occurred_at,
                "received_at": now,
                "data": _jsonable(it.data),
                "status": status.value,
                "rules_version": rules.version,
                "points": points,
                "span_start": span[0],
                "span_end": span[1],
                "response": body,
                "reason": body.get("reason"),
            }
        )
    if event_rows:
        _store(event_rows, writer, counters, changed)
    return [it.outcome.resolve() if isinstance(it.outcome, _Later) else it.outcome for it in items]


def _resolve_members(partner, items: list[_Item], writer: LedgerWriter, lock: bool) -> dict:
    """Set each item's member and organisation, or its error; return the members' facts
    (their ledger state goes into ``writer.states``).

    One query finds the partner's references, reads the members' facts and ledger state and
    (unless ``lock`` is false) locks their rows, in id order so two writers never deadlock.
    """
    refs = list({it.parsed["member"] for it in items})
    found, members = {}, {}
    if refs:
        query = (
            select(
                PartnerMember.ref, Member.id, Member.party_member, Member.industry,
                Member.level, Member.tags, Member.balance, Member.lifetime_points,
                Member.ledger_seq, Member.ledger_head, Organisation.code,
            )
            .join(Member, PartnerMember.member_id == Member.id)
            .join(Organisation, Member.primary_org_id == Organisation.id)
            .where(PartnerMember.partner_id == partner.id, PartnerMember.ref.in_(refs))
            .order_by(Member.id)
        )  # fmt: skip
        if lock:
            query = query.with_for_update(of=Member)
        rows = list(_sql().execute(query))
        ids = sorted({row.id for row in rows})
        orgs: dict[int, list[str]] = {}
        if ids:
            for member_id, org_code in _sql().execute(
                select(MemberOrg.member_id, MemberOrg.org_code).where(MemberOrg.member_id.in_(ids))
            ):
                orgs.setdefault(member_id, []).append(org_code)
        for row in rows:
            found[row.ref] = (row.id, row.code)
            if row.id in members:
                continue
            others = sorted(c for c in orgs.get(row.id, []) if c != row.code)
            facts = MemberFacts(
                party_member=row.party_member,
                industry=row.industry,
                level=row.level,
                primary_org=row.code,
                orgs=(row.code, *others),
                tags=frozenset(row.tags or ()),
            )
            members[row.id] = facts
            writer.states[row.id] = MemberState(
                row.id, row.balance, row.lifetime_points, row.ledger_seq, row.ledger_head
            )
    named = {it.parsed["org"] for it in items if "org" in it.parsed}
    known = (
        set(_sql().scalars(select(Organisation.code).where(Organisation.code.in_(named))))
        if named
        else set()
    )
    for it in items:
        ref = it.parsed["member"]
        if ref not in found:
            it.outcome = _fail(
                Invalid(f"unknown member {ref!r}", {"member": ref}, "unknown_member")
            )
            continue
        it.member_id, primary = found[ref]
        it.org = it.parsed.get("org", primary)
        if "org" in it.parsed and it.org not in known:
            it.outcome = _fail(
                Invalid(f"unknown organisation {it.org!r}", {"org": it.org}, "unknown_org")
            )
        elif not partner.may_report_for(it.org):
            it.outcome = _fail(
                Forbidden(
                    f"this partner may not report events at {it.org}",
                    {"org": it.org},
                    "org_not_allowed",
                )
            )
    return members


def _replays(partner, items: list[_Item]) -> list[_Item]:
    """Answer events stored before (same body: the first response; else a conflict) and
    repeats within the batch; return the items still to score, in order."""
    ids = list({it.parsed["id"] for it in items if it.body_hash})
    stored = {}
    if ids:
        for row in _sql().execute(
            select(Event.partner_event_id, Event.body_hash, Event.response).where(
                Event.partner_id == partner.id, Event.partner_event_id.in_(ids)
            )
        ):
            stored[row.partner_event_id] = (row.body_hash, row.response)
    first_in_batch: dict[str, _Item] = {}
    fresh = []
    for it in items:
        if not it.body_hash:
            continue
        eid = it.parsed["id"]
        if eid in stored:
            same = stored[eid][0] == it.body_hash
            it.outcome = Outcome(200, stored[eid][1]) if same else _conflict(eid)
        elif eid in first_in_batch:
            it.outcome = _Later(first_in_batch[eid], it.body_hash)
        elif it.outcome is None:
            first_in_batch[eid] = it
            fresh.append(it)
    return fresh


def _conflict(eid: str) -> Outcome:
    return _fail(
        Conflict(
            f"event {eid!r} was posted before with another body", {"id": eid}, "event_conflict"
        )
    )


class _Later(Outcome):
    """A repeat of an event earlier in the same batch: answered like a replay once the
    first is scored."""

    def __init__(self, first: _Item, body_hash_: str):
        super().__init__(0)
        self.first = first
        self.same = first.body_hash == body_hash_

    def resolve(self) -> Outcome:
        first = self.first.outcome
        if not self.same:
            return _conflict(self.first.parsed["id"])
        if first.body is None:
            return first
        return Outcome(200, first.body)


def _parse(item: _Item, partner, rules, config, now: dt.datetime) -> None:
    raw = item.raw
    if not isinstance(raw, dict):
        item.outcome = _fail(Invalid("an event must be a JSON object", code="invalid"))
        return
    try:
        parsed = _EVENT_IN.load(raw)
    except ValidationError as exc:
        if isinstance(raw.get("id"), str):
            item.parsed = {"id": raw["id"]}
        item.outcome = _fail(Invalid("the event does not fit the schema", exc.messages))
        return
    item.parsed = parsed
    item.body_hash = body_hash(raw)
    etype = rules.event_types.get(parsed["type"])
    if etype is None:
        item.outcome = _fail(Invalid(f"unknown event type {parsed['type']!r}",
                                     {"type": parsed["type"]}, "unknown_event_type"))  # fmt: skip
        return
    if not partner.may_report_type(etype.name):
        item.outcome = _fail(Forbidden(f"this partner may not report {etype.name} events",
                                       {"type": etype.name}, "type_not_allowed"))  # fmt: skip
        return
    try:
        occurred = dt.datetime.fromisoformat(parsed["occurred_at"])
    except ValueError:
        item.outcome = _fail(Invalid("occurred_at must be an ISO 8601 date-time",
                                     {"occurred_at": parsed["occurred_at"]}))  # fmt: skip
        return
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=rules.tz)
    if occurred > now + dt.timedelta(seconds=config["EVENT_FUTURE_SECONDS"]):
        item.outcome = _fail(
            Invalid("occurred_at is in the future", {"occurred_at": parsed["occurred_at"]},
                    "in_future")
        )  # fmt: skip
        return
    if occurred < now - dt.timedelta(days=config["EVENT_HORIZON_DAYS"]):
        item.outcome = _fail(Invalid(
            f"occurred_at is more than {config['EVENT_HORIZON_DAYS']} days ago",
            {"occurred_at": parsed["occurred_at"]}, "too_old"))  # fmt: skip
        return
    item.occurred_at = occurred
    try:
        item.data = validate_event_data(etype, parsed["data"], rules.tz)
    except EventDataError as exc:
        item.outcome = _fail(Invalid(f"data does not fit {etype.name}", exc.errors, "invalid_data"))


def _fail(error: AppError) -> Outcome:
    return Outcome(error.status, None, error)


def _stored_spans(items: list[_Item], rules) -> dict:
    """Spans of duties already stored for these members, by (member, type)."""
    wanted = [it for it in items if rules.event_types[it.parsed["type"]].span]
    spans: dict = {}
    if not wanted:
        return spans
    # one window per (member, type): only spans that can overlap this batch's are read
    windows: dict[tuple, list] = {}
    for it in wanted:
        key = (it.member_id, it.parsed["type"])
        lo, hi = windows.get(key, (it.data["start"], it.data["end"]))
        windows[key] = (min(lo, it.data["start"]), max(hi, it.data["end"]))
    for row in _sql().execute(
        select(Event.member_id, Event.type, Event.span_start, Event.span_end).where(
            or_(
                *(
                    and_(
                        Event.member_id == member_id,
                        Event.type == type_,
                        Event.span_start < hi,
                        Event.span_end > lo,
                    )
                    for (member_id, type_), (lo, hi) in windows.items()
                )
            ),
            Event.status.in_([EventStatus.AWARDED, EventStatus.PENDING, EventStatus.NO_MATCH]),
        )
    ):
        spans.setdefault((row.member_id, row.type), []).append((row.span_start, row.span_end))
    return spans


def _overlaps(spans: dict, member_id: int, type_: str, span) -> bool:
    start, end = span
    return any(s < end and start < e for s, e in spans.get((member_id, type_), ()))


def _counters(items: list[_Item], rules, member_rows) -> dict[int, dict]:
    """The cap counters the evaluations will read, per member, in one query."""
    wanted: dict[int, set] = {}
    for it in items:
        facts = EventFacts(it.parsed["type"], it.org, it.occurred_at, it.data)
        keys = needed_counters(rules, facts, member_rows[it.member_id])
        if keys:
            wanted.setdefault(it.member_id, set()).update(keys)
    out: dict[int, dict] = {}
    if not wanted:
        return out
    exact = [(m, b, p) for m, keys in wanted.items() for b, p in keys]
    for row in _sql().execute(
        select(
            Counter.member_id, Counter.bucket, Counter.period, Counter.points, Counter.count
        ).where(tuple_(Counter.member_id, Counter.bucket, Counter.period).in_(exact))
    ):
        out.setdefault(row.member_id, {})[(row.bucket, row.period)] = (row.points, row.count)
    return out


def clear_emergency_cache() -> None:
    """Whoever declares or ends an emergency calls this, so it applies at once here."""
    current_app.extensions.pop("pioneer.emergencies", None)


def _emergencies(items: list[_Item]) -> list[Emergency]:
    """Emergencies that may be in force for these events (detached rows, read-only).

    Cached per process for a few seconds: an emergency declared or ended in another process
    takes effect here within EMERGENCY_CACHE_SECONDS.
    """
    if not items:
        return []
    cache = current_app.extensions.setdefault("pioneer.emergencies", [0.0, []])
    if cache[0] < time.monotonic():
        horizon = utcnow() - dt.timedelta(days=current_app.config["EVENT_HORIZON_DAYS"] + 1)
        found = list(
            db.session.scalars(
                select(Emergency).where(
                    or_(Emergency.ended_at.is_(None), Emergency.ended_at > horizon)
                )
            )
        )
        for e in found:  # kept across requests and sessions: loaded, then let go
            db.session.expunge(e)
        cache[1] = found
        cache[0] = time.monotonic() + current_app.config["EMERGENCY_CACHE_SECONDS"]
    return cache[1]


def _emergency_at(emergencies: list[Emergency], it: _Item) -> EmergencyFacts | None:
    if not emergencies:
        return None
    regions = set(ancestors(it.org))
    for e in emergencies:
        if e.org_code in regions and e.in_force(it.occurred_at):
            return EmergencyFacts(e.name, e.kind)
    return None


def _jsonable(data: dict) -> dict:
    return {
        k: v.isoformat() if isinstance(v, dt.datetime | dt.date) else v for k, v in data.items()
    }


def _sql():
    """The session's connection: the hot path runs Core statements on it directly, skipping
    the ORM's per-statement work (about half the CPU of a request on this machine)."""
    return db.session.connection()


def _upsert(table):
    return (pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert)(table)


def _store(event_rows, writer: LedgerWriter, counters, changed: set[tuple]) -> None:
    stmt = (
        _upsert(Event.__table__)
        .on_conflict_do_nothing(index_elements=["partner_id", "partner_event_id"])
        .returning(Event.id, Event.partner_event_id, sort_by_parameter_order=True)
        # one multi-row statement even when some rows leave optional columns empty
        .execution_options(render_nulls=True)
    )
    ids = {row.partner_event_id: row.id for row in _sql().execute(stmt, event_rows).all()}
    if len(ids) != len(event_rows):
        raise _Retry()  # another transaction stored one of these meanwhile: answer as stored
    for row in writer.rows:
        row["event_id"] = ids[row["ref"]]
    writer.write()
    if changed:
        # absolute values: the members' rows are locked, so nobody else moved them
        rows = []
        for member_id, bucket, period in changed:
            points, count = counters[member_id][(bucket, period)]
            rows.append(
                {"member_id": member_id, "bucket": bucket, "period": period, "points": points,
                 "count": count}
            )  # fmt: skip
        stmt = _upsert(Counter.__table__)
        stmt = stmt.on_conflict_do_update(
            index_elements=["member_id", "bucket", "period"],
            set_={"points": stmt.excluded.points, "count": stmt.excluded.count},
        )
        _sql().execute(stmt, rows)
