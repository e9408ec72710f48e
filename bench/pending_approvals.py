"""1,000 campaigns waiting for approval: what waiting costs, and how fast a decision publishes.

    .venv/bin/python bench/pending_approvals.py [--waiting 1000] [--warmup 20] [--sample 10]

Newsroom's processes as they run in production, each on its own: a Prefect server
(subprocess, SQLite, as ``newsroom up`` starts it), the Newsroom worker
(``newsroom.orchestration.worker.serve_worker`` in a subprocess) and the approval page (``newsroom
web``
in a subprocess). The instruments run beside them and are not counted: the stand-in
channels (own process) and the mail catcher (in this process). Then:

1. Memory at rest: RSS of server (with its children), worker and web.
2. Warm-up: ``--warmup`` campaigns that wait (every code path imported and used once:
   rendering, asking, suspending). Memory again.
3. ``--waiting`` more runs of the ``campaign`` deployment for a daily campaign, one per
   date (each renders its posts, e-mails the approver and *suspends*). Waits until all
   are Suspended; memory after. ``added_rss_mb`` is what the waiting added in all three
   processes together (after minus warm-up; suspended runs hold no process);
   ``added_rss_mb_from_rest`` counts the warm-up too. Per process in ``rss_mb``.
   ``setup_s_per_waiting``: the wall time from creating those runs (four at a time) to
   the last one Suspended, per waiting campaign.
4. ``--sample`` more campaigns whose posts are due ``--sample-lead`` seconds (and 3 s
   apart) after the set-up has ended (their times are taken then, so a long set-up does
   not shorten their lead): each is approved through the approval page (GET the e-mailed
   link when the mail is there, POST "Freigeben" 1.6 s before its time; the link expires
   at the deadline, 1 s before); the time from the decision to the post's arrival at the
   stand-in is ``decision_to_publish`` (p50/p95/max), the part of it after the post's time
   ``after_slot_p95_s``.

Prints one JSON line at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import (  # noqa: E402
    copy_catalog,
    free_port,
    newsroom_env,
    percentile,
    rss_kb,
    start_prefect,
    start_standins,
    stop,
)

LINK = re.compile(r"http://127\.0\.0\.1:\d+/freigabe/[A-Za-z0-9_\-\.]+")
APPROVER = "buergermeisterin@example.org"
POOL = "bench-pending"
# The approver clicks "Freigeben" this long before the post's time (the link expires at
# the deadline, one second before it).
DECIDE_BEFORE_S = 1.6


def campaign_yaml(campaign_id: str, title: str, *, slot: str | None = None,
                  rrule: str | None = None, start: str | None = None,
                  deadline_before: str) -> str:
    when = (f'  - at: "{slot}"\n' if slot else
            f'  - rrule: "{rrule}"\n    start: "{start}"\n')
    return f"""\
id: {campaign_id}
title: {title}
topic: Kinder und Jugend
kind: awareness_day
requested_by: {{portfolio: kinder-jugend}}
approval:
  approvers:
    - portfolio: kinder-jugend
  mode: one
  deadline_before: {deadline_before}
  on_timeout: cancel
slots:
{when}    channels: [mastodon]
content:
  text: "{title}: Heute informiert die Stadt über Angebote für Familien. {{{{ hashtags }}}}"
  hashtags: [FamilienDarmstadt]
"""


async def create_runs(deployment_id: str, params: list[dict], *,
                      at_once: int = 4) -> list[UUID]:
    """Create the runs, ``at_once`` at a time (SQLite behind the Prefect server serialises
    the writes anyway: no stampede), retrying a run the busy server refused; the ids in
    the order of ``params``."""
    from prefect.client.orchestration import get_client

    gate = asyncio.Semaphore(at_once)

    async def one(client, parameters: dict) -> UUID:
        async with gate:
            for attempt in range(10):
                try:
                    run = await client.create_flow_run_from_deployment(
                        UUID(deployment_id), parameters=parameters,
                        idempotency_key=f"bench-{parameters['campaign_id']}-"
                                        f"{parameters['occurrence_date']}")
                    return run.id
                except Exception:  # noqa: BLE001 - 503 from a busy SQLite server
                    await asyncio.sleep(1 + attempt)
        raise SystemExit(f"could not create a run for {parameters}")

    async with get_client() as client:
        return list(await asyncio.gather(*(one(client, p) for p in params)))


async def count_states(ids: list[UUID]) -> dict[str, int]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    counts: dict[str, int] = {}
    async with get_client() as client:
        for chunk in range(0, len(ids), 200):
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=ids[chunk:chunk + 200])), limit=200)
            for run in runs:
                name = run.state.name if run.state else "None"
                counts[name] = counts.get(name, 0) + 1
    return counts


# The Newsroom worker in its own process, as `newsroom worker` runs it (with a run limit;
# no housekeeping run, so that no pass acts on the gates being measured).
WORKER = ("import asyncio; from newsroom.orchestration.worker import serve_worker; "
          "asyncio.run(serve_worker({pool!r}, poll_seconds=0.5, prefetch_seconds=60, "
          "limit={limit}, housekeeping=False))")


def _spawn(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=os.environ.copy())


def _wait_for_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise SystemExit(f"nothing answers at {url}")


def _rss_mb(processes: dict[str, int]) -> dict[str, float]:
    """RSS of each process (with its children), MB."""
    return {name: round(rss_kb(pid) / 1024, 1) for name, pid in processes.items()}


def _wait_suspended(deployment_id: str, days: list[str], run_async) -> None:
    """Create one waiting campaign run per day; return when all are Suspended."""
    ids = run_async(create_runs(deployment_id, [
        {"campaign_id": "bench-daily", "occurrence_date": d} for d in days]))
    reported = time.monotonic()
    while True:
        counts = run_async(count_states(ids))
        if counts.get("Suspended", 0) >= len(ids):
            return
        bad = {k: v for k, v in counts.items() if k in ("Failed", "Crashed")}
        if bad:
            raise SystemExit(f"runs failed: {counts}")
        if time.monotonic() >= reported + 5:
            print(f"  {counts}", file=sys.stderr, flush=True)
            reported = time.monotonic()
        time.sleep(0.5)  # the end of the set-up is timed to within this


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiting", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=20,
                        help="campaigns that wait before the memory baseline is taken")
    parser.add_argument("--sample", type=int, default=10)
    parser.add_argument("--sample-lead", type=float, default=60,
                        help="seconds from creating the sample's runs to the first "
                             "post's time (they render, ask and suspend meanwhile)")
    parser.add_argument("--limit", type=int, default=8,
                        help="runs the worker executes at once (SQLite behind Prefect)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="newsroom-bench-"))
    server, api_url = start_prefect(work / "prefect")
    os.environ["PREFECT_API_URL"] = api_url
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

    from newsroom.orchestration.stack import MailCatcher, apply_deployments, run_async
    from newsroom.runtime import reset_runtimes
    from newsroom.standins import StandinControl
    from newsroom.timeutil import BERLIN

    standins, standins_url = start_standins()
    children: list[subprocess.Popen] = []
    try:
        with StandinControl(standins_url) as control:
            catalog = copy_catalog(work / "campaigns", standins_url)
            tomorrow = (datetime.now(BERLIN) + timedelta(days=1)).date()
            (catalog / "bench-daily.yaml").write_text(campaign_yaml(
                "bench-daily", "Familieninfo", rrule="FREQ=DAILY",
                start=f"{tomorrow.isoformat()} 10:00", deadline_before="2h"), encoding="utf-8")
            mail = MailCatcher(port=free_port()).start()
            web_port = free_port()
            os.environ.update(newsroom_env(work, catalog, smtp_url=mail.smtp_url,
                                           web_url=f"http://127.0.0.1:{web_port}"))
            reset_runtimes()
            from newsroom.store import upgrade_database

            upgrade_database(os.environ["NEWSROOM_DATABASE_URL"])
            deployments = run_async(apply_deployments(POOL, schedules=False))
            worker = _spawn([sys.executable, "-c", WORKER.format(pool=POOL, limit=args.limit)])
            web = _spawn([sys.executable, "-m", "newsroom.cli", "web", "--port", str(web_port)])
            children += [worker, web]
            _wait_for_http(f"http://127.0.0.1:{web_port}/freigabe/x")
            time.sleep(5)
            processes = {"prefect_server": server.pid, "worker": worker.pid, "web": web.pid}
            rest = _rss_mb(processes)

            # 1. warm-up, then the waiting campaigns
            days = [(tomorrow + timedelta(days=i)).isoformat()
                    for i in range(args.warmup + args.waiting)]
            _wait_suspended(deployments["campaign"], days[:args.warmup], run_async)
            time.sleep(3)
            warm = _rss_mb(processes)
            started = time.monotonic()
            _wait_suspended(deployments["campaign"], days[args.warmup:], run_async)
            to_wait_s = time.monotonic() - started
            time.sleep(3)
            after = _rss_mb(processes)
            memory = {
                "waiting": args.waiting,
                "added_rss_mb": round(sum(after.values()) - sum(warm.values()), 1),
                "added_rss_mb_from_rest": round(sum(after.values()) - sum(rest.values()), 1),
                "rss_mb": {name: {"rest": rest[name], "warm": warm[name],
                                  "after": after[name]} for name in processes},
                "seconds_to_suspend_all": round(to_wait_s, 1),
                # Creating the runs until every one is Suspended (rendered, asked,
                # suspended), per waiting campaign.
                "setup_s_per_waiting": round(to_wait_s / max(args.waiting, 1), 3),
            }
            print(json.dumps(memory), file=sys.stderr, flush=True)

            # 2. decisions on campaigns that are due
            # Far enough ahead that every sample run has rendered, asked and suspended
            # (a busy server needs a while) before its link is opened.
            # Taken now, after the set-up: how long that took does not shorten the
            # sample's lead.
            base = datetime.now(UTC).replace(microsecond=0) + timedelta(
                seconds=args.sample_lead + 4 * args.sample)
            slots = {}
            for j in range(args.sample):
                slot = base + timedelta(seconds=3 * j)
                slots[f"bench-sample-{j}"] = slot
                (catalog / f"bench-sample-{j}.yaml").write_text(campaign_yaml(
                    f"bench-sample-{j}", f"Probe {j}",
                    slot=slot.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M:%S"),
                    deadline_before="1s"), encoding="utf-8")
            run_async(create_runs(deployments["campaign"], [
                {"campaign_id": cid, "occurrence_date": s.astimezone(BERLIN).date().isoformat()}
                for cid, s in slots.items()]))
            from newsroom.orchestration.stack import text_of

            latencies, raw = [], []
            with httpx.Client(timeout=10) as http:
                # Every sample's mail, and its page opened as the approver does on the
                # mail (its form and CSRF value): only the clicks wait for their moment,
                # so how long a page takes to open does not eat into the time to decide.
                forms: dict[str, tuple[str, str]] = {}
                deadline = time.monotonic() + args.sample_lead + 4 * args.sample
                while len(forms) < len(slots) and time.monotonic() < deadline:
                    for j, cid in enumerate(slots):
                        title = re.compile(rf"\bProbe {j}\b")
                        link = next((LINK.search(text_of(message)).group(0)
                                     for message in mail.to(APPROVER)
                                     if title.search(str(message["subject"]))), None)
                        if link is None or cid in forms:
                            continue
                        page = http.get(link)
                        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
                        if found is None:
                            raise SystemExit(f"{cid}: the approval page shows no form "
                                             f"(HTTP {page.status_code}); the link expired?")
                        forms[cid] = (link, found.group(1))
                    time.sleep(0.1)
                missing = sorted(set(slots) - set(forms))
                if missing:
                    raise SystemExit(f"no approval e-mail for {missing} within the sample's "
                                     f"lead of {args.sample_lead:g} s (--sample-lead)")
                decisions: dict[str, datetime] = {}
                for cid, slot in slots.items():
                    link, csrf = forms[cid]
                    # The link is valid until the deadline, one second before the slot.
                    wait = (slot - timedelta(seconds=DECIDE_BEFORE_S)
                            - datetime.now(UTC)).total_seconds()
                    if wait > 0:
                        time.sleep(wait)
                    decided = decisions[cid] = datetime.now(UTC)
                    answer = http.post(link, data={"csrf": csrf, "decision": "approve",
                                                   "comment": ""})
                    if answer.status_code != 200:
                        said = re.sub(r"<[^>]+>|\s+", " ", answer.text)[:300]
                        raise SystemExit(
                            f"{cid}: approval page answered {answer.status_code} (clicked "
                            f"{(slot - decided).total_seconds():.2f} s before the post's "
                            f"time): {said}")
                arrivals: dict[str, datetime] = {}
                deadline = time.monotonic() + 60
                while len(arrivals) < len(slots) and time.monotonic() < deadline:
                    posts = control.posts("mastodon")
                    for j, cid in enumerate(slots):
                        for post in posts:
                            if cid not in arrivals and f"Probe {j}:" in json.dumps(
                                    post, ensure_ascii=False):
                                arrivals[cid] = datetime.fromisoformat(
                                    post["created_at"]["wall"])
                    time.sleep(0.1)
                missing = sorted(set(slots) - set(arrivals))
                if missing:
                    raise SystemExit(f"{missing}: not published within 60 s of the last "
                                     "decision")
                for cid, slot in slots.items():
                    raw.append((arrivals[cid] - decisions[cid]).total_seconds())
                    latencies.append((arrivals[cid] - max(decisions[cid], slot))
                                     .total_seconds())
            mail.stop()
    finally:
        for child in children:
            stop(child)
        stop(standins)
        stop(server)
        shutil.rmtree(work, ignore_errors=True)

    result = {
        **memory,
        "warmup": args.warmup,
        "decisions": len(latencies),
        # From the click on "Freigeben" (1.6 s before the post's time) to the post at the
        # stand-in: resume, re-run, wait for the second, publish.
        "decision_to_publish_p50_s": round(statistics.median(raw), 2),
        "decision_to_publish_p95_s": round(percentile(raw, 0.95), 2),
        "decision_to_publish_max_s": round(max(raw), 2),
        # The part after the post's time (lateness at the stand-in).
        "after_slot_p95_s": round(percentile(latencies, 0.95), 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
