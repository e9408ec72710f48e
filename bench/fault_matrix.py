"""The publishing and recall fault matrices of docs/RELIABILITY.md, from the tests' tables.

    python bench/fault_matrix.py            # print the Markdown tables
    python bench/fault_matrix.py --write    # put them into docs/RELIABILITY.md (between markers)
    python bench/fault_matrix.py --run      # also run the matrix tests and report their result

The tables live in tests/reliability/fault_table.py; tests/reliability/test_fault_matrix.py
(publishing) and tests/reliability/test_recall_matrix.py (recall) assert every cell and
check that the document shows exactly these tables, each between its own markers. Last
line: JSON with the number of cells per outcome of each (and, with --run, the tests'
pass/fail counts).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "reliability"))

from fault_table import (  # noqa: E402
    MARK_BEGIN,
    MARK_END,
    RECALL_BEGIN,
    RECALL_END,
    cells,
    markdown,
    recall_cells,
    recall_markdown,
)

DOC = ROOT / "docs" / "RELIABILITY.md"
# Each table: its markers and what renders it.
REGIONS = ((MARK_BEGIN, MARK_END, markdown), (RECALL_BEGIN, RECALL_END, recall_markdown))
TESTS = ("tests/reliability/test_fault_matrix.py", "tests/reliability/test_recall_matrix.py")


def write(doc: Path = DOC) -> None:
    text = doc.read_text(encoding="utf-8")
    for begin, finish, render in REGIONS:
        if begin not in text or finish not in text:
            raise SystemExit(f"{doc}: the markers {begin!r} … {finish!r} are missing; "
                             "put them where the table belongs")
        start, end = text.index(begin), text.index(finish) + len(finish)
        text = text[:start] + render() + text[end:]
    doc.write_text(text, encoding="utf-8")


def run_test() -> dict[str, int]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
        cwd=ROOT, capture_output=True, text=True)
    tail = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    print(tail, file=sys.stderr)
    return {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|xfailed|xpassed|error)",
                                                   tail)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update docs/RELIABILITY.md")
    parser.add_argument("--run", action="store_true", help="run the matrix tests too")
    args = parser.parse_args()
    if args.write:
        write()
    else:
        print(markdown())
        print()
        print(recall_markdown())
    figures: dict[str, object] = {
        "cells": dict(collections.Counter(str(code) for _, _, code in cells())),
        "recall_cells": dict(collections.Counter(str(code) for _, _, code in recall_cells()))}
    if args.run:
        figures["test"] = run_test()
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
