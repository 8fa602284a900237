"""Benchmark the rules engine: evaluation throughput and loading time.

    .venv/bin/python scripts/bench/bench_rules.py [--events 200000] [--orgs 1000]

1. Loads the shipped rules/ and evaluates N generated events against them in one process,
   keeping per-member cap counters the way the service does.
2. Writes a generated rule set of ORGS files × 20 rules to a temporary directory, times loading
   and checking it, and evaluates N events against it.
3. Prints, for comparison, the floor: a bare Python loop doing the same dict bookkeeping and one
   arithmetic expression per event with no engine at all.
Each measurement runs --rounds times (this machine's timings vary by ±30% between runs) and the
median and best are printed. The generated events are frozen out of the garbage collector's
view (gc.freeze) so that it does not rescan the benchmark's own input.
Targets (issue #2): ≥ 50,000 events/s on one core for the shipped set; loading + checking
1,000 files in < 5 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.engine import EventFacts, MemberFacts, add_counters, evaluate, load_ruleset  # noqa: E402
from app.engine.periods import zone  # noqa: E402
from app.models.member import PART_TIME_ROLES  # noqa: E402

TZ = zone("Asia/Shanghai")
INDUSTRIES = ["delivery", "express", "transport", "internet"]
TAGS = list(PART_TIME_ROLES)


def make_data(rng: random.Random, etype, when: dt.datetime) -> dict:
    data = {}
    for name, f in etype.fields.items():
        if name == "start":
            data[name] = when
        elif name == "end":
            data[name] = when + dt.timedelta(hours=2)
        elif f.type in ("number", "integer"):
            hi = f.max if f.max is not None else 100
            lo = f.min if f.min is not None else 0
            value = rng.uniform(lo, min(hi, lo + 10))
            data[name] = round(value) if f.type == "integer" else round(value, 1)
        elif f.type == "enum":
            data[name] = rng.choice(f.values)
        elif f.type == "boolean":
            data[name] = rng.random() < 0.3
        elif f.type == "string":
            data[name] = "x"
    if "hours" in data and "start" in data:
        data["end"] = data["start"] + dt.timedelta(hours=max(data["hours"], 0.1))
    return data


def make_events(ruleset, n: int, seed: int = 7):
    """Events at every rules-file organisation and at unknown stations below them."""
    rng = random.Random(seed)
    orgs = [o for o in ruleset.files if o.startswith("sx")]
    orgs += [f"{o}.station-{i:03d}" for o in orgs for i in range(3)]
    types = list(ruleset.event_types.values())
    weights = [6 if t.name.startswith(("pioneer", "volunteer")) else 2 for t in types]
    members = []
    for i in range(5000):
        members.append(
            (
                i,
                MemberFacts(
                    party_member=rng.random() < 0.4,
                    industry=rng.choice(INDUSTRIES),
                    level=rng.choice(["bee", "expert", "pioneer"]),
                    primary_org=rng.choice(orgs),
                    orgs=(rng.choice(orgs),),
                    tags=frozenset(rng.sample(TAGS, rng.randint(0, 2))),
                ),
            )
        )
    start = dt.datetime(2026, 11, 1, tzinfo=TZ)
    events = []
    for _ in range(n):
        etype = rng.choices(types, weights)[0]
        when = start + dt.timedelta(minutes=rng.randint(0, 60 * 24 * 28))
        member = rng.choice(members)
        event = EventFacts(etype.name, rng.choice(orgs), when, make_data(rng, etype, when))
        events.append((member, event))
    return events


def run(ruleset, events) -> tuple[float, int, int]:
    """Evaluate every event, storing counters per member; return (seconds, awards, points)."""
    counters: dict[int, dict] = {}
    awards = points = 0
    started = time.perf_counter()
    for (mid, member), event in events:
        mine = counters.get(mid)
        if mine is None:
            mine = counters[mid] = {}
        result = evaluate(ruleset, event, member, mine)
        add_counters(mine, result.counters)
        awards += len(result.awards)
        points += result.points
    return time.perf_counter() - started, awards, points


def floor(events) -> float:
    """No engine: one dict lookup, one expression and one counter update per event."""
    counters: dict = {}
    started = time.perf_counter()
    for (mid, _), event in events:
        hours = event.data.get("hours", 1)
        pts = 5 * min(hours, 8)
        key = (mid, event.type, event.occurred_at.date())
        counters[key] = counters.get(key, 0) + pts
    return time.perf_counter() - started


RULE_SHAPES = [
    "  - {{id: r{i}, name: 规则{i}, on: pioneer.shift, points: '{k} * min(event.data.hours, 8)',"
    " category: pioneer, caps: [{{per: day, points: {cap}}}]}}",
    "  - {{id: r{i}, name: 规则{i}, on: 'governance.*', when: 'member.party_member', points: {k},"
    " category: governance, caps: [{{per: day, count: 3}}]}}",
    "  - {{id: r{i}, name: 规则{i}, on: volunteer.hours, points: '{k} * event.data.hours',"
    " category: volunteer, verify: true, caps: [{{per: day, points: {cap}}}]}}",
    "  - {{id: r{i}, name: 规则{i}, on: pioneer.callout, when: 'context.hour >= 20', points: {k},"
    " category: pioneer, caps: [{{per: week, count: 5}}]}}",
    "  - {{id: r{i}, name: 规则{i}, on: emergency.task, points: '{k} * min(event.data.hours, 10)',"
    " category: pioneer, emergency: {{only: true}}, caps: [{{per: day, points: {cap}}}]}}",
]


def generate(directory: Path, n_orgs: int) -> None:
    """A province tree of n_orgs files × 20 rules, each with one example."""
    (directory / "event-types.yaml").write_text(
        (ROOT / "rules" / "event-types.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    codes = ["sx"] + [f"sx.c{c}" for c in range(11)]
    d = 0
    while len(codes) < n_orgs:
        city = codes[1 + d % 11]
        district = f"{city}.d{d}"
        codes.append(district)
        for s in range(8):
            if len(codes) < n_orgs:
                codes.append(f"{district}.s{s}")
        d += 1
    for n, code in enumerate(codes):
        lines = [f"org: {code}", f"name: 组织{n}", "rules:"]
        for i in range(20):
            lines.append(RULE_SHAPES[i % len(RULE_SHAPES)].format(i=i, k=1 + (n + i) % 5, cap=40))
        lines += [
            "examples:",
            "  - name: shift",
            "    event: {type: pioneer.shift, occurred_at: 2026-11-20T09:00:00,",
            "            data: {hours: 1, start: 2026-11-20T09:00:00, end: 2026-11-20T10:00:00}}",
            "    expect: {status: awarded}",
        ]
        (directory / f"{code}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def measure(label: str, ruleset, events, rounds: int) -> None:
    """Run the floor and the engine ``rounds`` times; print median and best of each."""
    gc.collect()
    gc.freeze()
    floors, runs = [], []
    for _ in range(rounds):
        floors.append(floor(events))
        seconds, awards, points = run(ruleset, events)
        runs.append(seconds)
    n = len(events)
    base = statistics.median(floors)
    print(f"  {'floor (no engine)':<22} median {n / base:>9,.0f} events/s")
    med, best = statistics.median(runs), min(runs)
    print(
        f"  {label:<22} median {n / med:>9,.0f} events/s  {med / n * 1e6:6.2f} µs/event "
        f"(best {n / best:,.0f}/s; {med / base:4.1f}× the floor)"
    )
    print(f"  {'':<22} {awards:,} awards, {points:,} points per round")
    gc.unfreeze()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    print(f"Python {sys.version.split()[0]}, one process, {args.events:,} events per run")
    started = time.perf_counter()
    shipped = load_ruleset(ROOT / "rules")
    load_shipped = time.perf_counter() - started
    assert shipped.ruleset is not None, [str(d) for d in shipped.errors]
    rs = shipped.ruleset
    print(
        f"shipped rules/: {len(rs.files)} files, {rs.rule_count} rules, "
        f"{shipped.examples} examples; load + check {load_shipped * 1000:.0f} ms"
    )
    measure("shipped rule set", rs, make_events(rs, args.events), args.rounds)

    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), args.orgs)
        loads = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            generated = load_ruleset(tmp)
            loads.append(time.perf_counter() - started)
        assert generated.ruleset is not None, [str(d) for d in generated.errors[:5]]
        grs = generated.ruleset
        print(
            f"generated: {len(grs.files)} files × 20 rules = {grs.rule_count} rules; "
            f"load + check (incl. {generated.examples} examples, "
            f"{len(generated.warnings)} warnings): median {statistics.median(loads):.2f} s, "
            f"best {min(loads):.2f} s (target < 5 s)"
        )
        measure("generated rule set", grs, make_events(grs, args.events), args.rounds)


if __name__ == "__main__":
    main()
