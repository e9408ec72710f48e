"""The fault matrix of docs/RELIABILITY.md, from the table the test asserts.

    python bench/fault_matrix.py            # print the Markdown table
    python bench/fault_matrix.py --write    # put it into docs/RELIABILITY.md (between markers)
    python bench/fault_matrix.py --run      # also run the matrix test and report its result

The table lives in tests/reliability/fault_table.py; tests/reliability/test_fault_matrix.py
asserts every cell and checks that the document shows exactly this table. Last line: JSON
with the number of cells per outcome (and, with --run, the test's pass/fail counts).
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

from fault_table import MARK_BEGIN, MARK_END, cells, markdown  # noqa: E402

DOC = ROOT / "docs" / "RELIABILITY.md"


def write(doc: Path = DOC) -> None:
    text = doc.read_text(encoding="utf-8")
    if MARK_BEGIN not in text or MARK_END not in text:
        raise SystemExit(f"{doc}: the markers {MARK_BEGIN!r} … {MARK_END!r} are missing; "
                         "put them where the table belongs")
    start, end = text.index(MARK_BEGIN), text.index(MARK_END) + len(MARK_END)
    doc.write_text(text[:start] + markdown() + text[end:], encoding="utf-8")


def run_test() -> dict[str, int]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/reliability/test_fault_matrix.py"], cwd=ROOT, capture_output=True, text=True)
    tail = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    print(tail, file=sys.stderr)
    return {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|xfailed|xpassed|error)",
                                                   tail)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update docs/RELIABILITY.md")
    parser.add_argument("--run", action="store_true", help="run the matrix test too")
    args = parser.parse_args()
    if args.write:
        write()
    else:
        print(markdown())
    figures: dict[str, object] = {"cells": dict(collections.Counter(
        str(code) for _, _, code in cells()))}
    if args.run:
        figures["test"] = run_test()
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
