"""Progress where people wait (newsroom/progress.py): rich's live display on a terminal,
plain lines elsewhere — and what a command prints as its result unchanged either way."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

from newsroom.progress import step

ROOT = Path(__file__).resolve().parents[1]


def _in_terminal(args: list[str]) -> tuple[int, str]:
    """Run ``newsroom ARGS`` with stdout and stderr on a pseudo-terminal; code, output."""
    main, side = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm"}
    process = subprocess.Popen([sys.executable, "-m", "newsroom.cli", *args], cwd=ROOT,
                               stdin=side, stdout=side, stderr=side, env=env, close_fds=True)
    os.close(side)
    out = b""
    while True:
        ready, _, _ = select.select([main], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(main, 65536)
        except OSError:  # the other side closed
            break
        if not data:
            break
        out += data
    os.close(main)
    return process.wait(30), out.decode("utf-8", errors="replace")


def test_plain_lines_only_while_a_wait_lasts_and_never_control_characters():
    quick = io.StringIO()
    with step("checking campaign files", 3, stream=quick) as progress:
        for name in ("a.yaml", "b.yaml", "c.yaml"):
            progress.advance(detail=name)
    assert quick.getvalue() == ""  # a short wait prints nothing

    slow = io.StringIO()
    with step("checking campaign files", 3, stream=slow, every=0) as progress:
        for name in ("a.yaml", "b.yaml", "c.yaml"):
            progress.advance(detail=name)
    lines = slow.getvalue().splitlines()
    assert lines[0].startswith("checking campaign files: 1/3 – a.yaml (")
    assert lines[-1].startswith("checking campaign files: 3/3 – c.yaml (")
    assert "\x1b" not in slow.getvalue()

    announced = io.StringIO()
    with step("Prefect server starting", stream=announced, announce=True, every=0) as progress:
        progress.advance(0)
    assert announced.getvalue().splitlines() == ["Prefect server starting …",
                                                  "Prefect server starting: (0 s)"]


def test_validate_shows_progress_on_a_terminal_and_plain_results_elsewhere():
    piped = subprocess.run([sys.executable, "-m", "newsroom.cli", "validate"], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.startswith("OK: ") and piped.stderr == ""
    assert "\x1b" not in piped.stdout + piped.stderr

    code, shown = _in_terminal(["validate"])
    assert code == 0, shown
    assert "checking campaign files" in shown and "\x1b[" in shown  # rich's live display
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)  # without rich's colours
    assert re.search(r"\b\d+/\d+\b", text), text  # n of the campaign files
    assert re.search(r"OK: \d+ files checked, \d+ campaigns valid", shown)
