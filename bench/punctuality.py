"""Exact-time publishing: 40 campaigns × 5 channels due at the same second.

    .venv/bin/python bench/punctuality.py [--campaigns 40] [--preroll 45] [--spread 240]

The real Prefect path: a Prefect server (subprocess, SQLite, or ``--prefect-database``),
the ``campaign`` deployment, and the in-process Newsroom worker; the channels are the
stand-ins over HTTP. Each campaign is pre-approved (this measures publishing, not people)
and due at the same instant T, ``--lead`` seconds ahead. One run per campaign is
scheduled as the campaign flow schedules the publication run of an occurrence approved
well ahead: ``--preroll`` before T and up to ``--spread`` earlier, fixed per campaign
(newsroom.planning.publication_run_start); the worker picks it up (prefetch) and the flow
waits for T to the second.

Lateness is measured where it matters — at the stand-in servers (their own processes):
the time each post was recorded minus T; a post recorded before T is "early". Also counts
runs that Prefect marked "Late", and measures ``standin_floor``: the same number of
posts, as many per network, fired at the same stand-ins at once by bare httpx clients in
one process after the burst — the instrument's own limit on this machine in this run —
printed as ``floor_p95_s`` beside ``p95_s``, and their ratio ``ratio_p95`` (the goal: at
most 1.5). The stand-ins run one process per network (benchkit.StandinFleet): in one
process they took 0.41-0.48 s at p95 for 200 posts and 2.4 s for 1,000.

``--campaigns 200`` is the burst of issue 18: 1,000 posts (5 channels per campaign).

Prints one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import (  # noqa: E402
    StandinFleet,
    copy_catalog,
    free_port,
    newsroom_env,
    percentile,
    service_campaign_yaml,
    standin_floor,
    start_prefect,
    stop,
)

CHANNELS = ["mastodon", "bluesky", "linkedin", "telegram", "website"]
NETWORK_OF = {"mastodon": "mastodon", "bluesky": "bluesky", "linkedin": "linkedin",
              "telegram": "telegram", "website": "cms"}


def campaign_yaml(campaign_id: str, slot_local: str) -> str:
    return service_campaign_yaml(campaign_id, slot_local, CHANNELS, title="Pünktlichkeit")


async def schedule_runs(deployment_id: str, params: list[dict], whens: list[datetime]
                        ) -> list[UUID]:
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    ids = []
    async with get_client() as client:
        for parameters, when in zip(params, whens, strict=True):
            run = await client.create_flow_run_from_deployment(
                UUID(deployment_id), parameters=parameters,
                state=Scheduled(scheduled_time=when))
            ids.append(run.id)
    return ids


async def states(ids: list[UUID]
                 ) -> list[tuple[str | None, list[str | None], datetime | None]]:
    """Per run: its state now, the names of its states, and when it began Running."""
    from prefect.client.orchestration import get_client

    out = []
    async with get_client() as client:
        for run_id in ids:
            run = await client.read_flow_run(run_id)
            history = await client.read_flow_run_states(run_id)
            running = [s.timestamp for s in history if s.name == "Running" and s.timestamp]
            out.append((run.state.name if run.state else "None", [s.name for s in history],
                        min(running) if running else None))
    return out


def _send_started(campaign_ids: list[str]) -> list[float]:
    """Seconds after the due second at which each occurrence began sending (its audit)."""
    from newsroom import store
    from newsroom.runtime import get_runtime

    engine = get_runtime().engine
    started = []
    with store.session_scope(engine) as session:
        for campaign_id in campaign_ids:
            for event in store.audit_trail(session, campaign_id=campaign_id):
                if event.action == "occurrence.delivered":
                    started += list((event.detail.get("lateness_s") or {}).values())[:1]
    return started


def _by_network(received: list[dict], due: datetime) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for post in received:
        offset = (datetime.fromisoformat(post["created_at"]["wall"]) - due).total_seconds()
        out.setdefault(post.get("network", "?"), []).append(offset)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=40)
    parser.add_argument("--lead", type=float, default=None,
                        help="seconds from now to the instant all posts are due "
                             "(default: pre-roll + spread + 60)")
    parser.add_argument("--preroll", type=float, default=45.0,
                        help="the runs are scheduled this many seconds before the instant")
    parser.add_argument("--spread", type=float, default=240.0,
                        help="... and up to this many seconds earlier, fixed per campaign, "
                             "as the campaign flow schedules publication runs "
                             "(newsroom.planning.publication_run_start; 0: all at the "
                             "pre-roll)")
    parser.add_argument("--prefect-database", default=None, metavar="URL",
                        help="the Prefect server's database (default: SQLite in a temporary "
                             "folder), e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/x")
    args = parser.parse_args()
    if args.lead is None:
        args.lead = args.preroll + args.spread + 60
    load_before = os.getloadavg()[0]  # other work on the machine makes every figure worse

    work = Path(tempfile.mkdtemp(prefix="newsroom-punctuality-"))
    server, api_url = start_prefect(work / "prefect", database_url=args.prefect_database)
    os.environ.update({"PREFECT_API_URL": api_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                       "PREFECT_LOGGING_LEVEL": "WARNING"})

    from newsroom.orchestration.stack import MailCatcher, WorkerThread, apply_deployments, run_async
    from newsroom.planning import publication_run_start
    from newsroom.runtime import reset_runtimes
    from newsroom.timeutil import BERLIN

    standins = StandinFleet(tuple(sorted(set(NETWORK_OF.values()))))
    try:
        catalog = copy_catalog(work / "campaigns", standins)
        due = (datetime.now(UTC) + timedelta(seconds=args.lead)).replace(microsecond=0)
        local = due.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M:%S")
        ids_ = [f"puenktlich-{i:03d}" for i in range(args.campaigns)]
        for campaign_id in ids_:
            (catalog / f"{campaign_id}.yaml").write_text(campaign_yaml(campaign_id, local),
                                                         encoding="utf-8")
        mail = MailCatcher(port=free_port()).start()
        os.environ.update(newsroom_env(work, catalog, smtp_url=mail.smtp_url))
        reset_runtimes()
        deployments = run_async(apply_deployments("bench-punctuality", schedules=False))
        worker = WorkerThread("bench-punctuality", poll_seconds=1.0, prefetch_seconds=90)
        worker.start()
        day = due.astimezone(BERLIN).date().isoformat()
        # Each campaign's run starts as its publication run would (the index stands in
        # for the occurrence's id: the same hash spread).
        runs = run_async(schedule_runs(
            deployments["campaign"],
            [{"campaign_id": c, "occurrence_date": day} for c in ids_],
            [publication_run_start(due, index, preroll=timedelta(seconds=args.preroll),
                                   spread=timedelta(seconds=args.spread))
             for index in range(1, len(ids_) + 1)]))
        expected = args.campaigns * len(CHANNELS)
        if os.environ.get("BENCH_PYSPY"):  # profile this process around the second
            import subprocess

            # BENCH_PYSPY_WINDOW: "from,seconds" around T (default: from T-1 s for 4 s)
            ahead, seconds = os.environ.get("BENCH_PYSPY_WINDOW", "1,4").split(",")
            delay = max(0.0, (due - datetime.now(UTC)).total_seconds() - float(ahead))
            subprocess.Popen(["sh", "-c", f'sleep {delay}; exec "$0" "$@"', "py-spy",
                              "record", "-p", str(os.getpid()), "-d", seconds, "-r", "200",
                              "-f", os.environ.get("BENCH_PYSPY_FORMAT", "raw"),
                              "-o", os.environ["BENCH_PYSPY"], "--nonblocking",
                              "--threads", "--idle"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + args.lead + 120
        received: list[dict] = []
        # Not a look at the stand-ins before the burst is over: each look makes them
        # serialise every post so far, in the process that is recording the burst.
        time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds() + 5))
        while time.monotonic() < deadline:
            received = [p for network in standins.urls for p in standins.posts(network)]
            if len(received) >= expected and datetime.now(UTC) > due + timedelta(seconds=5):
                break
            time.sleep(1)
        time.sleep(3)
        received = [p for network in standins.urls for p in standins.posts(network)]
        run_states = run_async(states(runs))
        send_started = _send_started(ids_)
        worker.stop()
        mail.stop()
        floor = standin_floor(standins, {
            network: sum(1 for c in CHANNELS if NETWORK_OF[c] == network) * args.campaigns
            for network in standins.urls})
    finally:
        stop(server)
        standins.stop()

    offsets = [(datetime.fromisoformat(p["created_at"]["wall"]) - due).total_seconds()
               for p in received]
    late_runs = sum(1 for _, history, _ in run_states if "Late" in history)
    completed = sum(1 for state, _, _ in run_states if state == "Completed")
    # When the runs began Running, from the due second: a run still starting in the last
    # seconds shares the worker's event loop with the burst.
    began = sorted((started - due).total_seconds() for _, _, started in run_states if started)
    p95 = round(percentile(offsets, 0.95), 3) if offsets else None
    result = {
        "posts": len(offsets),
        "expected": args.campaigns * len(CHANNELS),
        "p50_s": round(statistics.median(offsets), 3) if offsets else None,
        "p95_s": p95,
        "floor_p95_s": floor["p95_s"],
        "ratio_p95": round(p95 / floor["p95_s"], 2) if p95 is not None and floor["p95_s"]
        else None,
        "max_s": round(max(offsets), 3) if offsets else None,
        "min_s": round(min(offsets), 3) if offsets else None,
        "early": sum(1 for o in offsets if o < 0),
        "p50_by_network_s": {network: round(statistics.median(values), 3)
                             for network, values in sorted(_by_network(received, due).items())},
        # Where the time goes: when the flows began sending (after waking at the second),
        # as each run recorded it, relative to the second.
        "send_started_p50_s": round(statistics.median(send_started), 3) if send_started
        else None,
        "send_started_max_s": round(max(send_started), 3) if send_started else None,
        "runs_completed": completed,
        "runs_marked_late": late_runs,
        "runs_began_running_last_s": round(began[-1], 2) if began else None,
        "runs_began_running_after_minus_10s": sum(1 for b in began if b > -10),
        "standin_floor": floor,
        "prefect_database": "postgresql" if args.prefect_database else "sqlite",
        "preroll_s": args.preroll,
        "spread_s": args.spread,
        "load_before": load_before,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
