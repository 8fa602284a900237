"""The expression language of rules: a safe, fast subset of Python's expression syntax.

Why not a library: we measured the candidates on this machine (``scripts/bench/bench_expr.py``,
figures in docs/rules.md). simpleeval walks the AST on every call (~7-11 µs per expression),
the CEL bindings spend ~20 µs converting the context on each call, rule-engine and cel-python
take 300-400 µs. The engine's budget is ~20 µs per *event* (≥ 50,000 events/s), so expressions
are parsed once with ``ast.parse(mode="eval")``, checked against a whitelist, and compiled into
a tree of Python closures (~0.3-1 µs per expression). Nothing here calls ``eval``/``exec`` or
``getattr`` on rule text:

- names are only ``event``, ``member``, ``context`` and the literals true/false/null; their
  attributes are resolved at compile time against a fixed table (no attribute escape);
- calls are only to the functions in ``FUNCTIONS``; no subscripts, lambdas, comprehensions,
  f-strings, walrus, star-args or keyword arguments;
- arithmetic is on numbers only (no ``"x" * 10**9``), there is no ``**``, expressions are at
  most ``MAX_LENGTH`` characters and ``MAX_NODES`` nodes, so running time is bounded.

This module is the only place that knows the syntax; the rest of the engine sees ``Compiled``.
"""

from __future__ import annotations

import ast
import datetime as dt
import difflib
import operator
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from .functions import (
    FUNCTIONS,
    NUMBER,
    EvalError,
    format_number,
    is_num,
    need_num,
)

MAX_LENGTH = 1000
MAX_NODES = 200


class ExprError(Exception):
    """An expression that cannot be compiled; ``offset`` is the 0-based column in its text."""

    def __init__(self, message: str, offset: int = 0):
        super().__init__(message)
        self.message = message
        self.offset = offset


class Env:
    """What an expression reads: one event, its member, the local time and the emergency.

    Attributes are read straight from the engine's facts objects when an expression asks for
    them, so building an ``Env`` costs almost nothing.
    """

    __slots__ = ("data", "emergency", "event", "local", "member", "units")

    def __init__(self, event, data: dict, member, local: dt.datetime, emergency, units: dict):
        self.event = event  # EventFacts
        self.data = data  # the event's data with declared defaults filled in
        self.member = member  # MemberFacts
        self.local = local  # occurred_at in the deployment's time zone
        self.emergency = emergency  # EmergencyFacts or None
        self.units = units  # field name -> unit, for explanations


# The attributes an expression may read, with their meaning (for docs and suggestions).
ATTRIBUTES: dict[str, dict[str, str]] = {
    "event": {
        "type": "the event type, e.g. 'pioneer.shift'",
        "org": "code of the organisation where it happened",
        "partner": "code of the partner that reported it",
        "occurred_at": "local time as ISO text, e.g. '2026-11-20T09:00:00+08:00'",
        "data": "the event's data fields: event.data.hours",
    },
    "member": {
        "party_member": "true for a party member",
        "industry": "the member's industry, e.g. 'delivery'",
        "level": "the member's level id, e.g. 'bee'",
        "primary_org": "code of the member's primary organisation",
        "orgs": "codes of every organisation the member belongs to (primary first)",
        "tags": "the member's tags, e.g. ['food_safety_supervisor']",
    },
    "context": {
        "emergency": "true while an emergency is declared for the event's region",
        "emergency_kind": "kind of the declared emergency ('flood', ...) or ''",
        "weekday": "day of the week in local time, 1 = Monday ... 7 = Sunday",
        "hour": "hour of the day in local time, 0-23",
        "date": "local date as text, '2026-11-20'",
        "month": "local month, 1-12",
    },
}
_GETTERS: dict[tuple[str, str], Callable[[Env], object]] = {
    ("event", "type"): lambda env: env.event.type,
    ("event", "org"): lambda env: env.event.org,
    ("event", "partner"): lambda env: env.event.partner,
    ("event", "occurred_at"): lambda env: env.local.isoformat(),
    ("member", "party_member"): lambda env: env.member.party_member,
    ("member", "industry"): lambda env: env.member.industry or "",
    ("member", "level"): lambda env: env.member.level or "",
    ("member", "primary_org"): lambda env: env.member.primary_org or "",
    ("member", "orgs"): lambda env: env.member.orgs,
    ("member", "tags"): lambda env: env.member.tags,
    ("context", "emergency"): lambda env: env.emergency is not None,
    ("context", "emergency_kind"): lambda env: (env.emergency.kind or "") if env.emergency else "",
    ("context", "weekday"): lambda env: env.local.isoweekday(),
    ("context", "hour"): lambda env: env.local.hour,
    ("context", "date"): lambda env: env.local.date().isoformat(),
    ("context", "month"): lambda env: env.local.month,
}
_LITERALS = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}


def _constant(value):
    """A closure returning ``value``, marked so operators can use the value directly."""

    def fn(env):
        return value

    fn.const = value
    return fn


# Rendered formulas carry units as tokens ("3[[hours]]"); explain.render words them per language.
UNIT_TOKEN = "[[{}]]"


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled expression: call ``fn(env)`` for its value, ``render(env)`` to explain it."""

    source: str
    fn: Callable[[Env], object]
    render: Callable[[Env], str]
    data_fields: frozenset[str]
    constant: object = None
    is_constant: bool = False


_BINOPS = {
    ast.Add: ("+", 1, operator.add),
    ast.Sub: ("−", 1, operator.sub),
    ast.Mult: ("×", 2, operator.mul),
    ast.Div: ("÷", 2, operator.truediv),
    ast.FloorDiv: ("÷", 2, operator.floordiv),
    ast.Mod: ("mod", 2, operator.mod),
}
_CMPOPS = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.In: lambda a, b: _contains(b, a),
    ast.NotIn: lambda a, b: not _contains(b, a),
}


def _contains(container, item) -> bool:
    if not isinstance(container, list | tuple | str | frozenset | set):
        raise EvalError("'in' needs a list or text on its right")
    if isinstance(container, str) and not isinstance(item, str):
        raise EvalError("'in' text needs text on its left")
    return item in container


def compile_expr(source: str) -> Compiled:
    """Compile one expression or raise ``ExprError`` with the column of the problem."""
    if not isinstance(source, str) or not source.strip():
        raise ExprError("expression is empty")
    if len(source) > MAX_LENGTH:
        raise ExprError(f"expression is longer than {MAX_LENGTH} characters")
    text = source.strip()
    lead = len(source) - len(source.lstrip())
    try:
        with warnings.catch_warnings():  # e.g. "invalid decimal literal": we report our own
            warnings.simplefilter("ignore")
            tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"syntax error: {exc.msg}", lead + max((exc.offset or 1) - 1, 0)) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExprError("expression is nested too deeply") from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise ExprError(f"expression has {count} parts; the limit is {MAX_NODES}")
    compiler = _Compiler(lead)
    try:
        fn, plan, _ = compiler.node(tree.body)
    except RecursionError:
        raise ExprError("expression is nested too deeply") from None
    const = _constant_value(tree.body)
    return Compiled(
        source=source,
        fn=fn,
        render=_renderer(plan),
        data_fields=frozenset(compiler.fields),
        constant=const[1],
        is_constant=const[0],
    )


def _constant_value(node: ast.AST) -> tuple[bool, object]:
    if isinstance(node, ast.Constant) and is_num(node.value):
        return True, node.value
    return False, None


_ATOM = 9  # precedence of things that never need parentheses

# A render plan is (template, getters): the expression's text with "{}" where a value of the
# event goes. Plans are put together at compile time, so explaining an award costs one
# str.format call instead of a walk over the expression.
Plan = tuple[str, tuple[Callable[[Env], str], ...]]


def _literal(text: str) -> Plan:
    return text.replace("{", "{{").replace("}", "}}"), ()


def _value(getter: Callable[[Env], str]) -> Plan:
    return "{}", (getter,)


def _concat(*pieces: Plan | str) -> Plan:
    template, getters = "", ()
    for piece in pieces:
        if isinstance(piece, str):
            piece = _literal(piece)
        template += piece[0]
        getters += piece[1]
    return template, getters


def _wrap(plan: Plan) -> Plan:
    return _concat("(", plan, ")")


def _renderer(plan: Plan) -> Callable[[Env], str]:
    template, getters = plan
    if not getters:
        text = template.format()
        return lambda env: text
    if len(getters) == 1:
        (g,) = getters
        return lambda env: template.format(g(env))
    return lambda env: template.format(*[g(env) for g in getters])


def _shown(fn: Callable[[Env], object]) -> Plan:
    return _value(lambda env: format_number(fn(env)))


class _Compiler:
    def __init__(self, lead: int):
        self.lead = lead
        self.fields: set[str] = set()

    def fail(self, node: ast.AST, message: str):
        raise ExprError(message, self.lead + getattr(node, "col_offset", 0))

    # Each method returns (fn, plan, precedence).
    def node(self, node: ast.AST):
        method = getattr(self, "n_" + type(node).__name__, None)
        if method is None:
            self.fail(node, f"{_describe(node)} is not allowed in rules expressions")
        return method(node)

    def n_Constant(self, node: ast.Constant):
        value = node.value
        if isinstance(value, bool) or value is None or isinstance(value, int | float | str):
            if isinstance(value, str) and len(value) > 200:
                self.fail(node, "text literals are limited to 200 characters")
            text = repr(value) if isinstance(value, str) else format_number(value)
            return _constant(value), _literal(text), _ATOM
        self.fail(node, f"literal {value!r} is not allowed")

    def n_List(self, node: ast.List | ast.Tuple):
        parts = [self.node(e) for e in node.elts]
        fns = [p[0] for p in parts]

        def fn(env):
            return [f(env) for f in fns]

        items = []
        for i, p in enumerate(parts):
            items += [", ", p[1]] if i else [p[1]]
        return fn, _concat("[", *items, "]"), _ATOM

    n_Tuple = n_List  # noqa: N815 - named after the ast class

    def n_Name(self, node: ast.Name):
        if node.id in _LITERALS:
            value = _LITERALS[node.id]
            text = format_number(value)
            return _constant(value), _literal(text), _ATOM
        if node.id in ATTRIBUTES:
            self.fail(
                node,
                f"'{node.id}' alone is not a value; use e.g. {node.id}."
                f"{next(iter(ATTRIBUTES[node.id]))}",
            )
        self.fail(
            node,
            f"unknown name {node.id!r}{_suggest(node.id, [*ATTRIBUTES, 'true', 'false', 'null'])}",
        )

    def n_Attribute(self, node: ast.Attribute):
        path = []
        cur: ast.AST = node
        while isinstance(cur, ast.Attribute):
            path.append(cur.attr)
            cur = cur.value
        if not isinstance(cur, ast.Name) or cur.id not in ATTRIBUTES:
            self.fail(node, "only event.…, member.… and context.… can be read")
        path.append(cur.id)
        path.reverse()
        root, attr = path[0], path[1]
        if attr not in ATTRIBUTES[root]:
            self.fail(
                node,
                f"{root} has no attribute {attr!r}{_suggest(attr, ATTRIBUTES[root])}; "
                f"known: {', '.join(ATTRIBUTES[root])}",
            )
        if root == "event" and attr == "data":
            if len(path) != 3:
                self.fail(node, "read one data field: event.data.<field>")
            name = path[2]
            self.fields.add(name)

            def fn(env):
                return env.data.get(name)

            def show(env):
                unit = env.units.get(name)
                text = format_number(env.data.get(name))
                return text + UNIT_TOKEN.format(unit) if unit else text

            return fn, _value(show), _ATOM
        if len(path) != 2:
            self.fail(node, f"{root}.{attr} has no attributes")
        fn = _GETTERS[(root, attr)]
        return fn, _shown(fn), _ATOM

    def n_UnaryOp(self, node: ast.UnaryOp):
        f, r, _ = self.node(node.operand)
        if isinstance(node.op, ast.Not):
            return (lambda env: not f(env)), _concat("not ", r), 3
        if isinstance(node.op, ast.USub):

            def neg(env):
                v = f(env)
                need_num("'-'", v)
                return -v

            return neg, _concat("−", r), 8
        if isinstance(node.op, ast.UAdd):
            return f, r, 8
        self.fail(node, "operator ~ is not allowed")

    def n_BinOp(self, node: ast.BinOp):
        if type(node.op) not in _BINOPS:
            hint = " (there is no power operator)" if isinstance(node.op, ast.Pow) else ""
            self.fail(node, f"operator {type(node.op).__name__} is not allowed{hint}")
        symbol, prec, op = _BINOPS[type(node.op)]
        lf, lr, lp = self.node(node.left)
        rf, rr, rp = self.node(node.right)
        is_add = isinstance(node.op, ast.Add)
        is_div = isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod)

        right_const = getattr(rf, "const", None)
        if type(right_const) in NUMBER and not (is_div and right_const == 0):
            # the common `x * 5` shape: no call and no check for the constant side

            def fn(env):
                a = lf(env)
                if type(a) not in NUMBER:
                    raise EvalError(f"'{symbol}' needs numbers, got {a!r} and {right_const!r}")
                return op(a, right_const)

        else:

            def fn(env):
                a = lf(env)
                b = rf(env)
                if type(a) not in NUMBER or type(b) not in NUMBER:
                    if is_add and type(a) is str and type(b) is str:
                        return a + b
                    raise EvalError(f"'{symbol}' needs numbers, got {a!r} and {b!r}")
                if is_div and b == 0:
                    raise EvalError("division by zero")
                return op(a, b)

        left = _wrap(lr) if lp < prec else lr
        right = _wrap(rr) if rp <= prec and rp != _ATOM else rr
        return fn, _concat(left, f" {symbol} ", right), prec

    def n_BoolOp(self, node: ast.BoolOp):
        parts = [self.node(v) for v in node.values]
        fns = [p[0] for p in parts]
        if isinstance(node.op, ast.And):

            def fn(env):
                result = True
                for f in fns:
                    result = f(env)
                    if not result:
                        return result
                return result

            word, prec = " and ", 2
        else:

            def fn(env):
                result = False
                for f in fns:
                    result = f(env)
                    if result:
                        return result
                return result

            word, prec = " or ", 1

        items = []
        for i, p in enumerate(parts):
            items += [word, p[1]] if i else [p[1]]
        return fn, _concat(*items), prec

    def n_Compare(self, node: ast.Compare):
        left = self.node(node.left)
        rights = [self.node(c) for c in node.comparators]
        ops = []
        for op in node.ops:
            if type(op) not in _CMPOPS:
                self.fail(node, f"comparison {type(op).__name__} is not allowed; use == or !=")
            ops.append(_CMPOPS[type(op)])
        if len(ops) == 1:
            lf, rf, op = left[0], rights[0][0], ops[0]

            def fn(env):
                try:
                    return op(lf(env), rf(env))
                except TypeError:
                    raise EvalError("cannot compare these values") from None
        else:
            fns = [left[0]] + [r[0] for r in rights]

            def fn(env):
                values = [f(env) for f in fns]
                try:
                    return all(op(values[i], values[i + 1]) for i, op in enumerate(ops))
                except TypeError:
                    raise EvalError("cannot compare these values") from None

        return fn, _shown(fn), 4

    def n_IfExp(self, node: ast.IfExp):
        tf, tr, tp = self.node(node.body)
        cf, _, _ = self.node(node.test)
        ef, er, ep = self.node(node.orelse)

        def fn(env):
            return tf(env) if cf(env) else ef(env)

        # the explanation shows the branch taken
        show_true, show_false = _renderer(tr), _renderer(er)
        return fn, _value(lambda env: show_true(env) if cf(env) else show_false(env)), min(tp, ep)

    def n_Call(self, node: ast.Call):
        if not isinstance(node.func, ast.Name):
            self.fail(node, "only the built-in functions can be called")
        name = node.func.id
        if name not in FUNCTIONS:
            self.fail(
                node,
                f"unknown function {name!r}{_suggest(name, FUNCTIONS)}; "
                f"known: {', '.join(FUNCTIONS)}",
            )
        if node.keywords:
            self.fail(node, "keyword arguments are not allowed")
        func, lo, hi, _ = FUNCTIONS[name]
        if not lo <= len(node.args) <= hi:
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            self.fail(node, f"{name}() takes {want} argument(s), got {len(node.args)}")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.fail(arg, "*arguments are not allowed")
        parts = [self.node(a) for a in node.args]
        fns = [p[0] for p in parts]
        if len(fns) == 1:
            (a,) = fns

            def fn(env):
                return func(a(env))
        elif len(fns) == 2 and type(getattr(fns[1], "const", None)) in NUMBER:
            a, b_value = fns[0], fns[1].const

            def fn(env):
                return func(a(env), b_value)

        elif len(fns) == 2:
            a, b = fns

            def fn(env):
                return func(a(env), b(env))
        else:

            def fn(env):
                return func(*[f(env) for f in fns])

        items = []
        for i, p in enumerate(parts):
            items += [", ", p[1]] if i else [p[1]]
        return fn, _concat(f"{name}(", *items, ")"), _ATOM


def _describe(node: ast.AST) -> str:
    names = {
        "Subscript": "indexing with [ ]",
        "Lambda": "lambda",
        "ListComp": "a comprehension",
        "SetComp": "a comprehension",
        "DictComp": "a comprehension",
        "GeneratorExp": "a generator",
        "JoinedStr": "an f-string",
        "NamedExpr": "':='",
        "Dict": "a mapping literal",
        "Set": "a set literal",
        "Await": "await",
        "Yield": "yield",
        "Starred": "*",
        "Slice": "a slice",
    }
    return names.get(type(node).__name__, type(node).__name__)


def _suggest(word: str, choices) -> str:
    near = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {near[0]!r}?)" if near else ""
