"""Load YAML safely into plain Python values that remember where they came from.

Rules files are written by people, so every error must point at a line and a column. PyYAML's
composer gives us a node graph with marks; we turn it into ``YDict``/``YList``/scalars ourselves,
which lets us refuse duplicate keys, merge keys and tags, and bound alias expansion (a
"billion laughs" document is refused after ``MAX_NODES`` nodes instead of exhausting memory).
No Python object is ever constructed from YAML tags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import yaml

try:  # libyaml makes composing ~10x faster; the pure-Python composer is the fallback
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _BaseLoader

# Plain scalars that YAML 1.1 may read as something other than text: those starting with one
# of these characters (numbers, .inf/.nan, ~, timestamps, '<<', '='), and these words.
_MAYBE_TYPED = set("0123456789+-.~<=")
_TYPED_WORDS = {
    *(w for base in ("yes", "no", "true", "false", "on", "off", "null")
      for w in (base, base.capitalize(), base.upper())),
}  # fmt: skip


class _Loader(_BaseLoader):
    """The safe loader with a fast path for the most common scalar: plain text.

    PyYAML resolves every plain scalar against a list of regular expressions in Python;
    skipping that for scalars that cannot be anything but text halves load time for
    thousands of rules files. Anything else goes through the normal resolver.
    """

    def resolve(self, kind, value, implicit):
        if (
            kind is yaml.ScalarNode
            and implicit[0]
            and value
            and value[0] not in _MAYBE_TYPED
            and value not in _TYPED_WORDS
        ):
            return _STR
        return super().resolve(kind, value, implicit)


MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 100_000
MAX_DEPTH = 64

_STR = "tag:yaml.org,2002:str"
_SCALAR_TAGS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}
_constructor = yaml.constructor.SafeConstructor()


class Pos(NamedTuple):
    """A 1-based line and column in a source file."""

    line: int
    col: int


class YDict(dict):
    """A mapping from YAML that remembers its own position and each key's and value's."""

    __slots__ = ("key_pos", "pos", "val_pos")

    def __init__(self, pos: Pos):
        super().__init__()
        self.pos = pos
        self.key_pos: dict[str, Pos] = {}
        self.val_pos: dict[str, Pos] = {}


class YList(list):
    """A sequence from YAML that remembers its own position and each item's."""

    __slots__ = ("item_pos", "pos")

    def __init__(self, pos: Pos):
        super().__init__()
        self.pos = pos
        self.item_pos: list[Pos] = []


class SourceError(Exception):
    """A document that cannot be read as YAML at all (syntax, size, aliases, tags)."""

    def __init__(self, message: str, pos: Pos):
        super().__init__(message)
        self.message = message
        self.pos = pos


@dataclass(slots=True)
class _Budget:
    nodes: int = 0


def _pos(node: yaml.Node) -> Pos:
    return Pos(node.start_mark.line + 1, node.start_mark.column + 1)


def load_yaml(text: str | bytes) -> object:
    """Parse one YAML document into ``YDict``/``YList``/scalars, raising ``SourceError``.

    An empty document gives ``None``. Duplicate keys, merge keys (``<<``), explicit tags and
    non-scalar keys are refused: each would make a rules file mean something other than what
    it looks like.
    """
    size = len(text.encode("utf-8") if isinstance(text, str) else text)
    if size > MAX_FILE_BYTES:
        raise SourceError(f"file is {size} bytes; the limit is {MAX_FILE_BYTES}", Pos(1, 1))
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Pos(mark.line + 1, mark.column + 1) if mark else Pos(1, 1)
        raise SourceError(f"YAML syntax error: {exc.problem or exc.context}", pos) from None
    except yaml.YAMLError as exc:
        raise SourceError(f"YAML error: {exc}", Pos(1, 1)) from None
    except UnicodeDecodeError:
        raise SourceError("file is not valid UTF-8", Pos(1, 1)) from None
    if node is None:
        return None
    return _convert(node, _Budget(), 0)


def _convert(node: yaml.Node, budget: _Budget, depth: int) -> object:
    budget.nodes += 1
    if budget.nodes > MAX_NODES:
        raise SourceError(
            f"document expands to more than {MAX_NODES} nodes (aliases nested too deeply?)",
            _pos(node),
        )
    if depth > MAX_DEPTH:
        raise SourceError(f"document is nested more than {MAX_DEPTH} levels deep", _pos(node))
    if isinstance(node, yaml.ScalarNode):
        if node.tag == _STR:
            return node.value
        if node.tag not in _SCALAR_TAGS:
            raise SourceError(f"YAML tag {node.tag!r} is not allowed", _pos(node))
        try:
            return _constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            raise SourceError(f"bad scalar {node.value!r}: {exc}", _pos(node)) from None
    if isinstance(node, yaml.SequenceNode):
        if node.tag != "tag:yaml.org,2002:seq":
            raise SourceError(f"YAML tag {node.tag!r} is not allowed", _pos(node))
        out = YList(_pos(node))
        for item in node.value:
            out.append(_convert(item, budget, depth + 1))
            mark = item.start_mark
            out.item_pos.append(Pos(mark.line + 1, mark.column + 1))
        return out
    if node.tag != "tag:yaml.org,2002:map":
        raise SourceError(f"YAML tag {node.tag!r} is not allowed", _pos(node))
    out = YDict(_pos(node))
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise SourceError("merge keys (<<) are not supported", _pos(key_node))
        if not isinstance(key_node, yaml.ScalarNode):
            raise SourceError("mapping keys must be plain scalars", _pos(key_node))
        # Keys are always the text as written: YAML 1.1 would read `on:` as the boolean true.
        key = key_node.value
        if key in out:
            first = out.key_pos[key]
            raise SourceError(
                f"duplicate key {key!r} (first defined at line {first.line})", _pos(key_node)
            )
        mark = key_node.start_mark
        out.key_pos[key] = Pos(mark.line + 1, mark.column + 1)
        mark = value_node.start_mark
        out.val_pos[key] = Pos(mark.line + 1, mark.column + 1)
        out[key] = _convert(value_node, budget, depth + 1)
    return out
