"""PostgreSQL: read what a batch needs in one statement, write what it decided in another.

The read takes no lock. The write locks the batch's members (in id order, so two writers never
deadlock), checks that each member's ``version`` is still the one read, and only then inserts
events, ledger entries and counters and moves the members' totals, all in one statement. If
another transaction wrote for one of these members in between, the write changes nothing and
ingest runs the batch again, then reading under a lock (``load(lock=True)``) so it cannot lose
twice. Rows travel as one JSON document per table, so the statements' text never changes
(PostgreSQL prepares them once per connection) whatever the batch size.
"""

from __future__ import annotations

import datetime as dt
import json

import psycopg
from flask import current_app
from sqlalchemy import create_engine

from ..ledger import member_row
from .store import (
    SPAN_STATUSES,
    Retry,
    Snapshot,
    Wanted,
    Writes,
    link_events,
    owned_transaction,
)

_SPAN_STATUSES = ", ".join(f"'{s.value}'" for s in SPAN_STATUSES)

# what to read arrives as one JSON document (q): one parameter to send, whatever the batch;
# members and events are [partner id, partner's reference] pairs (a batch may mix partners),
# each looked up on its own (LATERAL ... LIMIT 1, which the planner cannot flatten into a
# join: one probe of the unique index per pair, whatever the generic plan guesses of the
# array's length; as a join, the generic plan scanned the whole table for every batch)
PAIRS = "SELECT (r ->> 0)::int AS partner_id, r ->> 1 AS ref FROM jsonb_array_elements({}) r"

LOCK = f"""
SELECT m.id FROM ({PAIRS.format("%(q)s::jsonb -> 'refs'")}) w
CROSS JOIN LATERAL (SELECT pm.member_id FROM partner_members pm
                    WHERE pm.partner_id = w.partner_id AND pm.ref = w.ref LIMIT 1) pm
JOIN members m ON m.id = pm.member_id
ORDER BY m.id FOR NO KEY UPDATE OF m
"""

READ = f"""
WITH q AS (SELECT %(q)s::jsonb AS q),
m AS MATERIALIZED (
  SELECT pm.partner_id, pm.ref, m.id, m.party_member, m.industry, m.level, m.tags, m.balance,
         m.lifetime_points, m.ledger_seq, m.ledger_head, m.version, m.progress,
         o.code AS primary_org
  FROM ({PAIRS.format("(SELECT q -> 'refs' FROM q)")}) w
  CROSS JOIN LATERAL (SELECT pm.partner_id, pm.ref, pm.member_id FROM partner_members pm
                      WHERE pm.partner_id = w.partner_id AND pm.ref = w.ref LIMIT 1) pm
  JOIN members m ON m.id = pm.member_id
  JOIN organisations o ON o.id = m.primary_org_id
)
SELECT
  (SELECT json_agg(m) FROM m) AS members,
  (SELECT json_agg(json_build_array(mo.member_id, mo.org_code)) FROM member_orgs mo
    WHERE mo.member_id = ANY(ARRAY(SELECT id FROM m))) AS member_orgs,
  (SELECT json_agg(o.code) FROM organisations o
    WHERE o.code = ANY(ARRAY(SELECT jsonb_array_elements_text(q -> 'orgs') FROM q))) AS orgs,
  (SELECT json_agg(json_build_array(e.partner_id, e.partner_event_id, e.body_hash, e.response))
    FROM ({PAIRS.format("(SELECT q -> 'ids' FROM q)")}) w
    CROSS JOIN LATERAL (SELECT e.partner_id, e.partner_event_id, e.body_hash, e.response
                        FROM events e
                        WHERE e.partner_id = w.partner_id AND e.partner_event_id = w.ref
                        LIMIT 1) e
  ) AS stored,
  (SELECT jsonb_agg(DISTINCT jsonb_build_array(e.member_id, e.type, e.span_start, e.span_end))
    FROM q, jsonb_to_recordset(q -> 'windows') AS w(partner int, ref text, type text,
                                                    lo timestamptz, hi timestamptz)
    JOIN m ON m.partner_id = w.partner AND m.ref = w.ref
    JOIN events e ON e.member_id = m.id AND e.type = w.type
                 AND e.span_start < w.hi AND e.span_end > w.lo
    WHERE e.status IN ({_SPAN_STATUSES})) AS spans,
  (SELECT json_agg(json_build_array(c.member_id, c.bucket, c.period, c.points, c.count))
    FROM (SELECT DISTINCT m.id, p.period
          FROM q, jsonb_to_recordset(q -> 'periods') AS p(partner int, ref text, period text)
          JOIN m ON m.partner_id = p.partner AND m.ref = p.ref) AS w
    JOIN counters c ON c.member_id = w.id AND c.period = w.period) AS counters,
  (SELECT array_agg(nextval(pg_get_serial_sequence('events', 'id')))
    FROM q, generate_series(1, (q ->> 'n')::int)) AS new_ids
"""

EVENT_COLUMNS = (
    "id, partner_id, partner_event_id, body_hash, type, member_id, org_code, occurred_at, "
    "received_at, data, status, rules_version, points, span_start, span_end, response, reason"
)
GRANT_COLUMNS = (
    "member_id, badge, n, granted_at, reason, explanation, bonus, period, rules_version, event_id"
)
LEVEL_COLUMNS = (
    "member_id, from_level, to_level, at, lifetime_points, bonus, ladder_org, rules_version, "
    "event_id"
)
LEDGER_COLUMNS = (
    "member_id, seq, points, kind, event_id, rule, rules_version, org_code, partner_id, "
    "category, occurred_at, created_at, reason, explanation, reverses_id, ref, prev_hash, hash"
)

WRITE = f"""
WITH u AS (
  SELECT * FROM json_to_recordset(%(members)s::json) AS u(id int, version int, balance int,
    lifetime_points int, ledger_seq int, ledger_head text, level text, progress jsonb)
), locked AS (
  SELECT m.id, m.version FROM members m
  WHERE m.id = ANY(ARRAY(SELECT id FROM u))
  ORDER BY m.id FOR NO KEY UPDATE
), stale AS (
  SELECT l.id FROM locked l JOIN u ON u.id = l.id WHERE l.version <> u.version
), go AS (
  SELECT NOT EXISTS (SELECT 1 FROM stale) AS ok
), ev AS (
  INSERT INTO events ({EVENT_COLUMNS})
  SELECT {EVENT_COLUMNS} FROM json_populate_recordset(NULL::events, %(events)s::json)
  WHERE (SELECT ok FROM go)
  RETURNING 1
), le AS (
  INSERT INTO ledger_entries ({LEDGER_COLUMNS})
  SELECT {LEDGER_COLUMNS} FROM json_populate_recordset(NULL::ledger_entries, %(ledger)s::json)
  WHERE (SELECT ok FROM go)
  RETURNING 1
), co AS (
  INSERT INTO counters (member_id, bucket, period, points, count)
  SELECT member_id, bucket, period, points, count
  FROM json_populate_recordset(NULL::counters, %(counters)s::json)
  WHERE (SELECT ok FROM go)
  ON CONFLICT (member_id, bucket, period)
  DO UPDATE SET points = excluded.points, count = excluded.count
  RETURNING 1
), bg AS (
  INSERT INTO badge_grants ({GRANT_COLUMNS})
  SELECT {GRANT_COLUMNS} FROM json_populate_recordset(NULL::badge_grants, %(grants)s::json)
  WHERE (SELECT ok FROM go)
  RETURNING 1
), lc AS (
  INSERT INTO level_changes ({LEVEL_COLUMNS})
  SELECT {LEVEL_COLUMNS} FROM json_populate_recordset(NULL::level_changes, %(levels)s::json)
  WHERE (SELECT ok FROM go)
  RETURNING 1
), mu AS (
  UPDATE members m SET balance = u.balance, lifetime_points = u.lifetime_points,
    ledger_seq = u.ledger_seq, ledger_head = u.ledger_head, level = u.level,
    progress = u.progress, version = m.version + 1
  FROM u WHERE m.id = ANY(ARRAY(SELECT id FROM u)) AND m.id = u.id AND (SELECT ok FROM go)
  RETURNING 1
)
SELECT (SELECT json_agg(id) FROM stale), (SELECT count(*) FROM ev), (SELECT count(*) FROM le),
       (SELECT count(*) FROM co), (SELECT count(*) FROM mu), (SELECT count(*) FROM bg),
       (SELECT count(*) FROM lc)
"""


def ingest_engine():
    """Ingest's own pool of connections, beside the app's.

    psycopg forgets every statement it prepared on a connection when that connection rolls
    back (``DEALLOCATE ALL``), and on the app's pool every request that reads through the ORM
    ends in a rollback (Flask-SQLAlchemy closes its session so). Ingest's two statements then
    ran unprepared, planned afresh, for five runs after each page or key lookup that had used
    the same connection. Here connections only commit (or roll back after an error or a dry
    run), so the statements stay prepared.
    """
    app = current_app._get_current_object()
    engine = app.extensions.get("pioneer.ingest_engine")
    if engine is None:
        options = {**app.config["SQLALCHEMY_ENGINE_OPTIONS"], "pool_size": 2, "max_overflow": 8}
        engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"], **options)
        engine = app.extensions.setdefault("pioneer.ingest_engine", engine)
    return engine


def _json(rows) -> str:
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"), default=_default)


def _default(value):
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


class PgStore:
    """Optimistic: the write checks, under the members' row locks, that nothing moved."""

    checks_versions = True

    def __init__(self):
        # a pooled connection of its own, used through psycopg directly: no ORM session
        self.pooled = ingest_engine().raw_connection()
        self.conn = self.pooled.driver_connection

    def transaction(self, commit: bool):
        return owned_transaction(self.conn, commit)

    def close(self) -> None:
        self.pooled.close()  # back to the pool

    def load(self, wanted: Wanted, lock: bool) -> Snapshot:
        conn = self.conn
        query = {
            "refs": wanted.refs,
            "orgs": wanted.orgs,
            "ids": wanted.event_ids,
            "windows": [
                {"partner": partner, "ref": ref, "type": type_, "lo": lo, "hi": hi}
                for ((partner, ref), type_), (lo, hi) in wanted.windows.items()
            ],
            "periods": [
                {"partner": partner, "ref": ref, "period": period}
                for (partner, ref), periods in wanted.periods.items()
                for period in periods
            ],
            "n": wanted.new_ids,
        }
        params = {"q": _json(query)}
        if lock and wanted.refs:  # a statement of its own: the read below sees what it waited for
            conn.execute(LOCK, params)
        members, member_orgs, orgs, stored, spans, counters, new_ids = conn.execute(
            READ, params
        ).fetchone()
        snap = Snapshot(known_orgs=set(orgs or ()), event_ids=new_ids or [])
        snap.add_members(members or (), member_orgs or ())
        for partner, eid, hash_, response in stored or ():
            snap.stored[(partner, eid)] = (hash_, response)
        parse = dt.datetime.fromisoformat
        for member_id, type_, start, end in spans or ():
            snap.spans.setdefault((member_id, type_), []).append((parse(start), parse(end)))
        for member_id, bucket, period, points, count in counters or ():
            snap.counters.setdefault(member_id, {})[(bucket, period)] = (points, count)
        return snap

    def save(self, writes: Writes) -> None:
        ids = iter(writes.event_ids)
        by_ref = {}
        for row in writes.events:
            row["id"] = by_ref[(row["partner_id"], row["partner_event_id"])] = next(ids)
        link_events(writes, by_ref)
        ledger = writes.ledger.chain()
        members = [member_row(s) for s in writes.members]
        params = {
            "members": _json(members),
            "events": _json(writes.events),
            "ledger": _json(ledger),
            "counters": _json(writes.counters),
            "grants": _json(writes.grants),
            "levels": _json(writes.level_changes),
        }
        try:
            stale, n_events, n_ledger, _, n_members, *_ = self.conn.execute(
                WRITE, params
            ).fetchone()
        except psycopg.errors.UniqueViolation as exc:
            # another transaction stored one of these events (for another member) first
            raise Retry() from exc
        if stale:
            raise Retry()
        if (n_events, n_ledger, n_members) != (len(writes.events), len(ledger), len(members)):
            raise AssertionError(  # pragma: no cover - a bug, not a race: fail loudly
                f"ingest wrote {n_events}/{n_ledger}/{n_members} rows of "
                f"{len(writes.events)}/{len(ledger)}/{len(members)}"
            )
        for s in writes.members:
            s.version += 1
