"""Events: one at a time, in batches of up to BATCH_LIMIT, or as a dry run."""

from __future__ import annotations

from flask import current_app, g
from flask_smorest import Blueprint

from ..errors import Invalid
from ..extensions import db
from ..services.ingest import EventIn, ingest
from .auth import SECURITY, require_partner
from .body import body_doc, json_body
from .schemas import BatchIn, BatchOut, DryRunQuery, ErrorOut, EventResult

blp = Blueprint("events", __name__, description="Activity events posted by partners")
blp.before_request(require_partner)


@blp.route("/events", methods=["POST"])
@blp.doc(security=SECURITY, **body_doc(EventIn))
@blp.arguments(DryRunQuery, location="query", as_kwargs=True)
@blp.response(201, EventResult, description="Stored and scored")
@blp.alt_response(200, schema=EventResult, description="A replay, or a dry run")
@blp.alt_response(400, schema=ErrorOut)
@blp.alt_response(401, schema=ErrorOut)
@blp.alt_response(403, schema=ErrorOut)
@blp.alt_response(409, schema=ErrorOut)
@blp.alt_response(413, schema=ErrorOut)
@blp.alt_response(422, schema=ErrorOut)
def post_event(dry_run: bool):
    """Post one activity event; get the points it earned and the new balance.

    The same event id with the same body again answers 200 with the first response and
    awards nothing; with another body, 409. ``?dry_run=true`` scores without storing.
    """
    (outcome,) = ingest(g.partner, [json_body()], dry_run=dry_run, own_transaction=True)
    if outcome.error is not None:
        db.session.rollback()
        raise outcome.error
    db.session.commit()
    return outcome.body, outcome.status


@blp.route("/events/batch", methods=["POST"])
@blp.doc(security=SECURITY, **body_doc(BatchIn))
@blp.arguments(DryRunQuery, location="query", as_kwargs=True)
@blp.response(200, BatchOut)
@blp.alt_response(400, schema=ErrorOut)
@blp.alt_response(401, schema=ErrorOut)
@blp.alt_response(413, schema=ErrorOut)
@blp.alt_response(422, schema=ErrorOut)
def post_batch(dry_run: bool):
    """Post up to BATCH_LIMIT events; one result per event, in order.

    A bad event gets its own error and does not sink the others; what is accepted is
    committed in one transaction.
    """
    body = json_body()
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list) or (isinstance(body, dict) and set(body) - {"events"}):
        raise Invalid('the body must be {"events": [...]}')
    limit = current_app.config["BATCH_LIMIT"]
    if not 1 <= len(events) <= limit:
        raise Invalid(f"a batch holds 1 to {limit} events", {"events": len(events)}, "batch_size")
    outcomes = ingest(g.partner, events, dry_run=dry_run, own_transaction=True)
    db.session.commit()
    results = []
    for i, o in enumerate(outcomes):
        item = {"index": i, "status": o.status, "result": o.body, "error": None}
        if o.error is not None:
            e = o.error
            item["error"] = {"code": e.code, "message": e.message, "details": e.details}
        results.append(item)
    accepted = sum(1 for o in outcomes if o.error is None)
    return {"accepted": accepted, "rejected": len(outcomes) - accepted, "results": results}
