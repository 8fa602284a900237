"""Prometheus metrics at ``/metrics``.

What is counted: events accepted and rejected (by event type and reason), the time to answer
an ingestion request, every request by kind and status, job durations, the drift a board
rebuild found, and — read at scrape time — the depth of each job queue.

Under gunicorn (several worker processes) and with RQ workers, every process writes its
figures to files in ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` adds them up (prometheus
client's multiprocess mode; scripts/serve sets it). Without it each process counts alone.

``/metrics`` answers requests from this machine; from elsewhere only with
``Authorization: Bearer <METRICS_TOKEN>`` (so put the token in Prometheus' scrape config).
"""

from __future__ import annotations

import hmac
import os
import time

from flask import Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

EVENTS = Counter(
    "pp_events_total",
    "Events posted by partners, by event type, outcome and reason (the error code)",
    ["type", "outcome", "reason"],
)
INGEST_SECONDS = Histogram(
    "pp_ingest_seconds",
    "Time to answer an ingestion request (one event, or a batch)",
    ["endpoint"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1, 2.5, 5, 10),
)
REQUESTS = Counter(
    "pp_http_requests_total", "Requests answered, by area and status", ["area", "status"]
)
REQUEST_SECONDS = Histogram(
    "pp_http_request_seconds",
    "Time to answer a request, by area",
    ["area"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10),
)
JOB_SECONDS = Histogram(
    "pp_job_seconds",
    "Background job durations, by job and outcome",
    ["job", "outcome"],
    buckets=(0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)
DRIFT_LINES = Counter(
    "pp_board_drift_lines_total",
    "Leaderboard lines a rebuild from the ledger found different from the live boards",
)
REBUILDS = Counter("pp_board_rebuilds_total", "Leaderboard rebuilds from the ledger")

# the first path segment a request belongs to; anything else is "other" (bounded labels)
_AREAS = {"api": "api", "m": "rider", "console": "console", "verify": "rider"}
_INGEST = {"events.post_event": "event", "events.post_batch": "batch"}


def event_type_label(raw: object) -> str:
    """The event's type when the rules in force declare it, else "other": a partner's typo
    must not grow the number of series."""
    from .services.rules import current_rules

    kind = raw.get("type") if isinstance(raw, dict) else None
    if isinstance(kind, str):
        try:
            if kind in current_rules().event_types:
                return kind
        except Exception:  # rules not loaded: the count still happens
            pass
    return "other"


def count_events(raws: list, outcomes: list) -> None:
    """Count each posted event by type, outcome (accepted, replayed, scored, rejected) and
    reason."""
    for raw, outcome in zip(raws, outcomes, strict=False):
        if outcome.error is not None:
            kind, reason = "rejected", outcome.error.code
        else:
            kind = {201: "accepted", 200: "replayed"}.get(outcome.status, "scored")
            reason = ""
        EVENTS.labels(event_type_label(raw), kind, reason).inc()


class QueueDepth:
    """Scrape-time collector: jobs waiting and failed on each RQ queue."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        from .jobs import QUEUES, queue

        waiting = GaugeMetricFamily("pp_queue_depth", "Jobs waiting on a queue", labels=["queue"])
        failed = GaugeMetricFamily(
            "pp_queue_failed", "Failed jobs kept on a queue", labels=["queue"]
        )
        with self.app.app_context():
            try:
                for name in QUEUES:
                    q = queue(name)
                    waiting.add_metric([name], q.count)
                    failed.add_metric([name], q.failed_job_registry.count)
            except Exception:  # Redis down: no figure rather than no metrics
                return
        yield waiting
        yield failed


def _registry(app: Flask) -> CollectorRegistry:
    from prometheus_client import REGISTRY

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(REGISTRY))
    registry.register(QueueDepth(app))
    return registry


class _Forward:
    """This process's default registry, inside another (which adds the queue collector)."""

    def __init__(self, inner):
        self.inner = inner

    def collect(self):
        yield from self.inner.collect()


def _allowed() -> bool:
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())
    return request.remote_addr in ("127.0.0.1", "::1")


def init_app(app: Flask) -> None:
    registry = _registry(app)

    @app.route("/metrics")
    def metrics():
        if not _allowed():
            from .errors import error_response

            return error_response(
                "forbidden", "metrics are served to this machine, or with METRICS_TOKEN", 403
            )
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)

    @app.before_request
    def _start() -> None:
        g.pp_started = time.perf_counter()

    @app.after_request
    def _observe(response):
        started = g.pop("pp_started", None)
        if started is None or request.endpoint in ("metrics", "static"):
            return response
        seconds = time.perf_counter() - started
        area = _AREAS.get(request.path.split("/", 2)[1], "other")
        REQUESTS.labels(area, str(response.status_code)).inc()
        REQUEST_SECONDS.labels(area).observe(seconds)
        ingest = _INGEST.get(request.endpoint)
        if ingest:
            INGEST_SECONDS.labels(ingest).observe(seconds)
        return response
