"""Read a rules directory into a ``RuleSet``, all or nothing.

Order of work: read every file (YAML, structure), then the event types, then the organisations'
files from the root down (a file's parent must be resolved before it can inherit), then the
cross-references (rewards naming levels and badges), then the examples and the warnings
(``checks.py``). Any error anywhere and no ``RuleSet`` is returned: a running service keeps its
last good one.
"""

from __future__ import annotations

import difflib
import gc
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from .catalogue import check_references, load_badges, load_expiry, load_levels, load_rewards
from .checks import run_checks
from .diagnostics import Diagnostic, Reporter, Severity
from .events import convert_field
from .expr import Compiled, ExprError, compile_expr, format_number
from .format import EVENT_TYPES_FILE, EVENT_TYPES_FILENAME, RULES_FILE
from .model import (
    Cap,
    Category,
    EventType,
    Example,
    FieldSpec,
    Per,
    Rule,
    RulesFile,
    Where,
    pool_bucket,
)
from .periods import DEFAULT_TIMEZONE, zone
from .ruleset import RuleSet, ancestors, match_event_types
from .source import Pos, SourceError, YDict, load_yaml
from .spec import INVALID

MAX_FILES = 20_000


@dataclass
class LoadResult:
    """What loading a directory gave: the rule set (None when refused) and every finding."""

    ruleset: RuleSet | None
    diagnostics: list[Diagnostic]
    files: int = 0
    examples: int = 0

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]


@dataclass
class _Source:
    path: str  # as shown in diagnostics
    name: str  # file name
    data: YDict
    rep: Reporter


@dataclass
class _Build:
    """Working state of one load."""

    diagnostics: list[Diagnostic]
    event_types: dict[str, EventType] = field(default_factory=dict)
    compiled: dict[str, Compiled | ExprError] = field(default_factory=dict)

    def compile(self, text: str) -> Compiled:
        found = self.compiled.get(text)
        if found is None:
            try:
                found = compile_expr(text)
            except ExprError as exc:
                found = exc
            self.compiled[text] = found
        if isinstance(found, ExprError):
            raise found
        return found


def load_ruleset(directory: str | os.PathLike, timezone: str = DEFAULT_TIMEZONE) -> LoadResult:
    """Load and check every ``*.yaml`` file of ``directory`` (not recursive)."""
    # Loading allocates a million small objects for a large tree and frees none of them until
    # it ends; the cyclic garbage collector would rescan them all over and over.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(directory, timezone)
    finally:
        if was_enabled:
            gc.enable()


def _load(directory: str | os.PathLike, timezone: str) -> LoadResult:
    diags: list[Diagnostic] = []
    root = Path(directory)
    shown = str(directory)
    try:
        tz = zone(timezone)
    except ValueError as exc:
        diags.append(Diagnostic(shown, 1, 1, str(exc)))
        return LoadResult(None, diags)
    if not root.is_dir():
        diags.append(Diagnostic(shown, 1, 1, "rules directory not found"))
        return LoadResult(None, diags)
    paths = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if len(paths) > MAX_FILES:
        diags.append(Diagnostic(shown, 1, 1, f"more than {MAX_FILES} rules files"))
        return LoadResult(None, diags)
    digest = hashlib.sha256()
    sources: list[_Source] = []
    for p in paths:
        display = os.path.join(shown, p.name)
        rep = Reporter(display, diags)
        raw = p.read_bytes()
        digest.update(p.name.encode() + b"\0" + raw + b"\0")
        try:
            data = load_yaml(raw.decode("utf-8"))
        except UnicodeDecodeError:
            rep.error(Pos(1, 1), "file is not valid UTF-8")
            continue
        except SourceError as exc:
            rep.error(exc.pos, exc.message)
            continue
        if not isinstance(data, YDict):
            rep.error(Pos(1, 1), "a rules file must be a mapping (org:, name:, rules: ...)")
            continue
        sources.append(_Source(display, p.name, data, rep))
    build = _Build(diags)
    types_src = next((s for s in sources if s.name == EVENT_TYPES_FILENAME), None)
    if types_src is None and not any(p.name == EVENT_TYPES_FILENAME for p in paths):
        diags.append(
            Diagnostic(
                os.path.join(shown, EVENT_TYPES_FILENAME), 1, 1, "the event types file is missing"
            )
        )
    elif types_src is not None:
        _load_event_types(types_src, build)
    org_sources = [s for s in sources if s.name != EVENT_TYPES_FILENAME]
    files, chains = _load_org_files(org_sources, build)
    ruleset = RuleSet(
        version=digest.hexdigest()[:12],
        timezone=timezone,
        tz=tz,
        event_types=build.event_types,
        files=files,
        chains=chains,
    )
    check_references(ruleset, diags)
    examples = 0
    if not any(d.severity is Severity.ERROR for d in diags):
        examples = run_checks(ruleset, diags)
    ok = not any(d.severity is Severity.ERROR for d in diags)
    return LoadResult(ruleset if ok else None, diags, files=len(paths), examples=examples)


# --- event types -------------------------------------------------------------------------------


def _load_event_types(src: _Source, build: _Build) -> None:
    data = EVENT_TYPES_FILE.check(src.data, src.data.pos, src.rep, "")
    if data is INVALID or "event_types" not in data:
        return
    raw_types = src.data.get("event_types")
    for name, spec in data["event_types"].items():
        pos = raw_types.key_pos.get(name, src.data.pos)
        fields = {}
        raw_fields = spec.get("fields", {})
        for fname, f in raw_fields.items():
            fpos = raw_types[name]["fields"].key_pos.get(fname, pos)
            fs = _field_spec(fname, f, fpos, src.rep)
            if fs is not None:
                fields[fname] = fs
        span = bool(spec.get("span", False))
        if span:
            for needed in ("start", "end"):
                f = fields.get(needed)
                if f is None or f.type != "datetime" or not f.required:
                    src.rep.error(
                        pos,
                        f"event type {name} has span: true, so it must declare "
                        f"a required datetime field {needed!r}",
                    )
        build.event_types[name] = EventType(
            name=name,
            title=spec.get("name", name),
            title_en=spec.get("name_en", ""),
            description=spec.get("description", ""),
            fields=fields,
            span=span,
            where=Where(src.path, pos.line, pos.col),
            defaults={k: f.default for k, f in fields.items() if f.default is not None},
            units={k: f.unit for k, f in fields.items() if f.unit},
        )


def _field_spec(name: str, f: dict, pos: Pos, rep: Reporter) -> FieldSpec | None:
    kind = f["type"]
    numeric = kind in ("number", "integer")
    for key, allowed in (
        ("min", numeric),
        ("max", numeric),
        ("unit", numeric),
        ("max_length", kind == "string"),
        ("values", kind == "enum"),
    ):
        if key in f and not allowed:
            rep.error(f.key_pos[key], f"field {name}: {key!r} does not apply to type {kind}")
            return None
    if kind == "enum" and "values" not in f:
        rep.error(pos, f"field {name}: an enum needs 'values'")
        return None
    if numeric and "min" in f and "max" in f and f["min"] > f["max"]:
        rep.error(f.key_pos["max"], f"field {name}: max {f['max']:g} is below min {f['min']:g}")
        return None
    spec = FieldSpec(
        name=name,
        type=kind,
        required=f.get("required", False),
        min=f.get("min"),
        max=f.get("max"),
        max_length=f.get("max_length"),
        values=tuple(f.get("values", ())),
        unit=f.get("unit"),
        default=f.get("default"),
        description=f.get("description", ""),
    )
    if "default" in f:
        try:
            convert_field(spec, f["default"], zone(DEFAULT_TIMEZONE))
        except ValueError as exc:
            rep.error(f.key_pos["default"], f"field {name}: default {exc}")
            return None
    return spec


# --- organisations' files ----------------------------------------------------------------------


def _load_org_files(sources: list[_Source], build: _Build):
    checked: dict[str, tuple[_Source, YDict]] = {}
    for src in sources:
        data = RULES_FILE.check(src.data, src.data.pos, src.rep, "")
        if data is INVALID or "org" not in data:
            continue
        org = data["org"]
        stem = src.name.rsplit(".", 1)[0]
        if org != stem:
            src.rep.error(
                data.val_pos["org"],
                f"org {org!r} does not match the file name {src.name!r} (expected org: {stem})",
            )
            continue
        if org in checked:
            src.rep.error(
                data.val_pos["org"], f"org {org!r} also has the file {checked[org][0].path}"
            )
            continue
        checked[org] = (src, data)
    files: dict[str, RulesFile] = {}
    chains: dict[str, tuple[Rule, ...]] = {}
    # parents before children: a dotted code is longer than its ancestors'
    for org in sorted(checked, key=lambda c: (c.count("."), c)):
        src, data = checked[org]
        parent = next((a for a in ancestors(org)[1:] if a in chains), None)
        parent_chain = chains[parent] if parent else ()
        own, disabled = _load_rules(src, data, org, parent_chain, build)
        replaced = {r.id for r in own} | disabled
        chains[org] = own + tuple(r for r in parent_chain if r.id not in replaced)
        files[org] = RulesFile(
            org=org,
            name=data["name"],
            name_en=data.get("name_en", ""),
            path=src.path,
            own_rules=own,
            disabled=frozenset(disabled),
            levels=load_levels(src, data, org),
            badges=load_badges(src, data, org, build),
            rewards=load_rewards(src, data, org),
            expiry=load_expiry(src, data),
            examples=tuple(
                Example(e.get("name", ""), e, _where(src, e.pos)) for e in data.get("examples", ())
            ),
        )
    return files, chains


def _where(src: _Source, pos: Pos) -> Where:
    return Where(src.path, pos.line, pos.col)


def _load_rules(src, data, org, parent_chain, build) -> tuple[tuple[Rule, ...], set[str]]:
    inherited = {r.id: r for r in parent_chain}
    own: list[Rule] = []
    disabled: set[str] = set()
    seen: dict[str, Pos] = {}
    for raw in data.get("rules", ()):
        rid = raw.get("id")
        if rid is None:
            continue
        id_pos = raw.val_pos["id"]
        if rid in seen:
            src.rep.error(id_pos, f"duplicate rule id {rid!r} (first at line {seen[rid].line})")
            continue
        seen[rid] = id_pos
        base = inherited.get(rid)
        if raw.get("disabled"):
            if base is None:
                src.rep.error(
                    id_pos,
                    f"rule {rid!r} is disabled, but no organisation above "
                    f"{org} has a rule with that id",
                )
            disabled.add(rid)
            continue
        rule = _build_rule(src, raw, org, base, build)
        if rule is not None:
            own.append(rule)
    return tuple(own), disabled


def _build_rule(
    src: _Source, raw: YDict, org: str, base: Rule | None, build: _Build
) -> Rule | None:
    rep = src.rep
    rid = raw["id"]
    if base is None:
        missing = [k for k in ("name", "on", "points", "category") if k not in raw]
        if missing:
            rep.error(
                raw.pos,
                f"rule {rid!r} is missing {', '.join(map(repr, missing))} "
                "(only a rule that overrides an inherited id may leave keys out)",
            )
            return None
    ok = True
    key = base.key if base else f"{org}:{rid}"

    if "on" in raw:
        on = (raw["on"],) if isinstance(raw["on"], str) else tuple(raw["on"])
        types = _resolve_on(on, raw.val_pos["on"], rep, build)
        ok = ok and types is not None
    else:
        on, types = base.on, base.types

    def expression(name: str) -> Compiled | None:
        nonlocal ok
        value = raw[name]
        if isinstance(value, int):
            return build.compile(str(value))
        try:
            return build.compile(value)
        except ExprError as exc:
            pos = raw.val_pos[name]
            rep.error(Pos(pos.line, pos.col + exc.offset), f"{name}: {exc.message}")
            ok = False
            return None

    when = expression("when") if "when" in raw else (base.when if base else None)
    points = expression("points") if "points" in raw else base.points
    if not ok:
        return None
    if types:
        for name, compiled in (("when", when), ("points", points)):
            if compiled is None:
                continue
            for fname in sorted(compiled.data_fields):
                lacking = sorted(t for t in types if fname not in build.event_types[t].fields)
                if lacking:
                    pos = raw.val_pos.get(name) or raw.val_pos.get("on") or raw.pos
                    rep.error(
                        pos,
                        f"{name} reads event.data.{fname}, which "
                        f"{', '.join(lacking)} do{'es' if len(lacking) == 1 else ''} not "
                        "declare",
                    )
                    ok = False
    caps = _caps(raw, key, org, rep) if "caps" in raw else (base.caps if base else ())
    if caps is None:
        return None
    active_from, active_until = (base.active_from, base.active_until) if base else (None, None)
    if "active" in raw:  # an override changes the dates it gives and inherits the other
        window = raw["active"]
        active_from = window.get("from", active_from)
        active_until = window.get("until", active_until)
        if active_from and active_until and active_from > active_until:
            rep.error(
                raw.val_pos["active"],
                f"active window is inverted: from {active_from} is after until {active_until}",
            )
            ok = False
    multiplier = base.multiplier if base else None
    emergency_only = base.emergency_only if base else False
    if "emergency" in raw:  # likewise key by key
        multiplier = raw["emergency"].get("multiplier", multiplier)
        emergency_only = raw["emergency"].get("only", emergency_only)
    if not ok or types is None:
        return None
    return Rule(
        key=key,
        id=rid,
        org=org,
        name=raw.get("name", base.name if base else rid),
        name_en=raw.get("name_en", base.name_en if base else ""),
        on=on,
        types=types,
        when=when,
        points=points,
        category=Category(raw["category"]) if "category" in raw else base.category,
        caps=caps,
        active_from=active_from,
        active_until=active_until,
        verify=raw.get("verify", base.verify if base else False),
        multiplier=multiplier,
        emergency_only=emergency_only,
        stop=raw.get("stop", base.stop if base else False),
        where=_where(src, raw.pos),
        overrides=base.org if base else None,
    )


def _resolve_on(on: tuple[str, ...], pos: Pos, rep: Reporter, build: _Build) -> frozenset | None:
    declared = build.event_types
    types: set[str] = set()
    ok = True
    for pattern in on:
        found = match_event_types(pattern, declared)
        if not found:
            near = difflib.get_close_matches(pattern, list(declared), n=1)
            tip = f" (did you mean {near[0]!r}?)" if near else ""
            rep.error(pos, f"on: {pattern!r} matches no declared event type{tip}")
            ok = False
        types |= found
    return frozenset(types) if ok else None


def _caps(raw: YDict, key: str, org: str, rep: Reporter) -> tuple[Cap, ...] | None:
    caps = []
    seen = set()
    for c in raw["caps"]:
        per = Per(c["per"])
        kind = "points" if "points" in c else "count"
        bucket = pool_bucket(org, c["pool"]) if "pool" in c else key
        if (bucket, per, kind) in seen:
            rep.error(raw.val_pos["caps"], f"two {per.value} {kind} caps on the same counter")
            return None
        seen.add((bucket, per, kind))
        caps.append(Cap(per, c.get("points"), c.get("count"), bucket, c.get("pool")))
    return tuple(caps)


def describe(result: LoadResult) -> str:
    """The one-line summary ``rules check`` prints when a directory is accepted."""
    rs = result.ruleset
    if rs is None:
        return f"rules refused: {len(result.errors)} error(s)"
    counts = {
        "files": result.files,
        "organisations": len(rs.files),
        "rules": rs.rule_count,
        "event types": len(rs.event_types),
        "badges": sum(len(f.badges) for f in rs.files.values()),
        "rewards": sum(len(f.rewards) for f in rs.files.values()),
        "examples passed": result.examples,
    }
    text = ", ".join(f"{format_number(v)} {k}" for k, v in counts.items())
    warn = len(result.warnings)
    return f"rules OK (version {rs.version}): {text}" + (f"; {warn} warning(s)" if warn else "")
