"""Fixtures for engine tests: a tiny rules directory written per test."""

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from app.engine import EventFacts, MemberFacts, load_ruleset
from app.engine.periods import zone

TZ = zone("Asia/Shanghai")

EVENT_TYPES = """
event_types:
  duty.shift:
    name: 值守
    fields:
      hours: {type: number, min: 0, max: 24, required: true, unit: hours}
      post: {type: string, max_length: 20}
  duty.callout:
    name: 出勤
    fields:
      hours: {type: number, min: 0, max: 24, required: true, unit: hours}
      urgent: {type: boolean, default: false}
  task.report:
    name: 上报
    fields:
      severity: {type: enum, values: [low, high], required: true}
  volunteer.hours:
    name: 志愿
    span: true
    fields:
      hours: {type: number, min: 0, max: 24, required: true, unit: hours}
      start: {type: datetime, required: true}
      end: {type: datetime, required: true}
"""


class RulesDir:
    """Writes rules files into a temporary directory and loads them."""

    def __init__(self, path: Path):
        self.path = path
        self.write("event-types.yaml", EVENT_TYPES)

    def write(self, name: str, text: str) -> Path:
        target = self.path / name
        target.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return target

    def org(self, code: str, body: str = "", name: str = "组织") -> Path:
        return self.write(f"{code}.yaml", f"org: {code}\nname: {name}\n" + textwrap.dedent(body))

    def load(self):
        return load_ruleset(self.path)

    def ruleset(self):
        result = self.load()
        assert result.ruleset is not None, [str(d) for d in result.diagnostics]
        return result.ruleset

    def messages(self) -> list[str]:
        return [str(d) for d in self.load().diagnostics]


@pytest.fixture
def rules_dir(tmp_path) -> RulesDir:
    return RulesDir(tmp_path)


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TZ)


def shift(org="sx", hours=3, when=None, type_="duty.shift", **data) -> EventFacts:
    payload = {"hours": hours, **data} if type_.startswith(("duty", "volunteer")) else data
    return EventFacts(type_, org, when or at(2026, 11, 20, 9), payload)


MEMBER = MemberFacts()
