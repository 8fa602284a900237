"""Diagnostics: what ``rules check`` prints, each tied to a file, a line and a column."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .source import Pos


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding about a rules directory."""

    path: str
    line: int
    col: int
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        return f"{self.path}:{self.line}:{self.col}: {prefix}{self.message}"


class Reporter:
    """Collects diagnostics for one file; validation code calls ``error``/``warn`` with a Pos."""

    def __init__(self, path: str, sink: list[Diagnostic]):
        self.path = path
        self.sink = sink

    def error(self, pos: Pos, message: str) -> None:
        self.sink.append(Diagnostic(self.path, pos.line, pos.col, message))

    def warn(self, pos: Pos, message: str) -> None:
        self.sink.append(Diagnostic(self.path, pos.line, pos.col, message, Severity.WARNING))


class RulesError(Exception):
    """A rules directory was refused; ``diagnostics`` says everything that is wrong with it."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = [d for d in diagnostics if d.severity is Severity.ERROR]
        first = self.diagnostics[0] if self.diagnostics else None
        super().__init__(
            f"{len(self.diagnostics)} error(s) in rules; first: {first}"
            if first
            else "rules refused"
        )
