"""Rules for a test: extra files (a pytest plugin, see tests/conftest.py: the shipped rules
directory copied, with the test's own files added, installed for the test and taken away after
it), and candidates that change one of the province's rules."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from app.services.rules import registry

from .conftest import ROOT


class RulesDir:
    def __init__(self, path):
        self.path = path

    def add(self, org: str, body: str) -> None:
        """Write ``rules/<org>.yaml`` (``org:`` and a name are added) and install the
        directory; fails the test if it does not load."""
        text = f"org: {org}\nname: 测试 {org}\n" + textwrap.dedent(body)
        (self.path / f"{org}.yaml").write_text(text, encoding="utf-8")
        self.install()

    def install(self):
        result = registry().reload(str(self.path))
        assert result.ruleset is not None, [str(d) for d in result.errors]
        return result.ruleset


@pytest.fixture
def rules_dir_extra(app_ctx, tmp_path) -> RulesDir:
    path = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", path)
    yield RulesDir(path)
    registry().reload(str(ROOT / "rules"))


SHIFT_POINTS = "points: 5 * min(event.data.hours, 8)"  # the province's shift rule, shipped
DOUBLED_SHIFTS = "points: 10 * min(event.data.hours, 8)"


def without_examples(text: str) -> str:
    """A rules file without its examples (a candidate's rules only: they expect the shipped
    points)."""
    return text[: text.index("\nexamples:")] + "\n" if "\nexamples:" in text else text


def province_file(old: str = SHIFT_POINTS, new: str = DOUBLED_SHIFTS) -> str:
    """The shipped province file (sx.yaml) with ``old`` replaced by ``new`` once, without its
    examples."""
    text = (ROOT / "rules" / "sx.yaml").read_text(encoding="utf-8")
    assert old in text
    return without_examples(text.replace(old, new, 1))


def changed_rules(dest: Path, old: str = SHIFT_POINTS, new: str = DOUBLED_SHIFTS) -> Path:
    """The shipped rules copied to ``dest`` with the province file as ``province_file`` gives,
    every file without its examples; ``dest``."""
    shutil.copytree(ROOT / "rules", dest)
    for path in dest.glob("*.yaml"):
        path.write_text(without_examples(path.read_text(encoding="utf-8")), encoding="utf-8")
    (dest / "sx.yaml").write_text(province_file(old, new), encoding="utf-8")
    return dest
