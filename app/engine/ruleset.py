"""A loaded rule set: every file's effective rules, levels, badges and rewards, immutable."""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from .model import Badge, EventType, Expiry, Level, Reward, Rule, RulesFile

_CACHE_LIMIT = 500_000


def ancestors(code: str) -> list[str]:
    """``sx.ty.a`` → ``['sx.ty.a', 'sx.ty', 'sx']`` (self first)."""
    parts = code.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def within(code: str, root: str) -> bool:
    """Whether organisation ``code`` is ``root`` or below it: ``sx.ty.a`` is within ``sx.ty``,
    ``sx.tyx`` is not."""
    return code == root or code.startswith(root + ".")


def match_event_types(pattern: str, declared) -> set[str]:
    """Declared event types an ``on`` pattern names: ``*``, ``prefix.*`` or an exact type."""
    if pattern == "*":
        return set(declared)
    if pattern.endswith(".*"):
        prefix = pattern[:-1]
        return {t for t in declared if t.startswith(prefix)}
    return {pattern} if pattern in declared else set()


def industry_org(industry: str) -> str:
    """The industry committee that scores a member's industry: ``delivery`` → ``ind.delivery``."""
    return f"ind.{industry}"


@dataclass(eq=False)
class RuleSet:
    """Rules, event types and catalogues of one rules directory, at one version.

    ``chains[org]`` is the ordered list of effective rules for events at an organisation that
    has a rules file: its own rules first, then its parent's chain without what it overrode or
    disabled, up to the root. Organisations without a file use their nearest ancestor's chain.
    """

    version: str
    timezone: str
    tz: ZoneInfo
    event_types: dict[str, EventType]
    files: dict[str, RulesFile]
    chains: dict[str, tuple[Rule, ...]]
    _by_type: dict[tuple[str, str | None, str], tuple[Rule, ...]] = field(
        default_factory=dict, repr=False
    )

    def file_org_for(self, org: str) -> str | None:
        """The nearest organisation at or above ``org`` that has a rules file."""
        for code in ancestors(org):
            if code in self.files:
                return code
        return None

    def rules_for(self, org: str, industry: str | None, event_type: str) -> tuple[Rule, ...]:
        """Rules tried, in order, for an event of ``event_type`` at ``org`` by a member of
        ``industry``: the regional chain (most specific organisation first), then the chain of
        the member's industry committee. Cached; the rule set is immutable."""
        key = (org, industry, event_type)
        found = self._by_type.get(key)
        if found is None:
            region = self.file_org_for(org)
            ind = self.file_org_for(industry_org(industry)) if industry else None
            found = tuple(r for r in self.chain(region, ind) if event_type in r.types)
            if len(self._by_type) >= _CACHE_LIMIT:
                self._by_type.clear()  # bounded: thousands of stations × types × industries
            self._by_type[key] = found
        return found

    def chain(self, region: str | None, ind: str | None) -> tuple[Rule, ...]:
        rules = self.chains.get(region, ()) if region else ()
        if ind and ind != region:
            seen = {r.key for r in rules}
            rules = rules + tuple(r for r in self.chains.get(ind, ()) if r.key not in seen)
        return rules

    def levels_for(self, org: str | None) -> tuple[Level, ...]:
        """The level ladder of the nearest organisation at or above ``org`` that defines one."""
        for code in ancestors(org) if org else ():
            f = self.files.get(code)
            if f is not None and f.levels:
                return f.levels
        return ()

    def badges_for(self, org: str | None) -> tuple[Badge, ...]:
        """Badges defined at ``org`` and every ancestor (most specific first)."""
        out: list[Badge] = []
        for code in ancestors(org) if org else ():
            f = self.files.get(code)
            if f is not None:
                out.extend(f.badges)
        return tuple(out)

    def rewards_at(self, org: str) -> tuple[Reward, ...]:
        f = self.files.get(org)
        return f.rewards if f is not None else ()

    def expiry_for(self, org: str | None) -> Expiry | None:
        for code in ancestors(org) if org else ():
            f = self.files.get(code)
            if f is not None and f.expiry is not None:
                return f.expiry
        return None

    @property
    def rule_count(self) -> int:
        return sum(len(f.own_rules) for f in self.files.values())
