"""Reading request bodies: JSON parsing that never fails with a 500."""

from __future__ import annotations

import json

from flask import request
from marshmallow import Schema, ValidationError

from ..errors import AppError, Invalid


class BadJSON(AppError):
    status, code = 400, "bad_json"


def json_body() -> object:
    """The request's JSON document; 400 for a body that is not JSON (or not UTF-8, or nested
    too deeply for the parser)."""
    raw = request.get_data(cache=True)
    if not raw:
        raise BadJSON("the request needs a JSON body")
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadJSON("the request body is not valid UTF-8") from None
    except RecursionError:
        raise BadJSON("the JSON document is nested too deeply") from None
    except ValueError as exc:
        raise BadJSON(f"the request body is not valid JSON: {exc}") from None
    if b"\\u0000" in raw.lower() and _has_nul(document):
        raise BadJSON("text in the request may not contain NUL (\\u0000) characters")
    return document


def _has_nul(value: object) -> bool:
    """Whether any key or string holds U+0000, which PostgreSQL cannot store in text."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def load(schema: Schema, data: object) -> dict:
    """Load ``data`` with ``schema``; 422 with the field messages when it does not fit."""
    if not isinstance(data, dict):
        raise Invalid("the request body must be a JSON object")
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise Invalid("the request does not fit the schema", exc.messages) from None


def body_doc(schema: type[Schema]) -> dict:
    """The OpenAPI requestBody of a view that reads its body with ``json_body``."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
