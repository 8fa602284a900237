"""Background jobs on RQ: queues, enqueueing, and the wrapper every job runs in.

Jobs are module-level functions that take ids, never objects; callers enqueue after they
commit, so a job never looks for a row the database has not committed. With ``REDIS_URL``
unset, jobs run inline, at once, in the caller's process (the embedded default); otherwise
``flask --app app worker`` processes run them.
"""

from __future__ import annotations

import functools
import logging
import time

from flask import Flask, has_app_context
from rq import Queue, Retry, get_current_job
from rq.job import Job

from ..extensions import db
from ..redis_client import get_redis, is_embedded

log = logging.getLogger(__name__)

QUEUES = ("default", "boards")
DEFAULT_TIMEOUT = 30 * 60
RESULT_TTL = 7 * 24 * 3600  # keep outcomes a week: `flask jobs` shows them
FAILURE_TTL = 30 * 24 * 3600


def queue(name: str = "default") -> Queue:
    return Queue(name, connection=get_redis(), is_async=not is_embedded())


def enqueue(func, *args, queue_name: str = "default", description: str | None = None,
            timeout: int = DEFAULT_TIMEOUT, retries: int = 3, depends_on: list[Job] | None = None,
            meta: dict | None = None, **kwargs) -> Job:  # fmt: skip
    """Enqueue ``func(*args, **kwargs)`` with a timeout, retries with back-off, and kept
    results; ``depends_on``: it waits until those jobs have finished; ``meta``: what the job's
    readers need to know of it (whose it is). Call after committing whatever the job will
    read."""
    return queue(queue_name).enqueue_call(
        func,
        args=args,
        kwargs=kwargs,
        timeout=timeout,
        result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL,
        description=description,
        depends_on=depends_on,
        meta=meta,
        retry=Retry(max=retries, interval=[10, 60, 300][:retries]) if retries else None,
    )


def progress(done: int, total: int | None = None, **extra) -> None:
    """Record a running job's progress in its RQ meta (no-op outside a job)."""
    job = get_current_job()
    if job is None:
        return
    job.meta.update({"done": done, "total": total, **extra})
    job.save_meta()


_worker_app: Flask | None = None


def app_job(func):
    """Run a job function inside an app context, commit once at the end, roll back on error.

    In a worker process the app is created once; inline (embedded) jobs use the caller's.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        global _worker_app
        if has_app_context():
            return _run(func, args, kwargs)
        if _worker_app is None:
            from .. import create_app

            _worker_app = create_app()
        with _worker_app.app_context():
            return _run(func, args, kwargs)

    return wrapper


def _run(func, args, kwargs):
    from ..metrics import JOB_SECONDS

    started = time.perf_counter()
    try:
        result = func(*args, **kwargs)
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("job %s failed", func.__name__)
        JOB_SECONDS.labels(func.__name__, "failed").observe(time.perf_counter() - started)
        raise
    JOB_SECONDS.labels(func.__name__, "finished").observe(time.perf_counter() - started)
    return result


def job_status(job_id: str) -> dict | None:
    try:
        job = Job.fetch(job_id, connection=get_redis())
    except Exception:  # rq raises NoSuchJobError; a bad id is simply not found
        return None
    return describe(job)


def describe(job: Job) -> dict:
    return {
        "id": job.id,
        "description": job.description,
        "status": job.get_status().value,
        "enqueued_at": job.enqueued_at.isoformat() if job.enqueued_at else None,
        "ended_at": job.ended_at.isoformat() if job.ended_at else None,
        "meta": job.meta,
        "result": job.return_value() if job.is_finished else None,
        "error": (job.exc_info or "").strip().splitlines()[-1:] if job.is_failed else None,
    }


def recent_jobs(limit: int = 20) -> list[dict]:
    """Queued, running, finished and failed jobs of every queue, newest first."""
    out = []
    for name in QUEUES:
        q = queue(name)
        ids = list(q.job_ids)
        for registry in (q.started_job_registry, q.finished_job_registry, q.failed_job_registry):
            ids += registry.get_job_ids()
        for job in Job.fetch_many(list(dict.fromkeys(ids)), connection=get_redis()):
            if job is not None:
                out.append(describe(job))
    out.sort(key=lambda j: j["enqueued_at"] or "", reverse=True)
    return out[:limit]
