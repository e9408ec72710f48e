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
    starts it (flows.embedded.PrefectServer); (server, API URL). ``server.pid`` is the
    process to measure, ``stop(server)`` ends it."""
    from flows.embedded import PrefectServer, StackError

    server = PrefectServer(home, port=free_port(), database_url=database_url,
                           log_level="WARNING").start()
    try:
        server.wait_healthy(timeout=120)
    except StackError as exc:
        server.stop()
        raise SystemExit(str(exc)) from None
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


def copy_catalog(target: Path, standins_url: str) -> Path:
    shutil.copytree(ROOT / "campaigns", target)
    registry = target / "registry" / "channels.yaml"
    registry.write_text(registry.read_text(encoding="utf-8").replace(
        "http://127.0.0.1:8900", standins_url), encoding="utf-8")
    return target


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


def standin_floor(url: str, posts: int) -> dict[str, float]:
    """How fast the stand-in itself takes ``posts`` Mastodon posts sent at once by a bare
    httpx client: the measuring instrument's own limit on this machine."""
    import asyncio

    from newsroom.standins.config import MASTODON_TOKEN

    async def flood() -> list[float]:
        limits = httpx.Limits(max_connections=posts + 10)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            start = time.perf_counter()

            async def one(i: int) -> float:
                await client.post(f"{url}/mastodon/api/v1/statuses",
                                  headers={"Authorization": f"Bearer {MASTODON_TOKEN}",
                                           "Idempotency-Key": f"floor-{i}-{start}"},
                                  data={"status": f"Messung {i}", "language": "de"})
                return time.perf_counter() - start

            return sorted(await asyncio.gather(*(one(i) for i in range(posts))))

    times = asyncio.run(flood())
    return {"p50_s": round(percentile(times, 0.5), 3), "p95_s": round(percentile(times, 0.95), 3),
            "max_s": round(times[-1], 3)}
