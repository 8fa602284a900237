"""A browsable page of the OpenAPI document, rendered on the server: no CDN, no JavaScript,
and its stylesheet a file of its own (the Content-Security-Policy refuses inline styles)."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from flask import Blueprint, render_template

from ..extensions import api

DESCRIPTION = (
    "Partner platforms register their members and post activity events; accepted events "
    "become points on an append-only ledger. Authenticate with `Authorization: Bearer <key>`. "
    'Every error is JSON: `{"error": {"code", "message", "details"}}`. '
    "Signing (required for some partners, checked whenever sent): `X-PP-Timestamp: <unix "
    "seconds>` and `X-PP-Signature: v1=<hex HMAC-SHA256(signing secret, timestamp + '.' + "
    "body)>`; the timestamp must be within 5 minutes of the server's clock and a signature is "
    "accepted once. Each partner has a request budget (`X-RateLimit-*` headers); over it, 429 "
    "`rate_limited` with `Retry-After` in seconds."
)

blp = Blueprint(
    "api_docs",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/api/docs/static",
)
STYLESHEET = "api_docs.css"


@functools.cache
def _stylesheet_version() -> str:
    """A hash of the stylesheet, for its URL: static files may be cached for a year."""
    return hashlib.sha256((Path(blp.static_folder) / STYLESHEET).read_bytes()).hexdigest()[:10]


def _ref_name(schema: dict | None) -> str:
    if not schema:
        return ""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if schema.get("type") == "array":
        return f"list of {_ref_name(schema.get('items'))}"
    return schema.get("type", "")


@blp.get("/api/docs")
def docs_page():
    spec = api.spec.to_dict()
    operations = []
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if method not in ("get", "put", "post", "patch", "delete"):
                continue
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            operations.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "parameters": op.get("parameters", []),
                    "body": _ref_name(body.get("schema")),
                    "responses": [
                        (code, r.get("description", ""),
                         _ref_name(r.get("content", {}).get("application/json", {}).get("schema")))
                        for code, r in sorted(op.get("responses", {}).items())
                    ],
                }
            )  # fmt: skip
    schemas = spec.get("components", {}).get("schemas", {})
    return render_template(
        "api_docs.html",
        spec=spec,
        operations=operations,
        schemas=schemas,
        ref_name=_ref_name,
        stylesheet=STYLESHEET,
        stylesheet_version=_stylesheet_version(),
    )
