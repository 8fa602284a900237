"""The ledger writer's hash (``row_hash``) is exactly the documented one: SHA-256 over the
previous hash and the sorted-keys JSON of the hashed fields (``entry_hash``), for every kind of
value an entry holds."""

import datetime as dt
import hashlib
import json
from enum import StrEnum

import pytest

from app.models.ledger import HASHED, entry_hash, ledger_hash_fields, row_hash


class Kind(StrEnum):
    AWARD = "award"


def _row(**values) -> dict:
    base = {k: None for k in HASHED}
    base.update(member_id=7, seq=3, points=-12, kind="award", org_code="sx.ty",
                category="volunteer", reason="志愿服务 4 小时", occurred_at=dt.datetime(
                    2026, 11, 30, 8, 15, 1, 250, tzinfo=dt.timezone(dt.timedelta(hours=8))),
                created_at=dt.datetime(2026, 11, 30, 0, 0, tzinfo=dt.UTC))  # fmt: skip
    base.update(values)
    return base


@pytest.mark.parametrize("values", [
    {},
    {"event_id": 123456789012, "rule": "sx:volunteer-hours", "rules_version": "1d50185f2748",
     "ref": "ev-1", "reverses_id": 99},
    {"reason": 'quotes " and \\ backslash\nnewline\ttab \u2028 and emoji 🚴', "ref": ""},
    {"kind": Kind.AWARD, "points": True},  # a str subclass, a bool: as the encoder writes them
    {"points": 2.5, "category": "ü"},
])  # fmt: skip
def test_row_hash_is_the_documented_hash(values):
    row = _row(**values)
    fields = ledger_hash_fields(row)
    assert row_hash("prev", row) == entry_hash("prev", fields)
    # and the documented one is the sorted-keys JSON
    text = json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert entry_hash("prev", fields) == hashlib.sha256(("prev\n" + text).encode()).hexdigest()
