"""Ledger jobs."""

from __future__ import annotations

from ..services.audit import verify_ledger
from . import app_job, progress


@app_job
def verify_ledger_job() -> dict:
    """Verify every member's hash chain and balance; progress in the job's meta."""
    return verify_ledger(on_progress=lambda done, total: progress(done, total)).as_dict()
