"""Periodic jobs, run by RQ's own cron scheduler (``flask --app app scheduler``)."""

from __future__ import annotations

import datetime as dt

from flask import current_app
from rq.cron import CronScheduler

from ..engine.periods import zone
from ..redis_client import get_redis
from . import FAILURE_TTL, RESULT_TTL
from .boards import QUEUE, REBUILD_TIMEOUT, close_periods_job, rebuild_boards_job
from .rewards import expire_points_job, expire_redemptions_job

CLOSE_EVERY_SECONDS = 300
EXPIRE_REDEMPTIONS_EVERY_SECONDS = 300
RECONCILE_AT = dt.time(3, 30)  # local time, when the province sleeps
EXPIRE_POINTS_AT = dt.time(0, 20)  # local: just after a year (or a month) turns


def reconcile_cron(tz_name: str, today: dt.date | None = None, at: dt.time = RECONCILE_AT) -> str:
    """The cron line (UTC, as RQ reads it) for ``at`` local time (default RECONCILE_AT)."""
    today = today or dt.date.today()
    local = dt.datetime.combine(today, at, tzinfo=zone(tz_name))
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
    defaults = {"queue_name": "default", "result_ttl": RESULT_TTL, "failure_ttl": FAILURE_TTL}
    cron.register(expire_redemptions_job, interval=EXPIRE_REDEMPTIONS_EVERY_SECONDS,
                  job_timeout=1800, **defaults)  # fmt: skip
    cron.register(
        expire_points_job,
        cron=reconcile_cron(current_app.config["APP_TIMEZONE"], at=EXPIRE_POINTS_AT),
        job_timeout=4 * 3600,
        **defaults,
    )
    return cron


def run_scheduler() -> None:
    scheduler().start()
