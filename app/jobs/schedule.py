"""Periodic jobs, run by RQ's own cron scheduler (``flask --app app scheduler``)."""

from __future__ import annotations

import datetime as dt

from flask import current_app
from rq.cron import CronScheduler

from ..engine.periods import zone
from ..redis_client import get_redis
from . import FAILURE_TTL, RESULT_TTL
from .boards import QUEUE, REBUILD_TIMEOUT, close_periods_job, rebuild_boards_job

CLOSE_EVERY_SECONDS = 300
RECONCILE_AT = dt.time(3, 30)  # local time, when the province sleeps


def reconcile_cron(tz_name: str, today: dt.date | None = None) -> str:
    """The cron line (UTC, as RQ reads it) for RECONCILE_AT local time."""
    today = today or dt.date.today()
    local = dt.datetime.combine(today, RECONCILE_AT, tzinfo=zone(tz_name))
    utc = local.astimezone(dt.UTC)
    return f"{utc.minute} {utc.hour} * * *"


def scheduler() -> CronScheduler:
    cron = CronScheduler(connection=get_redis(), name="pioneer-points")
    common = {"queue_name": QUEUE, "result_ttl": RESULT_TTL, "failure_ttl": FAILURE_TTL}
    cron.register(close_periods_job, interval=CLOSE_EVERY_SECONDS, job_timeout=3600, **common)
    cron.register(
        rebuild_boards_job,
        kwargs={"reason": "nightly reconciliation"},
        cron=reconcile_cron(current_app.config["APP_TIMEZONE"]),
        job_timeout=REBUILD_TIMEOUT,
        **common,
    )
    return cron


def run_scheduler() -> None:
    scheduler().start()
