"""The ledger export: every entry with the fields its hash covers, checked by an auditor's
script that shares no code with the service (scripts/verify_ledger_export.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.extensions import db
from app.services.audit import EXPORT_FORMAT, export_ledger

from ..partner_api import hazard, shift

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "verify_ledger_export.py"


@pytest.fixture
def exported(partner_api, rider, runner, tmp_path) -> Path:
    """Two members' ledgers (3 entries and 1), exported with the command."""
    for i in range(3):
        assert (
            partner_api.post_event(hazard(f"h{i}", severity="low", days_ago=1 + i)).status_code
            == 201
        )
    partner_api.put_member("r2", name="李四")
    assert partner_api.post_event(shift("s1", member="r2")).status_code == 201
    db.session.remove()
    path = tmp_path / "ledger.jsonl"
    result = runner.invoke(args=["ledger", "export", "-o", str(path)])
    assert result.exit_code == 0, result.output
    return path


def _check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(path)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write(path: Path, items: list[dict]) -> None:
    path.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), "utf-8")


def test_an_untouched_export_verifies_independently(exported):
    items = _lines(exported)
    assert items[0]["format"] == EXPORT_FORMAT and "sha256" in items[0]["hash"]
    entries = [i for i in items if "entry" in i]
    members = [i for i in items if "member" in i]
    assert len(entries) == 4 and len(members) == 2
    assert all(set(e["fields"]) == set(items[0]["hashed_fields"]) for e in entries)
    assert "李四" not in exported.read_text(encoding="utf-8")  # no names in an export
    done = _check(exported)
    assert done.returncode == 0, done.stdout
    points = sum(e["fields"]["points"] for e in entries)
    assert f"OK: 2 members, 4 entries, {points} points" in done.stdout


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        ("points", "its fields do not hash to its hash"),
        ("reason", "its fields do not hash to its hash"),
        ("drop-middle", "sequence jumps from 1 to 3"),
        ("drop-last", "its newest entry is missing"),
        ("balance", "balance"),
        ("relink", "does not link to the previous entry's hash"),
    ],
)
def test_a_tampered_export_is_caught_and_the_entry_named(exported, tamper, problem):
    items = _lines(exported)
    first_member = items[1]["fields"]["member_id"]
    mine = [
        i for i, item in enumerate(items) if item.get("fields", {}).get("member_id") == first_member
    ]
    target = items[mine[1]]
    if tamper == "points":
        target["fields"]["points"] += 100
    elif tamper == "reason":
        target["fields"]["reason"] = "改过的"
    elif tamper == "drop-middle":
        del items[mine[1]]
    elif tamper == "drop-last":
        del items[mine[-1]]
    elif tamper == "balance":
        items[mine[-1] + 1]["balance"] += 50
    elif tamper == "relink":  # a forged entry hashed right but linked to nothing
        target["prev_hash"] = "0" * 64
    _write(exported, items)
    done = _check(exported)
    assert done.returncode == 1
    assert problem in done.stdout and f"member {first_member}" in done.stdout
    if tamper in ("points", "reason", "relink"):
        assert f"entry {target['entry']}" in done.stdout
    assert "BROKEN" in done.stdout


def test_the_export_streams_in_batches(partner_api, rider, app_ctx):
    for ref in ("r2", "r3", "r4"):
        partner_api.put_member(ref)
        partner_api.post_event(hazard(f"h-{ref}", member=ref))
    whole = list(export_ledger())
    assert list(export_ledger(batch=1))[1:] == whole[1:]  # the same lines, one member a batch
