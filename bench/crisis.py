"""Crisis mode: from the trigger to the post at every crisis channel.

    .venv/bin/python bench/crisis.py [--rounds 20] [--poll 1.0]

Starts a real Prefect server (subprocess, SQLite, like the embedded stack), the Newsroom
worker in a process of its own (``newsroom worker``, polling every ``--poll`` seconds, the
embedded default; a run created now wakes it at once), the stand-in channels one process
per network (benchkit.StandinFleet: they stamp each post's arrival with the machine's
monotonic clock, so nothing needs to poll them during a round) and, in this process, a
mail catcher (the press e-mail and the WhatsApp owner's notification go over SMTP). In an
earlier version worker and stand-ins shared this process, and the stand-ins' stamps waited
for the worker's turn at the interpreter: the instrument's cost, not Newsroom's. Then,
``--rounds`` times, triggers the pre-approved crisis template ``unwetterwarnung`` with a
new ``ereignis``:

- **prefect**: the trigger is creating the run of the ``crisis`` deployment (what
  ``newsroom crisis start`` and the Prefect UI do); the round's latency is from just
  before the create call until the last crisis channel has the post (API stand-ins:
  their own receive time, same clock; e-mail: polled every 10 ms).
- **direct**: the same in this process (``newsroom crisis start`` when Prefect is down):
  ``start_crisis`` + ``publish_crisis``.

Rounds are ``--gap`` seconds apart (default 2). Back to back (``--gap 0``) the Prefect
path measured 3.8-4.9 s: the worker picks up the next run only after the previous one's
run has wound down. Prints one JSON line at the end (latencies in seconds, each round
counted at its slowest channel).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import (  # noqa: E402
    StandinFleet,
    WorkerProcess,
    copy_catalog,
    free_port,
    newsroom_env,
    percentile,
    start_prefect,
    stop,
    wait_worker_ready,
)

POOL = "bench-crisis"
CAMPAIGN = "unwetterwarnung"
API_NETWORKS = {"mastodon": "mastodon", "bluesky": "bluesky", "facebook": "facebook",
                "telegram": "telegram", "website": "cms"}
# The stand-in process (benchkit.StandinFleet) that serves each network of API_NETWORKS.
PROCESS_OF = {"mastodon": "mastodon", "bluesky": "bluesky", "facebook": "graph",
              "telegram": "telegram", "cms": "cms"}
PRESS = "newsdesk@example.org"  # the last of the press recipients
OFFICE = "kommunikation@example.org"  # owner of the manual WhatsApp channel


def _arrivals(standins, mail, marker: str, t0: float, timeout: float = 60.0
              ) -> dict[str, float]:
    """Seconds from ``t0`` until each crisis channel has the post with ``marker``: the
    e-mails by watching the catcher (in memory, every 10 ms), then the stand-ins' own
    arrival stamps (read every 0.25 s: the reading is not part of the figure)."""
    found: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for channel, address in (("presse", PRESS), ("whatsapp", OFFICE)):
            if channel not in found and any(marker in str(m) for m in mail.to(address)):
                found[channel] = time.monotonic() - t0
        if len(found) == 2:
            break
        time.sleep(0.01)
    while time.monotonic() < deadline:
        for channel, network in API_NETWORKS.items():
            if channel in found:
                continue
            for post in standins.posts(network, PROCESS_OF[network]):
                if marker in json.dumps(post, ensure_ascii=False):
                    found[channel] = post["created_at"]["monotonic"] - t0
        if len(found) == len(API_NETWORKS) + 2:
            return found
        time.sleep(0.25)
    raise SystemExit(f"{marker}: not at every channel within {timeout:g} s: {sorted(found)}")


def _summary(latencies: list[float]) -> dict[str, float]:
    return {"p50_s": round(statistics.median(latencies), 2),
            "p95_s": round(percentile(latencies, 0.95), 2),
            "max_s": round(max(latencies), 2)}


async def _create_run(deployment_id: str, parameters: dict) -> UUID:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        run = await client.create_flow_run_from_deployment(UUID(deployment_id),
                                                           parameters=parameters)
        return run.id


async def _stages(run_id: UUID, wall0: float) -> dict[str, float]:
    """Seconds from the trigger to each state the run went through (Pending: the worker
    picked it up; Running: the flow started)."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        states = await client.read_flow_run_states(run_id)
    return {state.name: round(state.timestamp.timestamp() - wall0, 2) for state in states}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--gap", type=float, default=2.0,
                        help="seconds between rounds (0: back to back)")
    parser.add_argument("--poll", type=float, default=0.5,
                        help="seconds between the worker's polls (embedded default 0.5)")
    parser.add_argument("--prefect-database", default=None, metavar="URL",
                        help="the Prefect server's database (default: SQLite in a temporary "
                             "folder), e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/x")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="newsroom-bench-"))
    server, api_url = start_prefect(work / "prefect", database_url=args.prefect_database)
    os.environ["PREFECT_API_URL"] = api_url
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

    from newsroom import crisis
    from newsroom.orchestration.stack import MailCatcher, apply_deployments, run_async
    from newsroom.runtime import get_runtime, reset_runtimes

    prefect_rounds: list[float] = []
    direct_rounds: list[float] = []
    per_channel: dict[str, list[float]] = {}
    standins = StandinFleet(tuple(sorted(set(PROCESS_OF.values()))))
    worker: WorkerProcess | None = None
    try:
        catalog = copy_catalog(work / "campaigns", standins)
        mail = MailCatcher(port=free_port()).start()
        settings_env = newsroom_env(work, catalog, smtp_url=mail.smtp_url)
        os.environ.update(settings_env)
        reset_runtimes()
        runtime = get_runtime()  # migrates the store before the worker starts
        deployments = run_async(apply_deployments(POOL, schedules=False))
        worker = WorkerProcess(POOL, {**os.environ, **settings_env}, work, poll=args.poll)
        wait_worker_ready(POOL, worker.start())
        time.sleep(1)
        # One warm-up round each (imports, first connections), not counted.
        for round_ in range(-1, args.rounds):
            marker = f"Benchwetter P{round_ + 1:03d}"
            time.sleep(args.gap)
            t0 = time.monotonic()
            wall0 = time.time()
            run_id = run_async(_create_run(deployments["crisis"], {
                "campaign_id": CAMPAIGN, "ereignis": marker, "started_by": "wolf"}))
            found = _arrivals(standins, mail, marker, t0)
            stages = run_async(_stages(run_id, wall0))
            print(f"  prefect {round_ + 1} stages: {stages}", file=sys.stderr)
            if round_ >= 0:
                prefect_rounds.append(max(found.values()))
                for channel, seconds in found.items():
                    per_channel.setdefault(channel, []).append(seconds)
            print(f"  prefect {round_ + 1}: {max(found.values()):.2f} s", file=sys.stderr)
        for round_ in range(-1, args.rounds):
            marker = f"Benchwetter D{round_ + 1:03d}"
            t0 = time.monotonic()
            start = crisis.start_crisis(runtime, CAMPAIGN, {"ereignis": marker},
                                        by="wolf")
            asyncio.run(crisis.publish_crisis(runtime, start))
            found = _arrivals(standins, mail, marker, t0)
            if round_ >= 0:
                direct_rounds.append(max(found.values()))
            print(f"  direct {round_ + 1}: {max(found.values()):.2f} s", file=sys.stderr)
        crisis.end_crisis(runtime.engine, by="bench")
        worker.stop()
        mail.stop()
        reset_runtimes()
    finally:
        if worker is not None:
            worker.kill()
        standins.stop()
        stop(server)
        shutil.rmtree(work, ignore_errors=True)

    result = {"channels": len(API_NETWORKS) + 2, "rounds": len(prefect_rounds),
              "prefect_database": "postgresql" if args.prefect_database else "sqlite",
              "worker_poll_s": args.poll, "gap_s": args.gap, **_summary(prefect_rounds),
              "direct": _summary(direct_rounds),
              "slowest_channel_p50_s": {c: round(statistics.median(v), 2)
                                        for c, v in sorted(per_channel.items())}}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
