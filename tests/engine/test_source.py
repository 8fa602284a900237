import time

import pytest

from app.engine.source import MAX_FILE_BYTES, Pos, SourceError, YDict, YList, load_yaml


def test_positions_are_remembered_for_keys_values_and_items():
    doc = load_yaml("org: sx\nrules:\n  - id: a\n  - id: b\n")
    assert isinstance(doc, YDict)
    assert doc.key_pos["rules"] == Pos(2, 1)
    rules = doc["rules"]
    assert isinstance(rules, YList)
    assert rules.item_pos == [Pos(3, 5), Pos(4, 5)]
    assert rules[1].val_pos["id"] == Pos(4, 9)


def test_keys_stay_text_so_on_is_not_read_as_true():
    doc = load_yaml("on: pioneer.shift\nyes: 1\n")
    assert doc == {"on": "pioneer.shift", "yes": 1}


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("a: 1\nb: 2\na: 3\n", "duplicate key 'a' (first defined at line 1)", 3),
        ("base: &b {x: 1}\nother:\n  <<: *b\n", "merge keys (<<) are not supported", 3),
        ("a: !!python/object:os.system ls\n", "is not allowed", 1),
        ("a: !custom 1\n", "is not allowed", 1),
        ("a: [1, 2\n", "YAML syntax error", 2),
        ("? [a, b]\n: 1\n", "mapping keys must be plain scalars", 1),
    ],
)
def test_unsafe_or_ambiguous_yaml_is_refused_with_a_line(text, message, line):
    with pytest.raises(SourceError) as exc:
        load_yaml(text)
    assert message in exc.value.message
    assert exc.value.pos.line == line


def test_billion_laughs_is_refused_quickly():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    started = time.perf_counter()
    with pytest.raises(SourceError) as exc:
        load_yaml("\n".join(lines))
    assert "more than" in exc.value.message and "nodes" in exc.value.message
    assert time.perf_counter() - started < 5  # refused, not expanded to 10**10 nodes


def test_deep_nesting_is_refused():
    with pytest.raises(SourceError, match="nested more than"):
        load_yaml("a: " + "[" * 100 + "]" * 100)


def test_oversized_file_is_refused():
    with pytest.raises(SourceError, match="limit is"):
        load_yaml("a: " + "x" * MAX_FILE_BYTES)


def test_empty_document_is_none():
    assert load_yaml("") is None
    assert load_yaml("# only a comment\n") is None


def test_typed_plain_scalars_still_resolve_after_the_fast_path():
    doc = load_yaml(
        "a: yes\nb: Off\nc: null\nd: ~\ne: 1.5\nf: -3\ng: 2026-11-30\nh: nothing\ni: .inf\n"
    )
    assert doc["a"] is True and doc["b"] is False
    assert doc["c"] is None and doc["d"] is None
    assert doc["e"] == 1.5 and doc["f"] == -3
    assert str(doc["g"]) == "2026-11-30"
    assert doc["h"] == "nothing"
    assert doc["i"] == float("inf")
