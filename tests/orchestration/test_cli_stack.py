"""``newsroom up`` as a user runs it: one command starts the Prefect server, the worker,
the approval page, the mail catcher and the stand-ins, schedules a demo campaign and
prints its approval link; approving it on the page publishes the posts; Ctrl-C stops all
of it with exit code 0, hands the runs in flight back without a Crashed state or an alert
mail, and leaves no Prefect server behind.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from newsroom.orchestration.stack import free_port
from newsroom.running_stack import STACK_FILE
from newsroom.standins import StandinControl
from newsroom.timeutil import BERLIN

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r">>> (http://127\.0\.0\.1:\d+/freigabe/\S+)")
SERVER_PID = re.compile(r"Prefect server pid (\d+)")
DEMO = re.compile(r"demo campaign (demo-[0-9-]+):")
# Where the demo posts (the website's CMS stand-in is "cms").
NETWORKS = ("mastodon", "bluesky", "telegram", "cms")
# The channel names of the registry, as `newsroom channels check` prints them.
ACCOUNTS = ("mastodon", "bluesky", "instagram", "facebook", "linkedin", "threads",
            "telegram", "website", "presse")
# What a command of the office's day may take, from start to answer, on a busy machine
# (a Python start with Prefect's imports is most of it; before the running stack was
# found, crisis start took over 3 minutes).
ANSWERS_WITHIN = 30.0
NEW_CAMPAIGN = """\
id: sportabzeichen-tag
title: Tag des Sportabzeichens
topic: Sport
kind: sports_day
requested_by: {{portfolio: sport}}
approval:
  approvers: [{{portfolio: sport}}]
  mode: one
  deadline_before: 1d
  on_timeout: cancel
slots:
  - at: "{at}"
    channels: [mastodon, bluesky]
content:
  text: "Heute ist Tag des Sportabzeichens in Darmstadt {{{{ hashtags }}}}"
  hashtags: [SportabzeichenDA]
"""


class Output:
    """Collects the subprocess's output in a thread; wait for a pattern."""

    def __init__(self, process: subprocess.Popen[str]):
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        for line in process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def text(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                match = pattern.search("\n".join(self.lines))
                if match:
                    return match
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {pattern.pattern!r} within {timeout} s; "
                                         f"output:\n" + "\n".join(self.lines[-60:]))
                self._changed.wait(min(left, 1.0))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie counts as gone
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _check_locked_down(data_dir: Path, server_pid: int, prefect_port: int) -> None:
    """The demo's key and the Prefect credential are private files; the Prefect API
    refuses requests without the credential; the Prefect server process holds none of
    Newsroom's secrets (the signing key, the channel tokens `up` sets for the stand-ins)."""
    from newsroom.prefect_access import auth_header
    from newsroom.standins.config import STANDIN_CREDENTIAL_ENV

    key_file, credential_file = data_dir / "secret-key", data_dir / "prefect" / "api-auth-string"
    for path in (key_file, credential_file):
        assert path.stat().st_mode & 0o777 == 0o600, path
    credential = credential_file.read_text(encoding="utf-8").strip()
    api = f"http://127.0.0.1:{prefect_port}/api"
    assert httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10).status_code == 401
    assert httpx.post(f"{api}/flow_runs/filter", json={}, timeout=10,
                      headers=auth_header(credential)).status_code == 200
    with open(f"/proc/{server_pid}/environ", "rb") as handle:
        environ = dict(entry.split(b"=", 1) for entry in handle.read().split(b"\0") if entry)
    names = {name.decode() for name in environ}
    assert not {name for name in names if name.startswith("NEWSROOM_")}, names
    assert not names & set(STANDIN_CREDENTIAL_ENV), names
    assert key_file.read_bytes().strip() not in b"\n".join(environ.values())


def _office_day(env: dict[str, str], data_dir: Path, catalog: Path, ports: dict[str, int],
                output: Output, campaign_id: str) -> None:
    """The office's day from another shell on the same data dir and catalog, without
    PREFECT_API_URL, the Prefect credential or any channel credential: it finds the stack
    by its record; a crisis goes through the stack's run; the credentials the worker
    publishes with are checked; a campaign added to the catalog folder people edit is
    scheduled (by hand and by the stack within a minute, once), a broken edit is told to
    the office and scheduled by neither; the audit trail names who approved. Every
    command answers within seconds."""
    import json

    from newsroom.standins.config import STANDIN_CREDENTIAL_ENV

    shell = {key: value for key, value in env.items() if not key.startswith("PREFECT_")}
    assert not set(shell) & set(STANDIN_CREDENTIAL_ENV)
    record = data_dir / STACK_FILE
    assert record.stat().st_mode & 0o777 == 0o600
    answers: dict[str, float] = {}

    def newsroom(*args: str) -> subprocess.CompletedProcess[str]:
        began = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "newsroom.cli", *args], cwd=ROOT,
                              env=shell, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
        answers[" ".join(args[:2])] = time.monotonic() - began
        assert "Traceback" not in done.stdout + done.stderr, (args, done.stderr)
        return done

    started = newsroom("crisis", "start", "unwetterwarnung", "--by", "wolf", "--set",
                       "ereignis=Gewitter aus der zweiten Shell")
    assert started.returncode == 0, (started.stdout, started.stderr)
    assert f"created on http://127.0.0.1:{ports['prefect']}/api" in started.stdout
    with StandinControl(f"http://127.0.0.1:{ports['standins']}") as control:
        deadline = time.monotonic() + 60
        while "zweiten Shell" not in str(control.posts("mastodon")):
            assert time.monotonic() < deadline, output.text[-4000:]
            time.sleep(0.3)
    assert "ACTIVE crisis" in newsroom("crisis", "status").stdout
    assert "ended" in newsroom("crisis", "end", "--by", "wolf").stdout
    # The stack runs on the catalog people edit, no copy; its overlay points the accounts
    # at this test's stand-in port, and the second shell sees them so too.
    assert not (data_dir / "demo-catalog").exists()
    checked = newsroom("channels", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for account in ACCOUNTS:
        assert re.search(rf"^{account} +ok ", checked.stdout, re.M), checked.stdout

    # A campaign manager adds a campaign to the catalog folder and schedules it.
    at = (datetime.now(BERLIN) + timedelta(days=10)).replace(hour=10, minute=0, second=0)
    (catalog / "sportabzeichen-tag.yaml").write_text(
        NEW_CAMPAIGN.format(at=f"{at:%Y-%m-%d %H:%M:%S}"), encoding="utf-8")
    assert "OK:" in newsroom("validate").stdout
    scheduled = newsroom("schedule")
    assert scheduled.returncode == 0, scheduled.stdout + scheduled.stderr
    assert re.search(r"^  (created|unchanged) +sportabzeichen-tag", scheduled.stdout,
                     re.M), scheduled.stdout
    # The stack saw the edit too (its housekeeping run), without anyone asking.
    output.wait_for(re.compile(r"the catalog changed \(\d+ campaigns\)"), 60)
    # A broken edit: the office is mailed which file; neither schedules anything of it.
    broken = catalog / "kaputt.yaml"
    broken.write_text("id: kaputt\ntitle: Kaputt\nslots: [\n", encoding="utf-8")
    refused = newsroom("schedule")
    assert refused.returncode == 1 and "kaputt.yaml" in refused.stderr, refused.stderr
    deadline = time.monotonic() + 60
    while not [path for path in (data_dir / "mail").glob("*.eml")
               if "kaputt.yaml" in path.read_text(encoding="utf-8", errors="replace")]:
        assert time.monotonic() < deadline, "no mail to the office about kaputt.yaml"
        time.sleep(0.5)
    broken.unlink()
    again = newsroom("schedule", "--dry-run")
    assert re.search(r"^  unchanged +sportabzeichen-tag", again.stdout, re.M), again.stdout

    # Who approved the demo, from the audit trail: on a table and as JSON.
    audited = newsroom("audit", campaign_id)
    assert audited.returncode == 0, audited.stderr
    [decided] = [line for line in audited.stdout.splitlines() if "approval.decided" in line]
    assert "Barbara Akdeniz (akdeniz)" in decided and "decision=approve" in decided, decided
    events = json.loads(newsroom("audit", campaign_id, "--json").stdout)
    decisions = [e for e in events if e["action"].startswith("approval.")
                 and (e["detail"] or {}).get("decision") == "approve"]
    assert decisions and decisions[0]["actor"] == "akdeniz", events

    slow = {command: round(took, 1) for command, took in answers.items()
            if took > ANSWERS_WITHIN}
    assert not slow, f"took longer than {ANSWERS_WITHIN} s: {slow}"
    # The record holds secrets; nothing prints them.
    secrets = [*STANDIN_CREDENTIAL_ENV.values(),
               (data_dir / "prefect" / "api-auth-string").read_text().strip()]
    printed = output.text + started.stdout + started.stderr + checked.stdout
    assert not [secret for secret in secrets if secret in printed]


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text(encoding="ascii").rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _runs_named(prefect_db: Path, campaign_id: str) -> int:
    import sqlite3

    with sqlite3.connect(prefect_db) as db:
        return db.execute("SELECT count(*) FROM flow_run WHERE name LIKE ?",
                          (f"{campaign_id} %",)).fetchone()[0]


def _crashed_runs(prefect_db: Path) -> list[tuple[str, str]]:
    import sqlite3

    with sqlite3.connect(prefect_db) as db:
        return db.execute("SELECT name, state_name FROM flow_run "
                          "WHERE state_type = 'CRASHED'").fetchall()


def test_newsroom_up_demo_approved_published_and_stopped(tmp_path):
    import shutil

    ports = {name: free_port() for name in ("prefect", "web", "smtp", "standins")}
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PREFECT_", "NEWSROOM_"))}
    # The catalog folder the office edits (a copy of the shipped one: this test edits it).
    catalog = Path(shutil.copytree(ROOT / "campaigns", tmp_path / "campaigns"))
    # As on a fresh machine: no secret key (the demo generates its own), no Prefect
    # credential (the server gets one generated in its home).
    env.update({
        "NEWSROOM_CATALOG_DIR": str(catalog),
        "NEWSROOM_DATA_DIR": str(tmp_path / "var"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
    })
    command = [sys.executable, "-m", "newsroom.cli", "up",
               "--prefect-port", str(ports["prefect"]), "--web-port", str(ports["web"]),
               "--smtp-port", str(ports["smtp"]), "--standins-port", str(ports["standins"]),
               "--demo-in", "40s", "--poll", "0.5"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output = Output(process)
    server_pid = None
    try:
        server_pid = int(output.wait_for(SERVER_PID, 60).group(1))
        campaign_id = output.wait_for(DEMO, 90).group(1)
        _check_locked_down(tmp_path / "var", server_pid, ports["prefect"])
        link = output.wait_for(LINK, 60).group(1)
        assert f"127.0.0.1:{ports['web']}" in link
        assert (tmp_path / "var" / "mail").is_dir()
        assert not (catalog / f"{campaign_id}.yaml").exists()
        assert (tmp_path / "var" / "stack-overlay" / f"{campaign_id}.yaml").is_file()

        with httpx.Client(timeout=15) as client:
            page = client.get(link)
            assert page.status_code == 200, page.text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            done = client.post(link, data={"csrf": csrf, "decision": "approve",
                                           "comment": ""})
            assert done.status_code == 200, done.text
            assert "Danke" in done.text

        with StandinControl(f"http://127.0.0.1:{ports['standins']}") as control:
            deadline = time.monotonic() + 90
            while True:
                posted = {network: control.posts(network) for network in NETWORKS}
                if all(posted.values()):
                    break
                assert time.monotonic() < deadline, (
                    {n: len(p) for n, p in posted.items()}, output.text[-6000:])
                assert process.poll() is None, output.text[-4000:]
                time.sleep(0.5)
        for network in NETWORKS:
            assert len(posted[network]) == 1, (network, posted[network])
            assert "Aktionstag" in str(posted[network][0])
        _office_day(env, tmp_path / "var", catalog, ports, output, campaign_id)

        started = _descendants(process.pid)
        assert server_pid in started
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(30)
        except subprocess.TimeoutExpired:
            raise AssertionError("no exit 30 s after SIGINT:\n" + output.text[-3000:]) from None
        assert code == 0, output.text[-4000:]
        assert "Traceback" not in output.text, output.text[-6000:]
        # The housekeeping run was in flight: handed back to Scheduled, not Crashed, and no
        # run alert reached the mail catcher.
        assert "handed back to Scheduled" in output.text, output.text[-4000:]
        assert "Crash detected" not in output.text, output.text[-6000:]
        # A normal day and a normal stop log no ERROR (waits, hand-backs included).
        errors = [line for line in output.lines if "| ERROR" in line]
        assert not errors, errors
        subjects = [line for path in (tmp_path / "var" / "mail").glob("*.eml")
                    for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
                    if line.startswith("Subject:")]
        assert not [s for s in subjects if "Crashed" in s or "Failed" in s], subjects
        assert "stopped (" in output.text
        assert not _alive(server_pid), f"Prefect server {server_pid} still runs"
        left = [pid for pid in started if _alive(pid)]
        assert not left, f"processes of the stack still run: {left}"
        assert not _crashed_runs(tmp_path / "var" / "prefect" / "prefect.db")
        # Scheduled by hand and by the stack: one run for the campaign's one date.
        assert _runs_named(tmp_path / "var" / "prefect" / "prefect.db",
                           "sportabzeichen-tag") == 1
        assert not (tmp_path / "var" / STACK_FILE).exists(), "the stack record outlived it"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if server_pid and _alive(server_pid):
            os.killpg(server_pid, signal.SIGKILL)
