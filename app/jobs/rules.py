"""Rules jobs, on the ``default`` queue: a console's simulation of a candidate file, and
recalculation after a publish.

A recalculation runs as one job that keeps the boards live, or split over ``parts`` jobs (one
per worker, each a share of the members) followed by a boards rebuild once all of them are
done: the parts re-score in parallel and leave Redis alone, which is what makes a province-wide
recalculation fast (see docs/benchmarks.md).
"""

from __future__ import annotations

import datetime as dt

from flask import current_app

from ..errors import NotFound
from ..services.recalculate import recalculate
from ..services.rules import load_version
from ..services.rules_check import simulate_candidate
from . import app_job, enqueue, progress
from .boards import QUEUE as BOARDS_QUEUE
from .boards import REBUILD_TIMEOUT, rebuild_boards_job

TIMEOUT = 6 * 3600
SIMULATION_TIMEOUT = 3600


@app_job
def simulate_candidate_job(org: str, text: str, base: str) -> dict:
    """Replay the last days under the rules in force with ``text`` as ``org``'s file (checked
    against version ``base``); the report, with progress as it goes."""
    return simulate_candidate(org, text, on_progress=lambda done, total: progress(done, total))


def enqueue_simulation(org: str, text: str, base: str, user_id: int):
    """The simulation job of a console user's candidate; its meta says whose it is."""
    return enqueue(simulate_candidate_job, org, text, base, timeout=SIMULATION_TIMEOUT,
                   retries=0, description=f"simulate a new rules file for {org}",
                   meta={"org": org, "user": user_id, "kind": "simulation"})  # fmt: skip


@app_job
def recalculate_job(version: str, since: str, part: int = 0, parts: int = 1) -> dict:
    """Re-score the events since ``since`` (a local date) under published ``version``, for
    the members whose id is ``part`` modulo ``parts``. Safe to run again or after an
    interruption: it picks up the members not done yet."""
    rules = load_version(version)
    if rules is None:
        raise NotFound(f"no published rules version {version!r}")
    report = recalculate(
        rules,
        dt.date.fromisoformat(since),
        on_batch=lambda r: progress(r.members, None, **r.as_dict()),
        part=(part, parts),
        live_boards=parts == 1,
    )
    return report.as_dict() | {"part": part, "parts": parts}


def enqueue_recalculation(version: str, since: dt.date, parts: int | None = None,
                          meta: dict | None = None) -> list:  # fmt: skip
    """Queue the recalculation; with ``parts`` > 1 (default ``RECALCULATE_PARTS``), as that
    many jobs and a boards rebuild that waits for them. Returns the jobs, the rebuild last."""
    parts = max(1, parts or current_app.config["RECALCULATE_PARTS"])
    jobs = [
        enqueue(recalculate_job, version, since.isoformat(), k, parts, timeout=TIMEOUT, meta=meta,
                description=f"recalculate since {since} under rules {version}"
                + (f" (part {k + 1} of {parts})" if parts > 1 else ""))
        for k in range(parts)
    ]  # fmt: skip
    if parts > 1:
        jobs.append(
            enqueue(rebuild_boards_job, f"recalculation under {version}", False,
                    queue_name=BOARDS_QUEUE, timeout=REBUILD_TIMEOUT, depends_on=jobs, meta=meta,
                    description=f"rebuild leaderboards after the recalculation under {version}")
        )  # fmt: skip
    return jobs
