"""How long the office's commands take against a running stack, as people run them.

Starts ``newsroom up`` (demo, free ports, its own data dir) in a subprocess, then runs each
command of the office's day from a second shell — no ``PREFECT_API_URL``, no credential: the
stack is found by its record — and times each whole command, Python start included. The
floor, measured in the same run and printed beside every figure: ``newsroom --help`` (a
Python start and the CLI's imports, nothing else). Then Ctrl-C, timed until everything has
stopped. Prints one JSON line at the end.

    .venv/bin/python bench/office_day.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchkit import ROOT, free_port

COMMANDS: list[list[str]] = [
    ["validate"],
    ["schedule", "--dry-run"],
    ["schedule"],
    ["channels", "check"],
    ["crisis", "start", "unwetterwarnung", "--by", "wolf", "--set", "ereignis=Messung"],
    ["crisis", "status"],
    ["crisis", "end", "--by", "wolf"],
    ["audit", "unwetterwarnung"],
    ["calendar"],
]


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "newsroom.cli", *command], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    took = time.monotonic() - began
    if done.returncode != 0 or "Traceback" in done.stderr:
        raise SystemExit(f"newsroom {' '.join(command)} failed ({done.returncode}):\n"
                         f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return took, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of the commands.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-office-day-"))
    catalog = Path(shutil.copytree(ROOT / "campaigns", work / "campaigns"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "NEWSROOM_"))}
    env.update({"NEWSROOM_DATA_DIR": str(work / "var"), "NEWSROOM_CATALOG_DIR": str(catalog),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONUNBUFFERED": "1"})
    ports = [str(free_port()) for _ in range(4)]
    log = (work / "up.log").open("w", encoding="utf-8")
    began = time.monotonic()
    up = subprocess.Popen(
        [sys.executable, "-m", "newsroom.cli", "up", "--prefect-port", ports[0], "--web-port",
         ports[1], "--smtp-port", ports[2], "--standins-port", ports[3]],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    result: dict[str, object] = {"bench": "office_day", "rounds": args.rounds}
    try:
        while "running stack record" not in (work / "up.log").read_text(encoding="utf-8"):
            if up.poll() is not None or time.monotonic() - began > 300:
                raise SystemExit("newsroom up did not start:\n"
                                 + (work / "up.log").read_text(encoding="utf-8")[-3000:])
            time.sleep(0.1)
        result["up_ready_s"] = round(time.monotonic() - began, 2)
        shell = dict(env)  # the second shell: the same data dir and catalog, nothing else
        floor = [_timed(["--help"], shell)[0] for _ in range(args.rounds)]
        times: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for command in COMMANDS:
                times.setdefault(" ".join(command[:2]), []).append(_timed(command, shell)[0])
        floor_s = statistics.median(floor)
        result["floor_help_s"] = round(floor_s, 2)
        result["commands"] = {
            name: {"median_s": round(statistics.median(ts), 2), "max_s": round(max(ts), 2),
                   "ratio_to_floor": round(statistics.median(ts) / floor_s, 1)}
            for name, ts in times.items()}
        stopping = time.monotonic()
        os.killpg(up.pid, signal.SIGINT)
        up.wait(120)
        result["stop_s"] = round(time.monotonic() - stopping, 2)
        result["exit_code"] = up.returncode
        text = (work / "up.log").read_text(encoding="utf-8")
        result["crash_lines"] = sum("Crash detected" in line for line in text.splitlines())
        result["error_lines"] = sum("| ERROR" in line for line in text.splitlines())
        result["load_average_1m"] = os.getloadavg()[0]
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait(10)
        log.close()
    print(json.dumps(result))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
