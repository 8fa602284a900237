"""Jobs run inline on the embedded default and in a worker with a real Redis (CI)."""

from rq import SimpleWorker

from app.jobs import QUEUES, enqueue, job_status, queue, recent_jobs
from app.jobs.ledger import verify_ledger_job
from app.redis_client import get_redis, is_embedded

from ..partner_api import hazard


def run_queued_jobs() -> None:
    """With a real Redis, jobs wait for a worker: run one until the queues are empty."""
    if not is_embedded():
        SimpleWorker([queue(q) for q in QUEUES], connection=get_redis()).work(burst=True)


def test_a_job_runs_and_its_outcome_is_visible(partner_api, rider):
    partner_api.post_event(hazard("h1"))
    job = enqueue(verify_ledger_job, description="verify the ledger")
    run_queued_jobs()
    status = job_status(job.id)
    assert status["status"] == "finished"
    assert status["result"]["ok"] is True and status["result"]["entries"] == 1
    assert status["meta"]["done"] == status["meta"]["total"] == 1
    assert job.id in [j["id"] for j in recent_jobs()]


def test_an_unknown_job_id_is_none(app_ctx):
    assert job_status("no-such-job") is None
