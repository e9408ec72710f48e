"""A shell where no stack runs: the commands that need Prefect say so at once and leave
nothing behind.

Each command runs as a user's would: a subprocess with a fresh home, so Prefect's default
profile (which turns its ephemeral mode on) applies, and no PREFECT_API_URL. Newsroom must
not let Prefect start a server of its own on the side (newsroom/running_stack.py), must
record no crisis without a reachable API, and ends a ``--direct`` crisis that reached
nobody instead of holding every other post for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from newsroom.orchestration.stack import free_port
from newsroom.running_stack import STACK_FILE

ROOT = Path(__file__).resolve().parents[2]
KEY = "a-test-signing-key-that-is-long-enough-for-newsroom"
MARKER = "NEWSROOM_TEST_NO_STACK_MARKER"
CRISIS = ["crisis", "start", "unwetterwarnung", "--by", "wolf", "--set",
          "ereignis=Kein Stack"]


def _shell(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("NEWSROOM_", "PREFECT_"))}
    (tmp_path / "home").mkdir()
    # Alerts go nowhere fast: a service that refuses (no mail to a catcher others run).
    alerts = tmp_path / "apprise.yml"
    alerts.write_text(f'urls:\n  - "json://127.0.0.1:{free_port()}/":\n'
                      "      tag: newsroom-alerts, amt-kommunikation\n", encoding="utf-8")
    env.update({"HOME": str(tmp_path / "home"), "NEWSROOM_DATA_DIR": str(tmp_path / "var"),
                "NEWSROOM_SECRET_KEY": KEY, "NEWSROOM_APPRISE_CONFIG": str(alerts),
                MARKER: uuid.uuid4().hex})
    return env


def _newsroom(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "newsroom.cli", *args], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=90,
                            stdin=subprocess.DEVNULL)
    assert "Traceback" not in result.stdout + result.stderr, (args, result.stderr)
    return result


def _processes_with(name: str, value: str) -> list[int]:
    """Processes whose environment holds ``name=value``: what our commands started."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # ended meanwhile, or not ours to read
            continue
    return found


def _record(data_dir: Path, pid: int, api_url: str, environment: dict[str, str]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / STACK_FILE
    path.write_text(json.dumps({"api_url": api_url, "ui_url": api_url.removesuffix("/api"),
                                "pid": pid, "started_at": "2026-01-01T00:00:00+00:00",
                                "prefect_auth_string": "newsroom:" + "x" * 30,
                                "environment": environment}), encoding="utf-8")
    path.chmod(0o600)


def test_without_a_stack_commands_fail_at_once_record_no_crisis_and_leave_nothing(tmp_path):
    env = _shell(tmp_path)
    data_dir = tmp_path / "var"

    refused = _newsroom(CRISIS, env)
    assert refused.returncode == 1, refused.stdout
    assert "not started, nothing recorded" in refused.stderr
    assert "no stack runs from" in refused.stderr and "newsroom up" in refused.stderr
    assert "--direct" in refused.stderr
    assert "no active crisis" in _newsroom(["crisis", "status"], env).stdout

    # Secret blocks without an API: an answer per account, not a server started for it.
    checked = _newsroom(["channels", "check", "--timeout", "5"], env)
    assert "mastodon" in checked.stdout, checked.stderr

    # A record whose `newsroom up` lives (here: this test) is followed, and its API named;
    # one whose process has ended is ignored.
    api_url = f"http://127.0.0.1:{free_port()}/api"
    _record(data_dir, os.getpid(), api_url, {"NEWSROOM_MASTODON_TOKEN": "from-the-record"})
    refused = _newsroom(CRISIS, env)
    assert refused.returncode == 1
    assert f"no Prefect API answers at {api_url} (recorded by `newsroom up`" in refused.stderr
    finished = subprocess.Popen(["true"])
    finished.wait()
    _record(data_dir, finished.pid, api_url, {})
    assert "no stack runs from" in _newsroom(CRISIS, env).stderr

    # --direct publishes from the shell; with no credential it reaches no channel, and the
    # crisis is ended rather than holding every other post.
    direct = _newsroom([*CRISIS, "--direct"], env)
    assert direct.returncode == 1
    assert "this shell's channel credentials" in direct.stdout
    assert "mastodon: NOT published" in direct.stdout
    assert "published on no channel" in direct.stderr and "was ended" in direct.stderr
    assert "no active crisis" in _newsroom(["crisis", "status"], env).stdout

    # Prefect's ephemeral server would have made its database in the home, and may
    # outlive the command.
    assert not list((tmp_path / "home").rglob("prefect.db*"))
    assert _processes_with(MARKER, env[MARKER]) == []
