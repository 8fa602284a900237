"""The rules/ directory we ship: valid, warning-free, realistic, and accepted by schema.json."""

import json
from pathlib import Path

import jsonschema
import pytest

from app.engine import load_ruleset
from app.engine.source import load_yaml

RULES = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture(scope="module")
def result():
    return load_ruleset(RULES)


def test_the_shipped_rules_load_without_errors_or_warnings(result):
    assert result.ruleset is not None, [str(d) for d in result.errors]
    assert [str(d) for d in result.warnings] == []
    assert result.examples >= 30


def test_the_shipped_rules_cover_the_tree_the_issue_asks_for(result):
    files = result.ruleset.files
    cities = [org for org in files if org.startswith("sx.") and org.count(".") == 1]
    assert len(cities) >= 3
    assert {"ind.internet", "ind.transport", "ind.express", "ind.delivery"} <= set(files)
    assert any(org.count(".") == 2 for org in files if org.startswith("sx."))  # districts
    assert any(org.count(".") >= 3 for org in files if org.startswith("sx."))  # streets, stations
    names = {f.name for f in files.values()}
    assert "山西省" in names


def test_the_shipped_rules_cover_every_kind_of_work(result):
    rules = [r for f in result.ruleset.files.values() for r in f.own_rules]
    types = {t for r in rules for t in r.types}
    assert {"pioneer.shift", "pioneer.callout", "volunteer.hours", "emergency.task"} <= types
    assert {r.category.value for r in rules} >= {"pioneer", "governance", "volunteer"}
    tags_read = " ".join(r.when.source for r in rules if r.when is not None)
    for role in (
        "food_safety_supervisor",
        "civilisation_ambassador",
        "traffic_safety_officer",
        "grid_member",
        "building_head",
        "unit_head",
    ):
        assert role in tags_read, role
    assert any(r.verify for r in rules)
    assert any(r.emergency_only for r in rules) and any(r.multiplier for r in rules)
    levels = [lv.name for lv in result.ruleset.levels_for("sx")]
    assert levels == ["蜜蜂", "能手", "先锋", "头雁"]
    assert any(f.rewards for f in result.ruleset.files.values())


def _as_json(path: Path):
    return json.loads(json.dumps(load_yaml(path.read_text(encoding="utf-8")), default=str))


@pytest.mark.parametrize("path", sorted(RULES.glob("*.yaml")), ids=lambda p: p.name)
def test_schema_json_accepts_every_shipped_file(path):
    schema = json.loads((RULES / "schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(_as_json(path), schema)


def test_schema_json_refuses_an_unknown_key():
    schema = json.loads((RULES / "schema.json").read_text(encoding="utf-8"))
    bad = {"org": "sx", "name": "省", "rules": [{"id": "a", "pionts": 1}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
