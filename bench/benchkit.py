"""Shared parts of the benchmarks: a Prefect server subprocess, a catalog copy pointed at
the stand-ins, process memory, percentiles."""

from __future__ import annotations

import os
import shutil
import signal
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


def copy_catalog(target: Path, standins: str | StandinFleet) -> Path:
    """A copy of the seed catalog at ``target`` whose accounts publish to ``standins``
    (one stand-in process's URL, or a fleet: each network's accounts to its process)."""
    shutil.copytree(ROOT / "campaigns", target)
    registry = target / "registry" / "channels.yaml"
    text = registry.read_text(encoding="utf-8")
    if isinstance(standins, StandinFleet):
        for network, url in standins.urls.items():
            text = text.replace(f"http://127.0.0.1:8900/{network}", f"{url}/{network}")
    else:
        text = text.replace("http://127.0.0.1:8900", standins)
    registry.write_text(text, encoding="utf-8")
    return target


def newsroom_env(work: Path, catalog: Path, *, smtp_url: str, web_url: str | None = None,
                 secret_key: str = "bench-secret-key-that-is-long-enough-0123456789",
                 ) -> dict[str, str]:
    """Newsroom's settings for a bench in ``work`` (store: a SQLite file there), with the
    stand-ins' credentials: for ``os.environ`` and a worker process's environment."""
    from newsroom.standins.config import STANDIN_CREDENTIAL_ENV

    return {"NEWSROOM_CATALOG_DIR": str(catalog), "NEWSROOM_DATA_DIR": str(work / "var"),
            "NEWSROOM_DATABASE_URL": f"sqlite:///{work / 'newsroom.db'}",
            "NEWSROOM_SMTP_URL": smtp_url,
            "NEWSROOM_WEB_BASE_URL": web_url or f"http://127.0.0.1:{free_port()}",
            "NEWSROOM_SECRET_KEY": secret_key, **STANDIN_CREDENTIAL_ENV}


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


def _start_standin_process(*, quiet: bool = False) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "newsroom.standins", "--port", str(port)]
    process = subprocess.Popen(command + (["--quiet"] if quiet else []),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process, f"http://127.0.0.1:{port}"


def _wait_serving(process: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/_standin/posts", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the stand-ins did not start")


def start_standins() -> tuple[subprocess.Popen, str]:
    """The stand-in channels in their own process (they must not share this process's
    GIL with the code being measured); (process, base URL)."""
    process, url = _start_standin_process()
    _wait_serving(process, url)
    return process, url


# The networks of the stand-ins (newsroom.standins.NETWORKS), as the seed registry's base
# URLs name them: http://127.0.0.1:8900/<network>.
STANDIN_NETWORKS = ("mastodon", "bluesky", "graph", "linkedin", "telegram", "cms")


class StandinFleet:
    """The stand-ins as one process per network, each without an access log: a burst to
    five networks is served by five processes, not queued in one (one Python process
    served 200 simultaneous posts at p95 0.41-0.48 s, 1,000 at 2.4 s on two cores: the
    instrument's limit, not Newsroom's).

    Each process is the whole stand-in app, and each network is used in its own process
    only (the catalog copy points each network's accounts there): a network's state — its
    ids, idempotency keys, sessions and posts — lives in one process, as before. Only the
    fault rules and the reset are per process: :meth:`control` gives each network's."""

    def __init__(self, networks: tuple[str, ...] = STANDIN_NETWORKS) -> None:
        self.processes: dict[str, subprocess.Popen] = {}
        self.urls: dict[str, str] = {}
        try:
            for network in networks:  # all started, then waited for: they boot at once
                self.processes[network], self.urls[network] = _start_standin_process(
                    quiet=True)
            for network in networks:
                _wait_serving(self.processes[network], self.urls[network])
        except BaseException:
            self.stop()
            raise

    def posts(self, network: str, process: str | None = None) -> list[dict[str, Any]]:
        """The posts ``network``'s stand-in made (its own process's record); ``process``:
        the fleet's process that serves it, when that is named otherwise (Facebook's posts
        are made by the ``graph`` process)."""
        return httpx.get(f"{self.urls[process or network]}/_standin/posts",
                         params={"network": network}, timeout=30).json()["posts"]

    def stop(self) -> None:
        for process in self.processes.values():
            stop(process)


def percentile_s(values: list[float], q: float) -> float | None:
    return round(percentile(values, q), 3) if values else None


def standin_floor(url: str | StandinFleet, posts: int | dict[str, int], *,
                  clients: int = 5) -> dict[str, Any]:
    """How fast the stand-ins themselves record ``posts`` posts sent at once by bare httpx
    clients: the measuring instrument's own limit on this machine, to print beside a
    bench's figures (and its result as a ratio to it).

    ``url`` is one stand-in process (``posts`` a number: all to its Mastodon, over
    ``clients`` clients, one per channel account as Newsroom sends), or a
    :class:`StandinFleet` with ``posts`` per network (network -> count): each network's
    share goes to that network's process, through a client of its own with Newsroom's
    connection limits (newsroom.delivery.shared_client), as Mastodon statuses (every
    process serves every network's API; a bare call needs no session). Times are from the
    start of the burst to each post's record at the stand-in (CLOCK_MONOTONIC: one clock
    for all processes of this machine)."""
    import asyncio

    from newsroom.delivery import KEEPALIVE_PER_ACCOUNT
    from newsroom.standins.config import MASTODON_TOKEN

    # Each post: (the client it goes through, the stand-in process it goes to).
    if isinstance(url, StandinFleet):
        assert isinstance(posts, dict), "a fleet's floor takes posts per network"
        bases = {network: url.urls[network] for network in posts}
        sends = [(network, bases[network]) for network, count in posts.items()
                 for _ in range(count)]
    else:
        count = posts if isinstance(posts, int) else sum(posts.values())
        bases = {f"client-{i}": url for i in range(clients)}
        sends = [(f"client-{i % clients}", url) for i in range(count)]

    async def flood() -> tuple[float, str]:
        pool = {share: httpx.AsyncClient(
            limits=httpx.Limits(max_connections=200,
                                max_keepalive_connections=KEEPALIVE_PER_ACCOUNT),
            timeout=30) for share in bases}
        marker = f"floor-{time.time_ns()}"
        # Every connection made before the burst, as Newsroom's warmed-up clients have.
        await asyncio.gather(*(client.get(f"{bases[share]}/_standin/faults")
                               for share, client in pool.items()))
        started = time.monotonic()

        async def one(i: int) -> None:
            share, base = sends[i]
            await pool[share].post(
                f"{base}/mastodon/api/v1/statuses",
                headers={"Authorization": f"Bearer {MASTODON_TOKEN}",
                         "Idempotency-Key": f"{marker}-{i}"},
                json={"status": f"Messung {marker} {i}", "language": "de",
                      "visibility": "public"})

        try:
            await asyncio.gather(*(one(i) for i in range(len(sends))))
        finally:
            for client in pool.values():
                await client.aclose()
        return started, marker

    started, marker = asyncio.run(flood())
    recorded: list[float] = []
    for base in set(bases.values()):
        recorded += [p["created_at"]["monotonic"] - started
                     for p in httpx.get(f"{base}/_standin/posts",
                                        params={"network": "mastodon"},
                                        timeout=30).json()["posts"]
                     if marker in str(p)]
    recorded.sort()
    return {"posts": len(recorded), "p50_s": percentile_s(recorded, 0.5),
            "p95_s": percentile_s(recorded, 0.95),
            "max_s": round(recorded[-1], 3) if recorded else None,
            "processes": len(set(bases.values()))}


# --- the Newsroom worker in a process of its own -------------------------------------


class WorkerProcess:
    """``newsroom worker --pool P`` as a child process in its own session (as in
    production: its own interpreter, not sharing one with the bench's instruments); its
    output in ``log_dir/worker-NN.log``."""

    def __init__(self, pool: str, env: dict[str, str], log_dir: Path, *, poll: float = 0.5):
        self.pool, self.env, self.log_dir, self.poll = pool, env, log_dir, poll
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> int:
        self.starts += 1
        script = Path(sys.executable).with_name("newsroom")
        command = ([str(script)] if script.exists()
                   else [sys.executable, "-m", "newsroom.cli"])
        log = open(self.log_dir / f"worker-{self.starts:02d}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            command + ["worker", "--pool", self.pool, "--poll", str(self.poll)], env=self.env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        return self.process.pid

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """A polite stop (SIGTERM: runs are handed back), then SIGKILL."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()


async def _pool_worker_names(pool: str) -> list[str]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        try:
            return [w.name for w in await client.read_workers_for_work_pool(pool)]
        except Exception:  # noqa: BLE001 - the pool may not exist yet
            return []


def wait_worker_ready(pool: str, pid: int, timeout: float = 90.0) -> float:
    """Until the worker in process ``pid`` sent its first heartbeat (it then also looked
    for orphaned runs); the seconds it took."""
    from newsroom.orchestration.stack import run_async

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if any(f" {pid} " in name for name in run_async(_pool_worker_names(pool))):
            return time.monotonic() - started
        time.sleep(0.25)
    raise RuntimeError(f"the Newsroom worker (pid {pid}) did not register within {timeout} s")
