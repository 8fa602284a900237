"""The rules engine: YAML rules in, validated frozen dataclasses out, pure evaluation.

No Flask, database or Redis here: the service, the workers and the CLI all call it.

    result = load_ruleset("rules", timezone="Asia/Shanghai")
    if result.ruleset is None:
        for d in result.errors: print(d)
    evaluation = evaluate(result.ruleset, event, member, counters)
"""

from .diagnostics import Diagnostic, RulesError, Severity
from .evaluate import (
    Award,
    CounterKey,
    EvalStatus,
    Evaluation,
    add_counters,
    evaluate,
    needed_counters,
)
from .events import EventDataError, validate_event_data
from .explain import Explanation, render
from .loader import LoadResult, describe, load_ruleset
from .model import Category, EmergencyFacts, EventFacts, MemberFacts, Per, Rule
from .periods import DEFAULT_TIMEZONE, period_key, period_keys
from .ruleset import RuleSet, ancestors


def load_rules(directory, timezone: str = DEFAULT_TIMEZONE) -> RuleSet:
    """Load a rules directory or raise ``RulesError`` listing every error."""
    result = load_ruleset(directory, timezone)
    if result.ruleset is None:
        raise RulesError(result.diagnostics)
    return result.ruleset


__all__ = [
    "DEFAULT_TIMEZONE",
    "Award",
    "Category",
    "CounterKey",
    "Diagnostic",
    "EmergencyFacts",
    "EvalStatus",
    "Evaluation",
    "EventDataError",
    "EventFacts",
    "Explanation",
    "LoadResult",
    "MemberFacts",
    "Per",
    "Rule",
    "RuleSet",
    "RulesError",
    "Severity",
    "add_counters",
    "ancestors",
    "describe",
    "evaluate",
    "load_rules",
    "load_ruleset",
    "needed_counters",
    "period_key",
    "period_keys",
    "render",
    "validate_event_data",
]
