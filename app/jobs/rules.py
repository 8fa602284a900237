"""Rules jobs, on the ``default`` queue: recalculation after a publish."""

from __future__ import annotations

import datetime as dt

from ..errors import NotFound
from ..services.recalculate import recalculate
from ..services.rules import load_version
from . import app_job, enqueue, progress


@app_job
def recalculate_job(version: str, since: str) -> dict:
    """Re-score the events since ``since`` (a local date) under published ``version``.
    Safe to run again or after an interruption: it picks up the members not done yet."""
    rules = load_version(version)
    if rules is None:
        raise NotFound(f"no published rules version {version!r}")
    report = recalculate(
        rules,
        dt.date.fromisoformat(since),
        on_batch=lambda r: progress(r.members, None, **r.as_dict()),
    )
    return report.as_dict()


def enqueue_recalculation(version: str, since: dt.date):
    return enqueue(recalculate_job, version, since.isoformat(), timeout=6 * 3600,
                   description=f"recalculate since {since} under rules {version}")  # fmt: skip
