import json
from pathlib import Path

from app.engine.format import json_schema

ROOT = Path(__file__).resolve().parent.parent


def test_rules_check_accepts_the_shipped_rules(runner):
    result = runner.invoke(args=["rules", "check", str(ROOT / "rules")])
    assert result.exit_code == 0, result.output
    assert "rules OK (version " in result.stdout
    assert "examples passed" in result.stdout


def test_rules_check_prints_path_line_column_and_fails(runner, tmp_path):
    (tmp_path / "event-types.yaml").write_text("event_types:\n  a.b: {name: A}\n")
    (tmp_path / "sx.yaml").write_text(
        "org: sx\nname: 省\nrules:\n  - {id: r, name: R, on: a.c, points: 1, category: other}\n"
    )
    result = runner.invoke(args=["rules", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert (
        f"{tmp_path}/sx.yaml:4:26: on: 'a.c' matches no declared event type "
        "(did you mean 'a.b'?)" in result.stderr
    )
    assert "rules refused: 1 error(s)" in result.stderr


def test_rules_check_strict_fails_on_warnings(runner, tmp_path):
    (tmp_path / "event-types.yaml").write_text("event_types:\n  a.b: {name: A}\n")
    (tmp_path / "sx.yaml").write_text(
        "org: sx\nname: 省\nrules:\n  - {id: r, name: R, on: a.b, points: 1, category: other}\n"
    )
    relaxed = runner.invoke(args=["rules", "check", str(tmp_path)])
    assert relaxed.exit_code == 0
    assert "warning: rule 'r' is not covered by any example" in relaxed.stderr
    strict = runner.invoke(args=["rules", "check", "--strict", str(tmp_path)])
    assert strict.exit_code == 1
    assert "--strict: 1 warning(s) count as errors" in strict.stderr


def test_rules_check_uses_rules_dir_from_config(tmp_path):
    from app import create_app

    app = create_app({"RULES_DIR": str(tmp_path / "missing")})
    result = app.test_cli_runner().invoke(args=["rules", "check"])
    assert result.exit_code == 1
    assert "rules directory not found" in result.stderr


def test_shipped_schema_json_is_current(runner):
    result = runner.invoke(args=["rules", "schema"])
    assert result.exit_code == 0
    shipped = json.loads((ROOT / "rules" / "schema.json").read_text(encoding="utf-8"))
    assert json.loads(result.stdout) == shipped == json_schema(), (
        "rules/schema.json is stale: run flask --app app rules schema -o rules/schema.json"
    )


def test_rules_schema_writes_a_file(runner, tmp_path):
    target = tmp_path / "schema.json"
    result = runner.invoke(args=["rules", "schema", "-o", str(target)])
    assert result.exit_code == 0
    assert json.loads(target.read_text(encoding="utf-8")) == json_schema()
