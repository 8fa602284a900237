"""Compare expression evaluators for rules, on this machine, in one run.

    .venv/bin/pip install -e '.[bench]'      # the libraries compared against
    .venv/bin/python scripts/bench/bench_expr.py

Two expressions from the shipped rules are evaluated 100,000 times each by our compiler
(app/engine/expr.py) and by every candidate that is installed: simpleeval (with a pre-parsed
AST), the CEL bindings (common-expression-language, compiled once), rule-engine and
cel-python. Each candidate gets the context in the form it needs, converted per call as it
would be for a new event. Prints µs per evaluation and the ratio to ours.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.engine import EventFacts, MemberFacts
from app.engine.expr import Env, compile_expr

N = 100_000
POINTS = "5 * min(event.data.hours, 8)"
CONDITION = "event.data.hours >= 2 and member.party_member"
EVENT = {"type": "pioneer.shift", "data": {"hours": 3.0}}
MEMBER = {"party_member": True, "industry": "delivery"}


def timed(fn, n: int = N, rounds: int = 3) -> float:
    """Median µs per call over ``rounds`` runs of ``n`` calls."""
    fn()
    results = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(n):
            fn()
        results.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(results)


def ours():
    when = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
    points, cond = compile_expr(POINTS), compile_expr(CONDITION)

    event = EventFacts("pioneer.shift", "sx", when, dict(EVENT["data"]))
    member = MemberFacts(party_member=True)

    def env():  # what evaluate() builds once per event
        return Env(event, dict(EVENT["data"]), member, when, None, {})

    assert points.fn(env()) == 15 and cond.fn(env()) is True
    return timed(lambda: points.fn(env())), timed(lambda: cond.fn(env()))


def simpleeval_():
    from simpleeval import EvalWithCompoundTypes

    s = EvalWithCompoundTypes(functions={"min": min})
    p = s.parse(POINTS.replace("event.data.hours", "event['data']['hours']"))
    c = s.parse(
        CONDITION.replace("event.data.hours", "event['data']['hours']").replace(
            "member.party_member", "member['party_member']"
        )
    )

    def run(tree):
        s.names = {"event": dict(EVENT), "member": dict(MEMBER)}
        return s.eval("", previously_parsed=tree)

    assert run(p) == 15 and run(c) is True
    return timed(lambda: run(p)), timed(lambda: run(c))


def cel_bindings():
    import cel

    p = cel.compile("5.0 * min(event.data.hours, 8.0)")
    c = cel.compile(CONDITION.replace(" and ", " && ").replace(">= 2", ">= 2.0"))

    def run(program):
        ctx = cel.Context()
        ctx.add_function("min", min)
        ctx.add_variable("event", dict(EVENT))
        ctx.add_variable("member", dict(MEMBER))
        return program.execute(ctx)

    assert run(p) == 15 and run(c) is True
    return timed(lambda: run(p), n=N // 5), timed(lambda: run(c), n=N // 5)


def rule_engine_():
    import rule_engine

    c = rule_engine.Rule(CONDITION)
    assert c.matches({"event": EVENT, "member": MEMBER})
    return None, timed(lambda: c.matches({"event": dict(EVENT), "member": dict(MEMBER)}), n=N // 50)


def cel_python():
    import celpy

    env = celpy.Environment()
    c = env.program(env.compile(CONDITION.replace(" and ", " && ").replace(">= 2", ">= 2.0")))

    def run():
        return c.evaluate(
            {"event": celpy.json_to_cel(dict(EVENT)), "member": celpy.json_to_cel(dict(MEMBER))}
        )

    assert run()
    return None, timed(run, n=N // 50)


def main() -> None:
    print(f"Python {sys.version.split()[0]}; µs per evaluation, median of 3 runs")
    print(f"  points:    {POINTS}\n  condition: {CONDITION}\n")
    base_p, base_c = ours()
    print(f"  {'library':<32} {'points':>8} {'condition':>10}")
    print(f"  {'app.engine.expr (ours)':<32} {base_p:8.2f} {base_c:10.2f}")
    for name, fn in [
        ("simpleeval (pre-parsed)", simpleeval_),
        ("CEL (common-expression-language)", cel_bindings),
        ("rule-engine", rule_engine_),
        ("cel-python", cel_python),
    ]:
        try:
            p, c = fn()
        except ImportError:
            print(f"  {name:<32} not installed (pip install -e '.[bench]')")
            continue
        ps = f"{p:8.2f}" if p is not None else f"{'-':>8}"
        print(f"  {name:<32} {ps} {c:10.2f}   ({c / base_c:5.1f}× ours on the condition)")


if __name__ == "__main__":
    main()
