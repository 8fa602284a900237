"""Events: one at a time, in batches of up to BATCH_LIMIT, or as a dry run."""

from __future__ import annotations

from flask import current_app, g, request
from flask_smorest import Blueprint
from marshmallow import ValidationError, fields

from ..errors import Invalid
from ..metrics import count_events
from ..services.ingest import EventIn, ingest
from ..services.ingest.group import group_commit
from .auth import SECURITY, require_partner
from .body import body_doc, json_body
from .schemas import BatchIn, BatchOut, ErrorOut, EventResult

blp = Blueprint("events", __name__, description="Activity events posted by partners")
blp.before_request(require_partner)

# The hot path answers with plain dicts that already have the documented shape: documented
# with alt_response(success=True) rather than response(), which would run them through
# marshmallow again, and the query read by hand rather than by webargs.
DRY_RUN = {
    "in": "query",
    "name": "dry_run",
    "schema": {"type": "boolean", "default": False},
    "description": "Score and answer, store nothing",
}
_BOOLEAN = fields.Boolean()  # the same words for true and false as marshmallow anywhere else


def dry_run_flag() -> bool:
    """The ``dry_run`` query parameter; any other parameter, or another value, is refused."""
    unknown = sorted(set(request.args) - {"dry_run"})
    if unknown:
        raise Invalid("unknown query parameters", {name: ["Unknown field."] for name in unknown})
    if "dry_run" not in request.args:
        return False
    try:
        return _BOOLEAN.deserialize(request.args["dry_run"])
    except ValidationError as exc:
        raise Invalid("dry_run must be true or false", {"dry_run": exc.messages}) from None


@blp.route("/events", methods=["POST"])
@blp.doc(security=SECURITY, parameters=[DRY_RUN], **body_doc(EventIn))
@blp.alt_response(201, schema=EventResult, description="Stored and scored", success=True)
@blp.alt_response(200, schema=EventResult, description="A replay, or a dry run", success=True)
@blp.alt_response(400, schema=ErrorOut)
@blp.alt_response(401, schema=ErrorOut)
@blp.alt_response(403, schema=ErrorOut)
@blp.alt_response(409, schema=ErrorOut)
@blp.alt_response(413, schema=ErrorOut)
@blp.alt_response(422, schema=ErrorOut)
def post_event():
    """Post one activity event; get the points it earned and the new balance.

    The same event id with the same body again answers 200 with the first response and
    awards nothing; with another body, 409. ``?dry_run=true`` scores without storing.
    """
    dry_run = dry_run_flag()
    committer = None if dry_run else group_commit()
    body = json_body()
    if committer is not None:
        outcome = committer.submit(g.partner, body)  # committed with others waiting
    else:
        (outcome,) = ingest(g.partner, [body], dry_run=dry_run, own_transaction=True)
    if not dry_run:
        count_events([body], [outcome])
    if outcome.error is not None:
        raise outcome.error
    return outcome.body, outcome.status


@blp.route("/events/batch", methods=["POST"])
@blp.doc(security=SECURITY, parameters=[DRY_RUN], **body_doc(BatchIn))
@blp.alt_response(200, schema=BatchOut, description="One result per event", success=True)
@blp.alt_response(400, schema=ErrorOut)
@blp.alt_response(401, schema=ErrorOut)
@blp.alt_response(413, schema=ErrorOut)
@blp.alt_response(422, schema=ErrorOut)
def post_batch():
    """Post up to BATCH_LIMIT events; one result per event, in order.

    A bad event gets its own error and does not sink the others; what is accepted is
    committed in one transaction.
    """
    dry_run = dry_run_flag()
    body = json_body()
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list) or (isinstance(body, dict) and set(body) - {"events"}):
        raise Invalid('the body must be {"events": [...]}')
    limit = current_app.config["BATCH_LIMIT"]
    if not 1 <= len(events) <= limit:
        raise Invalid(f"a batch holds 1 to {limit} events", {"events": len(events)}, "batch_size")
    outcomes = ingest(g.partner, events, dry_run=dry_run, own_transaction=True)
    if not dry_run:
        count_events(events, outcomes)
    results = []
    for i, o in enumerate(outcomes):
        item = {"index": i, "status": o.status, "result": o.body, "error": None}
        if o.error is not None:
            e = o.error
            item["error"] = {"code": e.code, "message": e.message, "details": e.details}
        results.append(item)
    accepted = sum(1 for o in outcomes if o.error is None)
    return {"accepted": accepted, "rejected": len(outcomes) - accepted, "results": results}
