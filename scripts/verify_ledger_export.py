#!/usr/bin/env python3
"""Check a ledger export (``flask --app app ledger export -o FILE``) without Pioneer Points.

Python's standard library only, so an auditor can read every line of it. For each member, in
the file's order: the entries' hashes are recomputed from their fields (sha256 of the previous
entry's hash, a newline, and the fields as JSON with sorted keys, separators "," and ":",
non-ASCII characters as they are), each entry must link to the previous one's hash (the first
to ""), sequence numbers must run 1, 2, 3 ..., and the member line's head, sequence and balance
must equal the last entry's hash, the number of entries and the sum of their points.

    python3 scripts/verify_ledger_export.py ledger.jsonl

Prints a summary; names the first broken entry and exits 1 when anything does not hold.
"""

from __future__ import annotations

import hashlib
import json
import sys

FORMAT = "pioneer-ledger-export/1"


def entry_hash(prev_hash: str, fields: dict) -> str:
    text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256((prev_hash + "\n" + text).encode("utf-8")).hexdigest()


def verify(lines) -> tuple[dict, list[str]]:
    """Check an export's lines; return counts and the problems found (at most one per member)."""
    counts = {"members": 0, "entries": 0, "points": 0}
    problems: list[str] = []
    header = json.loads(next(lines))
    if header.get("format") != FORMAT:
        return counts, [f"line 1: not a {FORMAT} file"]
    prev, seq, balance, broken = "", 0, 0, False
    for number, line in enumerate(lines, start=2):
        item = json.loads(line)
        if "entry" in item:
            fields = item["fields"]
            seq += 1
            counts["entries"] += 1
            if broken:
                continue
            member, entry = fields["member_id"], item["entry"]
            where = f"line {number}: member {member} entry {entry} (seq {fields['seq']})"
            if fields["seq"] != seq:
                problems.append(f"{where}: sequence jumps from {seq - 1} to {fields['seq']}")
                broken = True
            elif item["prev_hash"] != prev:
                problems.append(f"{where}: does not link to the previous entry's hash")
                broken = True
            elif entry_hash(item["prev_hash"], fields) != item["hash"]:
                problems.append(f"{where}: its fields do not hash to its hash (edited?)")
                broken = True
            prev = item["hash"]
            balance += fields["points"]
            counts["points"] += fields["points"]
            continue
        counts["members"] += 1
        if not broken:
            where = f"line {number}: member {item['member']}"
            if (item["seq"], item["head"]) != (seq, prev):
                problems.append(f"{where}: its newest entry is missing or not the last one")
            elif item["balance"] != balance:
                problems.append(f"{where}: balance {item['balance']} != sum of entries {balance}")
        prev, seq, balance, broken = "", 0, 0, False
    return counts, problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[-3].strip(), file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        counts, problems = verify(iter(handle))
    for problem in problems:
        print(problem)
    state = "OK" if not problems else "BROKEN"
    print(f"ledger export {state}: {counts['members']} members, {counts['entries']} entries, "
          f"{counts['points']} points in all, {len(problems)} problem(s)")  # fmt: skip
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
