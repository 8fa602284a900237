"""gunicorn settings of the production topology (scripts/Procfile), from the environment.

PORT (8000) or BIND; WEB_CONCURRENCY worker processes (2: one per core here) of WEB_THREADS
threads (8; threads let single events share a commit, app/services/ingest/group.py).
gunicorn's own access log is off: the app writes one line per request itself, with its
request id and its route, never the tokens and member references that paths carry.
"""

import os

bind = os.environ.get("BIND") or f"127.0.0.1:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
accesslog = None
errorlog = "-"
# the app's own JSON lines go to stderr; gunicorn's start-up and errors in plain text
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def child_exit(server, worker):
    """Prometheus multiprocess mode: forget the live gauges of a worker that is gone."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
