"""Shared parts of the benchmarks: a Prefect server subprocess, a catalog copy pointed at
the stand-ins, process memory, percentiles."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_prefect(home: Path, *, database_url: str | None = None) -> tuple[Any, str]:
    """``prefect server start`` on a free port with its own PREFECT_HOME, as ``newsroom up``
    starts it (newsroom.orchestration.embedded.PrefectServer); (server, API URL). ``server.pid`` is
    the
    process to measure, ``stop(server)`` ends it."""
    from newsroom.orchestration.embedded import PrefectServer, StackError

    server = PrefectServer(home, port=free_port(), database_url=database_url,
                           log_level="WARNING").start()
    try:
        server.wait_healthy(timeout=120)
    except StackError as exc:
        server.stop()
        raise SystemExit(str(exc)) from None
    # Basic auth is on (as in `newsroom up`): this process and its subprocesses send it.
    os.environ["PREFECT_API_AUTH_STRING"] = server.auth_string
    return server, server.api_url


def stop(process: Any) -> None:
    """Stop a server started here (a PrefectServer, or a subprocess)."""
    if hasattr(process, "wait_healthy"):
        process.stop()
        return
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


def service_campaign_yaml(campaign_id: str, slot_local: str, channels: list[str], *,
                          title: str) -> str:
    """A pre-approved service-information campaign on ``channels`` at ``slot_local``
    (Europe/Berlin wall clock): what the punctuality and chaos benches publish."""
    return f"""\
id: {campaign_id}
title: {title} {campaign_id}
topic: Service
kind: service_information
requested_by: {{office: amt-kommunikation}}
approval:
  approvers: [{{person: benz}}]
  pre_approved: true
slots:
  - at: "{slot_local}"
    channels: [{", ".join(channels)}]
content:
  text: "Servicehinweis {campaign_id}: Die Bürgerbüros öffnen heute um 10 Uhr. {{{{ hashtags }}}}"
  hashtags: [ServiceDarmstadt]
"""


def copy_catalog(target: Path, standins_url: str) -> Path:
    shutil.copytree(ROOT / "campaigns", target)
    registry = target / "registry" / "channels.yaml"
    registry.write_text(registry.read_text(encoding="utf-8").replace(
        "http://127.0.0.1:8900", standins_url), encoding="utf-8")
    return target


def add_profile_account(catalog: Path, *, name: str, like: str, profile: str,
                        display_name: str) -> dict[str, Any]:
    """Add to a catalog copy's registry the account ``name``: account ``like`` (a Mastodon
    account on the stand-ins) on the stand-in server with the quirks ``profile``
    (``/mastodon/~QUIRK+QUIRK``, see newsroom/standins/mastodon.py), same credential."""
    import yaml

    registry = catalog / "registry" / "channels.yaml"
    data = yaml.safe_load(registry.read_text(encoding="utf-8"))
    (model,) = [a for a in data["accounts"] if a["name"] == like]
    account = {**model, "name": name, "display_name": display_name,
               "base_url": f"{model['base_url'].rstrip('/')}/~{profile}", "crisis": False}
    data["accounts"].append(account)
    registry.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                        encoding="utf-8")
    return account


def rss_kb(pid: int) -> int:
    """RSS of ``pid`` and all its descendants, in kB."""
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    stack += [int(c) for c in children.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def start_standins() -> tuple[subprocess.Popen, str]:
    """The stand-in channels in their own process (they must not share this process's
    GIL with the code being measured); (process, base URL)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "newsroom.standins", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/_standin/posts", timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the stand-ins did not start")


def standin_floor(url: str, posts: int, *, clients: int = 5) -> dict[str, float]:
    """How fast the stand-in itself records ``posts`` Mastodon posts sent at once by bare
    httpx clients (``clients`` of them, one per channel account as Newsroom sends): the
    measuring instrument's own limit on this machine. Times are from the start of the
    burst to each post's record at the stand-in (its clock, this machine's)."""
    import asyncio

    from newsroom.standins.config import MASTODON_TOKEN

    async def flood() -> tuple[float, set[str]]:
        pool = [httpx.AsyncClient(limits=httpx.Limits(max_connections=posts + 10,
                                                      max_keepalive_connections=8),
                                  timeout=30) for _ in range(clients)]
        marker = f"floor-{time.time_ns()}"
        started = time.monotonic()

        async def one(i: int) -> None:
            await pool[i % clients].post(
                f"{url}/mastodon/api/v1/statuses",
                headers={"Authorization": f"Bearer {MASTODON_TOKEN}",
                         "Idempotency-Key": f"{marker}-{i}"},
                data={"status": f"Messung {marker} {i}", "language": "de"})

        try:
            await asyncio.gather(*(one(i) for i in range(posts)))
        finally:
            for client in pool:
                await client.aclose()
        return started, {marker}

    started, (marker,) = asyncio.run(flood())
    recorded = sorted(p["created_at"]["monotonic"] - started
                      for p in httpx.get(f"{url}/_standin/posts", params={"network": "mastodon"},
                                         timeout=30).json()["posts"]
                      if marker in str(p))
    return {"posts": len(recorded), "p50_s": round(percentile(recorded, 0.5), 3),
            "p95_s": round(percentile(recorded, 0.95), 3), "max_s": round(recorded[-1], 3)}
