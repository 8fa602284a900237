"""SQLAlchemy models, one module per aggregate."""

from .achievement import BadgeGrant, LevelChange
from .base import Base
from .board import BoardArchive, BoardPeriod
from .console import AuditEntry, ConsoleUser, Role, RuleVersion
from .emergency import Emergency
from .event import Event, EventStatus
from .ledger import EARNING_KINDS, LedgerEntry, LedgerKind
from .member import Counter, Member, MemberOrg, PartnerMember
from .org import Organisation, OrgKind
from .partner import Partner, PartnerKey
from .reward import Redemption, RedemptionStatus, RewardUsage
from .web import Appeal, AppealStatus, Certificate, LoginToken

__all__ = [
    "EARNING_KINDS",
    "Appeal",
    "AppealStatus",
    "AuditEntry",
    "BadgeGrant",
    "Base",
    "BoardArchive",
    "BoardPeriod",
    "Certificate",
    "ConsoleUser",
    "Counter",
    "Emergency",
    "Event",
    "EventStatus",
    "LedgerEntry",
    "LedgerKind",
    "LevelChange",
    "LoginToken",
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
    "Role",
    "RuleVersion",
]
