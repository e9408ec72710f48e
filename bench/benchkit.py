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

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_prefect(home: Path, *, database_url: str | None = None) -> tuple[subprocess.Popen, str]:
    """``prefect server start`` on a free port with its own PREFECT_HOME; (process, API URL)."""
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_DATABASE_TIMEOUT": "60",
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    env.pop("PREFECT_API_URL", None)
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.5)
    process.kill()
    raise SystemExit("the Prefect server did not start within 120 s")


def stop(process: subprocess.Popen) -> None:
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
