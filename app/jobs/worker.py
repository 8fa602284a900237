"""The RQ worker every queue runs on: non-forking, with a heartbeat that outlives nothing.

RQ's ``SimpleWorker`` runs a job in its own process (inside this app's context) and gives a
running job a heartbeat of its whole timeout (two hours for a rebuild): a worker killed in the
middle would leave its job "started" for that long. Here a thread renews the job's heartbeat
every ``JOB_HEARTBEAT_SECONDS / 3`` while it runs, so a job whose worker died is found
abandoned within ``JOB_HEARTBEAT_SECONDS``; every worker cleans the registries each
``WORKER_MAINTENANCE_SECONDS``, which retries such a job (each has three retries), and runs
RQ's scheduler, which enqueues retries when their back-off is over.
"""

from __future__ import annotations

import logging
import threading

from rq import SimpleWorker
from rq.job import Job
from rq.queue import Queue
from rq.worker import WorkerStatus

log = logging.getLogger(__name__)


class PioneerWorker(SimpleWorker):
    heartbeat_seconds = 60

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return self.heartbeat_seconds

    def execute_job(self, job: Job, queue: Queue):
        execution = self.prepare_execution(job)
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.heartbeat_seconds / 3):
                try:
                    self.maintain_heartbeats(job, execution)
                except Exception:  # Redis away for a moment: the next beat tries again
                    log.warning("job %s: heartbeat not sent", job.id)

        beater = threading.Thread(target=beat, name=f"heartbeat-{job.id}", daemon=True)
        beater.start()
        try:
            self.perform_job(job, queue, execution)
        finally:
            stop.set()
            beater.join()
        self.set_state(WorkerStatus.IDLE)


def build_worker(
    queues: list[Queue], connection, heartbeat: int, maintenance: int
) -> PioneerWorker:
    # an idle worker waits for a job at most worker_ttl - 15 s and cleans the registries only
    # between waits: so a wait must not outlast the maintenance interval
    worker = PioneerWorker(queues, connection=connection, maintenance_interval=maintenance,
                           worker_ttl=maintenance + 15)  # fmt: skip
    worker.heartbeat_seconds = heartbeat
    return worker
