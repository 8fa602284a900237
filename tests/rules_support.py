"""Extra rules files for a test (a pytest plugin, see tests/conftest.py): the shipped rules
directory copied, with the test's own files added, installed for the test and taken away
after it."""

from __future__ import annotations

import shutil
import textwrap

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
