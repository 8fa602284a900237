"""Group commit: single events waiting at the same time are stored in one transaction, and
each request still gets exactly the answer it would get alone."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from app.extensions import db
from app.models import Event, LedgerEntry, Member
from app.services.ingest import group

from ..partner_api import hazard, shift
from .test_concurrency import _post, _race


@pytest.fixture
def grouped(app, monkeypatch):
    """Group commit on, and the committer held at its first group until ``release`` is set,
    so every request sent meanwhile waits in the queue and lands in the second group."""
    monkeypatch.setitem(app.config, "INGEST_GROUP_MAX", 64)
    app.extensions.pop("pioneer.group_commit", None)
    held, release, sizes = threading.Event(), threading.Event(), []
    real_commit = group.GroupCommit._commit

    def commit(self, jobs):
        sizes.append(len(jobs))
        if len(sizes) == 1:
            held.set()
            release.wait(30)
        real_commit(self, jobs)

    monkeypatch.setattr(group.GroupCommit, "_commit", commit)
    yield held, release, sizes
    release.set()
    app.extensions.pop("pioneer.group_commit", None)


def _ledgers_hold() -> list[list]:
    """Every member's entries run seq 1..n and sum to the balance; the entries, per member."""
    ledgers = []
    for member in db.session.scalars(select(Member)):
        entries = list(
            db.session.scalars(
                select(LedgerEntry).where(LedgerEntry.member_id == member.id).order_by("seq")
            )
        )
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        assert member.balance == sum(e.points for e in entries)
        ledgers.append(entries)
    return ledgers


def _race_held(app, calls, grouped, first_call):
    """Send ``first_call`` and wait until the committer has taken it alone and is held; then
    send ``calls`` at once and let the committer go once they all wait in its queue; return
    every response."""
    held, release, _ = grouped
    results = {}
    db.session.remove()

    def send(key, call):
        with app.app_context():
            results[key] = call(app.test_client())
            db.session.remove()

    first = threading.Thread(target=send, args=("first", first_call))
    first.start()
    assert held.wait(30), "the committer never took the first event"
    threads = [threading.Thread(target=send, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    committer = app.extensions["pioneer.group_commit"]
    deadline = time.monotonic() + 30
    while committer.jobs.qsize() < len(calls) and time.monotonic() < deadline:
        time.sleep(0.005)
    release.set()
    for t in [first, *threads]:
        t.join(60)
    return results["first"], [results[i] for i in range(len(calls))]


def test_events_waiting_together_share_a_transaction_and_keep_their_answers(
    app, partner_api, rider, grouped
):
    _, _, sizes = grouped
    headers = partner_api.headers
    partner_api.put_member("r2")
    calls = [_post(hazard(f"g{i}", severity="high"), headers) for i in range(8)]
    calls += [_post(shift("g-shift", member="r2", hours=3), headers)] * 3  # one event, 3 times
    calls.append(_post(hazard("g-unknown", member="nobody"), headers))
    first, responses = _race_held(app, calls, grouped, _post(hazard("g-first"), headers))
    assert sizes == [1, len(calls)]  # all but the first were stored in one transaction
    assert first.status_code == 201
    hazards, shifts, unknown = responses[:8], responses[8:11], responses[11]
    # the first event of the day took one of the 5 high-severity awards; 4 remain for 8 reports
    assert [r.status_code for r in hazards] == [201] * 8
    assert sorted(r.json["points"] for r in hazards) == [0] * 4 + [10] * 4
    assert sorted(r.status_code for r in shifts) == [200, 200, 201]  # the repeats are replays
    assert len({r.get_data() for r in shifts}) == 1
    assert unknown.status_code == 422 and unknown.json["error"]["code"] == "unknown_member"
    assert db.session.scalar(select(func.count(Event.id))) == 10
    _ledgers_hold()


def test_events_of_several_partners_share_a_transaction_and_stay_apart(
    app, partner_api, other_api, rider, grouped
):
    """One group, two partners: the same event id and the same member reference from each are
    different events and members; one person known to both under two references is one
    member, whose overlapping shifts reported by both count once."""
    _, _, sizes = grouped
    other_api.put_member("r1", phone="13900139000")  # another person, the same reference
    other_api.put_member("r9", phone="13800138000")  # the rider, under the other's reference
    mine, theirs = partner_api.headers, other_api.headers
    calls = [
        _post(hazard("dup"), mine),
        _post(hazard("dup"), theirs),
        _post(shift("a-shift", hours=3), mine),
        _post(shift("b-shift", member="r9", hours=3), theirs),
    ]
    first, responses = _race_held(app, calls, grouped, _post(hazard("first"), mine))
    assert sizes == [1, 4]
    assert first.status_code == 201
    assert [r.status_code for r in responses] == [201] * 4
    assert [r.json["event"] for r in responses] == ["dup", "dup", "a-shift", "b-shift"]
    assert sorted(r.json["status"] for r in responses[2:]) == ["awarded", "duplicate"]
    rows = db.session.execute(select(Event.partner_id, Event.member_id).where(
        Event.partner_event_id == "dup")).all()  # fmt: skip
    assert len({p for p, _ in rows}) == 2 and len({m for _, m in rows}) == 2
    assert db.session.scalar(select(func.count(Event.id))) == 5
    assert partner_api.get_member("r1").json["balance"] == other_api.get_member("r9").json[
        "balance"]  # fmt: skip
    for entries in _ledgers_hold():
        assert None not in {e.event_id for e in entries}  # each award tied to its own event


def test_a_failed_group_commit_answers_every_waiting_request(
    app, partner_api, rider, grouped, monkeypatch
):
    from app.services import ingest as ingest_package

    _, _, sizes = grouped

    def broken(*args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("the database went away"))

    monkeypatch.setattr(ingest_package, "ingest_mixed", broken)  # what the committer calls
    headers = partner_api.headers
    calls = [_post(hazard(f"x{i}"), headers) for i in range(4)]
    first, responses = _race_held(app, calls, grouped, _post(hazard("x-first"), headers))
    assert sizes == [1, 4]
    assert [r.status_code for r in [first, *responses]] == [503] * 5
    assert {r.json["error"]["code"] for r in responses} == {"database_unavailable"}
    assert db.session.scalar(select(func.count(Event.id))) == 0


def test_the_same_event_from_twenty_threads_is_awarded_once_with_group_commit(
    app, partner_api, rider, monkeypatch
):
    monkeypatch.setitem(app.config, "INGEST_GROUP_MAX", 64)
    app.extensions.pop("pioneer.group_commit", None)
    body = shift("same", hours=3)
    responses = _race(app, [_post(body, partner_api.headers)] * 20)
    app.extensions.pop("pioneer.group_commit", None)
    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    assert len({r.get_data() for r in responses}) == 1
    assert db.session.scalar(select(func.count(LedgerEntry.id))) == 1
    assert db.session.scalar(select(Member.balance)) == 15
