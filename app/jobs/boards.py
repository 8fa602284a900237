"""Leaderboard jobs, on the ``boards`` queue: rebuild (and reconcile), close periods."""

from __future__ import annotations

from flask import current_app

from ..metrics import DRIFT_LINES, REBUILDS
from ..redis_client import get_redis
from ..services.boards.archive import close_periods
from ..services.boards.rebuild import rebuild_boards
from ..services.honours import close_badges
from ..services.rules import current_rules
from . import app_job, enqueue, progress

QUEUE = "boards"
REBUILD_TIMEOUT = 2 * 3600


@app_job
def rebuild_boards_job(reason: str = "", check_drift: bool = True) -> dict:
    """Recompute every live board from the ledger and swap it in; report the drift found."""
    report = rebuild_boards(
        get_redis(),
        current_app.config["APP_TIMEZONE"],
        on_progress=lambda stage, done: progress(done, None, stage=stage),
        check_drift=check_drift,
        lease_seconds=current_app.config["REBUILD_LEASE_SECONDS"],
    )
    REBUILDS.inc()
    DRIFT_LINES.inc(report.drift_lines)
    return report.as_dict() | {"reason": reason}


@app_job
def close_periods_job() -> dict:
    """Archive every ended week, month and year that is not archived yet, then grant the
    rank badges of the archived periods that have not had them."""
    report = close_periods(get_redis(), current_app.config["APP_TIMEZONE"]).as_dict()
    report["badges"] = [b for b in close_badges(current_rules()) if b["granted"]]
    return report


def enqueue_rebuild(reason: str, check_drift: bool = True):
    return enqueue(
        rebuild_boards_job,
        reason,
        check_drift,
        queue_name=QUEUE,
        description=f"rebuild leaderboards ({reason})",
        timeout=REBUILD_TIMEOUT,
    )


def enqueue_close():
    return enqueue(close_periods_job, queue_name=QUEUE, description="close ended periods")
