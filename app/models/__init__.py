"""SQLAlchemy models, one module per aggregate."""

from .achievement import BadgeGrant, LevelChange
from .base import Base
from .board import BoardArchive, BoardPeriod
from .emergency import Emergency
from .event import Event, EventStatus
from .ledger import EARNING_KINDS, LedgerEntry, LedgerKind
from .member import Counter, Member, MemberOrg, PartnerMember
from .org import Organisation, OrgKind
from .partner import Partner, PartnerKey
from .reward import Redemption, RedemptionStatus, RewardUsage

__all__ = [
    "EARNING_KINDS",
    "BadgeGrant",
    "Base",
    "BoardArchive",
    "BoardPeriod",
    "Counter",
    "Emergency",
    "Event",
    "EventStatus",
    "LedgerEntry",
    "LedgerKind",
    "LevelChange",
    "Member",
    "MemberOrg",
    "OrgKind",
    "Organisation",
    "Partner",
    "PartnerKey",
    "PartnerMember",
    "Redemption",
    "RedemptionStatus",
    "RewardUsage",
]
