"""Prometheus metrics at /metrics, and the access log (routes, never the values in paths)."""

from __future__ import annotations

import json
import logging
import re

from app.logs import JsonFormatter

from ..partner_api import shift


def _sample(client, name: str, **labels) -> float:
    """One sample's value from /metrics (0 when the series does not exist yet)."""
    text = client.get("/metrics").get_data(as_text=True)
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.partition("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_events_are_counted_by_type_outcome_and_reason(client, partner_api, rider):
    def count(**labels):
        return _sample(client, "pp_events_total", **labels)

    accepted = count(type="pioneer.shift", outcome="accepted", reason="")
    replayed = count(type="pioneer.shift", outcome="replayed", reason="")
    unknown = count(type="other", outcome="rejected", reason="unknown_event_type")
    assert partner_api.post_event(shift("e1")).status_code == 201
    assert partner_api.post_event(shift("e1")).status_code == 200
    bad = shift("e2", type="made.up")
    assert partner_api.post_event(bad).json["error"]["code"] == "unknown_event_type"
    batch = partner_api.post_batch([shift("e3"), dict(shift("e4"), type="typo.here")])
    assert batch.json["accepted"] == 1
    assert count(type="pioneer.shift", outcome="accepted", reason="") == accepted + 2
    assert count(type="pioneer.shift", outcome="replayed", reason="") == replayed + 1
    assert count(type="other", outcome="rejected", reason="unknown_event_type") == unknown + 2
    text = client.get("/metrics").get_data(as_text=True)
    assert "made.up" not in text and "typo.here" not in text  # no series per typo


def test_ingestion_latency_and_requests_are_histograms(client, partner_api, rider):
    before = _sample(client, "pp_ingest_seconds_count", endpoint="event")
    requests_before = _sample(client, "pp_http_requests_total", area="api", status="201")
    partner_api.post_event(shift("e1"))
    assert _sample(client, "pp_ingest_seconds_count", endpoint="event") == before + 1
    assert _sample(client, "pp_ingest_seconds_bucket", endpoint="event", le="+Inf") >= before + 1
    assert _sample(client, "pp_http_requests_total", area="api", status="201") == (
        requests_before + 1
    )


def test_queue_depth_and_job_durations_and_drift(client, partner_api, rider, app_ctx):
    from app.jobs.boards import rebuild_boards_job
    from app.redis_client import get_redis

    text = client.get("/metrics").get_data(as_text=True)
    assert 'pp_queue_depth{queue="default"}' in text and 'pp_queue_depth{queue="boards"}' in text
    jobs = _sample(client, "pp_job_seconds_count", job="rebuild_boards_job", outcome="finished")
    drift = _sample(client, "pp_board_drift_lines_total")
    partner_api.post_event(shift("e1"))
    boards = list(get_redis().scan_iter("lb:{*"))
    assert boards
    for key in boards:  # a line no ledger entry explains: drift for the rebuild to find
        get_redis().zadd(key, {"999999": 7})
    report = rebuild_boards_job("test")
    assert report["drift_lines"] > 0
    after = _sample(client, "pp_job_seconds_count", job="rebuild_boards_job", outcome="finished")
    assert after == jobs + 1
    assert _sample(client, "pp_board_drift_lines_total") == drift + report["drift_lines"]


def test_metrics_are_for_this_machine_or_the_token(client, app_ctx):
    assert client.get("/metrics").status_code == 200
    away = {"REMOTE_ADDR": "10.1.2.3"}
    refused = client.get("/metrics", environ_base=away)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "forbidden"
    app_ctx.config["METRICS_TOKEN"] = "scrape-me"
    try:
        ok = client.get("/metrics", environ_base=away,
                        headers={"Authorization": "Bearer scrape-me"})  # fmt: skip
        assert ok.status_code == 200 and ok.mimetype == "text/plain"
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403  # with a token set, even this machine needs it
    finally:
        app_ctx.config["METRICS_TOKEN"] = None


def test_the_access_log_names_routes_not_tokens_or_references(client, partner_api, rider, caplog):
    caplog.set_level(logging.INFO, logger="pioneer.access")
    client.get("/m/login/secret-token-123")
    partner_api.get_member("r1")
    client.get("/no/such/13800138000")
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records
             if r.name == "pioneer.access"]  # fmt: skip
    routes = [(line["method"], line["route"], line["status"]) for line in lines]
    assert ("GET", "/m/login/<token>", 403) in routes
    assert ("GET", "/api/v1/members/<ref>", 200) in routes
    assert ("GET", "-", 404) in routes
    text = json.dumps(lines)
    assert "secret-token-123" not in text and "13800138000" not in text and '"r1"' not in text
    assert all(line["ms"] >= 0 for line in lines)
