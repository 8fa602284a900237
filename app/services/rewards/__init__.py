"""Rewards: the catalogue, who may redeem what, redemption, pickup, cancellation and expiry.

A reward is defined in its organisation's rules file; what has been taken is database state.
A redemption is one transaction: the member's row is locked, eligibility and the balance are
checked, a ``redeem`` ledger entry takes the points, and last the stock and the sponsor's
budget are taken with conditional updates (so two members racing for the last item cannot both
get it). Cancelling or expiring gives the points back with a ``refund`` entry and the stock and
budget back to the counters the redemption took them from. Services flush; the caller commits.

``offers`` says what a member is offered and whether they may redeem it; ``redemption`` does
it and what follows.
"""

from .offers import (
    HELD,
    Counters,
    MemberView,
    Refusal,
    Usage,
    budget_refusal,
    catalogue,
    eligibility,
    facts_of,
    find_reward,
    member_count,
    member_view,
    member_views,
    reward_key,
    stock_left,
    usage_periods,
)
from .redemption import (
    CODE_ALPHABET,
    CODE_LENGTH,
    check_station,
    confirm,
    expire_due,
    find_redemption,
    may_handle,
    not_pending,
    qr_png,
    qr_size,
    redeem,
    refund,
    sponsor_spend,
)

__all__ = [
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "HELD",
    "Counters",
    "MemberView",
    "Refusal",
    "Usage",
    "budget_refusal",
    "catalogue",
    "check_station",
    "confirm",
    "eligibility",
    "expire_due",
    "facts_of",
    "find_redemption",
    "find_reward",
    "may_handle",
    "member_count",
    "member_view",
    "member_views",
    "not_pending",
    "qr_png",
    "qr_size",
    "redeem",
    "refund",
    "reward_key",
    "sponsor_spend",
    "stock_left",
    "usage_periods",
]
