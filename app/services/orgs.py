"""Importing organisations: thousands of rows, idempotently, all or nothing."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import yaml
from sqlalchemy import insert, select, update

from ..errors import Invalid
from ..extensions import db
from ..models import Organisation, OrgKind

CODE = re.compile(r"[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)*")
KINDS = {k.value for k in OrgKind}


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


def parse_rows(text: str, filename: str) -> list[tuple[int, dict]]:
    """Rows of a CSV (header: code,name,kind) or YAML (a list, or {organisations: [...]})
    file, each with its line number."""
    if filename.endswith((".yaml", ".yml")):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise Invalid(f"{filename}: not valid YAML: {exc}") from None
        if isinstance(data, dict):
            data = data.get("organisations")
        if not isinstance(data, list):
            raise Invalid(f"{filename}: expected a list of organisations")
        return [(i + 1, row) for i, row in enumerate(data)]
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"code", "name"} <= set(reader.fieldnames):
        raise Invalid(f"{filename}:1: the header must name the columns code,name[,kind]")
    return [(reader.line_num, dict(row)) for row in reader]


def import_orgs(rows: list[tuple[int, dict]], filename: str = "input") -> ImportResult:
    """Create or update organisations by code. Every row is checked first; any error refuses
    the whole file. A code's parent must exist already or be in the same file."""
    errors = []
    clean: dict[str, dict] = {}
    for line, row in rows:
        if not isinstance(row, dict):
            errors.append(f"{filename}:{line}: expected code, name and kind")
            continue
        code = str(row.get("code") or "").strip()
        name = str(row.get("name") or "").strip()
        kind = str(row.get("kind") or OrgKind.OTHER).strip()
        if not CODE.fullmatch(code) or len(code) > 200:
            errors.append(f"{filename}:{line}: bad organisation code {code!r}")
        elif not name or len(name) > 200:
            errors.append(f"{filename}:{line}: {code} needs a name of 1 to 200 characters")
        elif kind not in KINDS:
            errors.append(f"{filename}:{line}: {code}: unknown kind {kind!r}")
        elif code in clean:
            errors.append(f"{filename}:{line}: {code} appears twice")
        else:
            clean[code] = {"code": code, "name": name, "kind": kind, "line": line}
    existing = {
        o.code: o
        for o in db.session.execute(select(Organisation.code, Organisation.name, Organisation.kind))
    }
    for code, row in clean.items():
        parent = Organisation.parent_of(code)
        if parent and parent not in clean and parent not in existing:
            errors.append(f"{filename}:{row['line']}: {code}: parent {parent} is unknown")
    if errors:
        raise Invalid(f"{len(errors)} error(s) in {filename}", {"errors": errors[:100]})
    result = ImportResult()
    new, changed = [], []
    for code, row in clean.items():
        values = {
            "code": code,
            "name": row["name"],
            "kind": row["kind"],
            "parent_code": Organisation.parent_of(code),
            "depth": code.count("."),
        }
        old = existing.get(code)
        if old is None:
            new.append(values)
        elif (old.name, old.kind) != (row["name"], row["kind"]):
            changed.append(values)
        else:
            result.unchanged += 1
    if new:
        db.session.execute(insert(Organisation), new)
    for values in changed:
        db.session.execute(
            update(Organisation)
            .where(Organisation.code == values["code"])
            .values(name=values["name"], kind=values["kind"])
        )
    result.created, result.updated = len(new), len(changed)
    return result
