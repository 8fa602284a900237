"""Jobs of levels, badges and rewards, on the ``default`` queue: expire unclaimed
redemptions, expire points, re-evaluate badges."""

from __future__ import annotations

from ..extensions import db
from ..services import expiry, honours, rewards
from ..services.rules import current_rules
from . import app_job, enqueue, progress

QUEUE = "default"


@app_job
def expire_redemptions_job() -> dict:
    """Refund every pending redemption past its pickup time."""
    total = 0
    while True:
        done = rewards.expire_due()
        db.session.commit()
        total += done
        progress(total)
        if done == 0:
            return {"expired": total}


@app_job
def expire_points_job() -> dict:
    """Write the ``expire`` entries due now under each tree's expiry policy."""
    return expiry.expire_points(
        current_rules(), on_batch=lambda r: progress(r["members"], None, **r)
    )


@app_job
def recheck_badges_job(member_ids: list[int] | None = None) -> dict:
    """Recompute members' progress and bring their badges and levels in line."""
    return honours.recheck(
        current_rules(), member_ids, on_batch=lambda r: progress(r["members"], None, **r)
    )


def enqueue_recheck(member_ids: list[int] | None = None):
    return enqueue(recheck_badges_job, member_ids, queue_name=QUEUE,
                   description="re-evaluate badges", timeout=4 * 3600)  # fmt: skip
