"""Group commit: single events that arrive together in one process share one transaction.

A transaction costs the same two statements and one commit whether it holds one event or
sixty (``store_pg``), so under load the single-event API does what the batch API does: each
request hands its event to this process's committer thread and waits; the committer takes
every event waiting (up to ``INGEST_GROUP_MAX``), whichever partners posted them, scores
and stores them as one batch, commits, and wakes each request with its own outcome. Nothing
is answered before it is committed, events keep their semantics (a repeat of an event in the
same group is answered as a replay, as it would be a moment later), and an idle server
answers one event with no wait. It pays with threaded workers (gunicorn ``--threads``), where
requests overlap.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass, field

from flask import Flask, current_app

from ...errors import Unavailable
from ...extensions import db
from .parse import Outcome


@dataclass
class _Job:
    partner: object
    raw: object
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None
    error: BaseException | None = None


class GroupCommit:
    """One per application and process; its thread starts with the first event."""

    def __init__(self, app: Flask, limit: int, wait_seconds: float):
        self.app = app
        self.limit = limit
        self.wait_seconds = wait_seconds
        self.jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def submit(self, partner, raw) -> Outcome:
        """Score and store one event with whatever else is waiting; its outcome, committed."""
        self._ensure_thread()
        # end this request's own transaction (the key lookup's, say) before waiting: on SQLite
        # it holds the database lock that the committer needs
        db.session.close()
        job = _Job(partner, raw)
        self.jobs.put(job)
        if not job.done.wait(self.wait_seconds):
            # it may still be stored: the partner's retry with the same id is answered as such
            raise Unavailable("the event could not be stored in time; send it again")
        if job.error is not None:
            raise job.error
        return job.outcome

    def _ensure_thread(self) -> None:
        # after a fork (gunicorn workers) the parent's thread does not exist in the child
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._pid != os.getpid():  # a forked child: nobody else uses this queue yet
                self.jobs = queue.SimpleQueue()
                self._pid = os.getpid()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="ingest-group-commit", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            jobs = [self.jobs.get()]
            while len(jobs) < self.limit:
                try:
                    jobs.append(self.jobs.get_nowait())
                except queue.Empty:
                    break
            self._commit(jobs)

    def _commit(self, group: list[_Job]) -> None:
        from . import ingest_mixed

        with self.app.app_context():
            try:
                outcomes = ingest_mixed(
                    [j.partner for j in group], [j.raw for j in group], own_transaction=True
                )
            except BaseException as exc:  # every waiting request learns of it, none hangs
                for job in group:
                    job.error = exc
            else:
                for job, outcome in zip(group, outcomes, strict=True):
                    job.outcome = outcome
            finally:
                db.session.remove()
                for job in group:
                    job.done.set()


def group_commit() -> GroupCommit | None:
    """This application's committer, or None when single events commit on their own."""
    app = current_app._get_current_object()
    limit = app.config["INGEST_GROUP_MAX"]
    if limit <= 1:
        return None
    committer = app.extensions.get("pioneer.group_commit")
    if committer is None:
        committer = app.extensions.setdefault(
            "pioneer.group_commit", GroupCommit(app, limit, app.config["INGEST_WAIT_SECONDS"])
        )
    return committer
