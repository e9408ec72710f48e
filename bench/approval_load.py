"""The approval page under load: a real uvicorn server of the web app serving real
approval links, and a separate load process (asyncio + httpx, a fixed number of
concurrent clients, each sending its next request when the last was answered) on
loopback.

    python bench/approval_load.py                       # 30 s, 32 clients
    python bench/approval_load.py --seconds 10 --clients 16

The load client is a lean keep-alive HTTP/1.1 client over asyncio streams
(``--client httpx`` for httpx, which costs the shared cores more per request).

The mix: opening a real approval link (GET, the page with every post; writes
"approval.viewed" to the audit trail), deciding with a wrong CSRF token (POST, refused),
and garbled, truncated or made-up tokens (GET and POST, refused). Every answer is
checked: the expected status, a German page, no traceback; afterwards the store must
hold no decision. The catalog is served as ``newsroom web`` serves it: from its folder
through the catalog keeper, which looks for edited files.

The floor: first the same load process, the same clients, against a trivial page of the
same server (``/bench-floor``: through the same middleware, no store, no catalog), for
a third of the time (at most 10 s). What the loopback, the framework and the load
client sharing the two cores cost; ``rps_to_floor`` is the approval page's share of it.

Last line: JSON with requests per second (``rps``), p50/p99 latency in ms, the page
opens' p50/p99 (``page_p50_ms``, ``page_p99_ms``), the server's CPU time per request
(``server_cpu_ms``; the floor's ``floor_server_cpu_ms``), errors (5xx, failed connections,
wrong answers), the counts per kind, ``floor_rps``/``floor_p99_ms`` and the load average
before and after.

The store is SQLite (as ``newsroom up``); ``--database-url`` takes another.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KINDS = {"page": 0.6, "wrong_csrf": 0.15, "bad_token_get": 0.15, "bad_token_post": 0.1}
EXPECTED = {"page": 200, "wrong_csrf": 400, "bad_token_get": 400, "bad_token_post": 400,
            "floor": 200}
FLOOR_PATH = "/bench-floor"


# --- the load process ------------------------------------------------------------------


def _garble(token: str, rng: random.Random) -> str:
    choice = rng.randrange(4)
    if choice == 0:
        return token[: rng.randrange(1, len(token))]
    if choice == 1:
        i = rng.randrange(len(token) // 2, len(token))
        return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
    if choice == 2:
        return "".join(rng.choice("abcdefXYZ0123456789_-.") for _ in range(rng.randrange(5, 300)))
    return token.split(".")[0] + ".bm90LXRoZS1zaWduYXR1cmU"


class LeanClient:
    """One kept-alive HTTP/1.1 connection over asyncio streams, a request at a time: what
    the load client needs and no more (httpx costs the client some milliseconds of CPU
    per request, on the same two cores as the server). Keeps the CSRF cookie as a
    browser would; answers are read by their Content-Length."""

    def __init__(self, base: str, timeout: float = 30.0):
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    async def _close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def get(self, path: str) -> LeanResponse:
        return await asyncio.wait_for(self._request("GET", path, b"", ""), self.timeout)

    async def post(self, path: str, data: dict[str, str]) -> LeanResponse:
        body = urlencode(data).encode()
        return await asyncio.wait_for(
            self._request("POST", path, body, "application/x-www-form-urlencoded"),
            self.timeout)

    async def _request(self, method: str, path: str, body: bytes,
                       content_type: str) -> LeanResponse:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        head = [f"{method} {path} HTTP/1.1", f"host: {self.host}:{self.port}",
                "user-agent: approval-load"]
        if self.cookies:
            head.append("cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if method != "GET":
            head += [f"content-type: {content_type}", f"content-length: {len(body)}"]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        try:
            status_line = await reader.readline()
            if not status_line:
                raise ConnectionError("the server closed the connection")
            status = int(status_line.split()[1])
            length, close = 0, False
            while True:
                line = (await reader.readline()).decode("latin-1")
                if line in ("\r\n", "\n", ""):
                    break
                name, _, value = line.partition(":")
                name, value = name.strip().lower(), value.strip()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value.lower() == "close":
                    close = True
                elif name == "set-cookie":
                    key, _, rest = value.partition("=")
                    self.cookies[key.strip()] = rest.split(";", 1)[0]
                elif name == "transfer-encoding":
                    raise ConnectionError(f"unexpected transfer-encoding {value}")
            payload = await reader.readexactly(length) if length else b""
        except BaseException:
            await self._close()
            raise
        if close:
            await self._close()
        return LeanResponse(status, payload.decode("utf-8", "replace"))


@dataclass
class LeanResponse:
    status_code: int
    text: str


async def _client(base: str, links: list[str], until: float, seed: int,
                  results: list[tuple[str, float, int, str]], floor: bool = False,
                  lean: bool = True) -> None:
    import httpx

    rng = random.Random(seed)
    kinds, weights = list(KINDS), list(KINDS.values())
    errors = (httpx.HTTPError, OSError, ConnectionError, asyncio.TimeoutError,
              asyncio.IncompleteReadError, ValueError, IndexError)
    http: Any = (LeanClient(base) if lean else httpx.AsyncClient(base_url=base, timeout=30))
    async with http:
        while time.monotonic() < until:
            kind = "floor" if floor else rng.choices(kinds, weights)[0]
            token = rng.choice(links)
            if kind.startswith("bad_token"):
                token = _garble(token, rng)
            path = FLOOR_PATH if floor else "/freigabe/" + token
            started = time.perf_counter()
            try:
                if kind in ("page", "bad_token_get", "floor"):
                    response = await http.get(path)
                else:
                    response = await http.post(path, data={
                        "csrf": "falsch-" + str(rng.random()), "decision": "approve",
                        "comment": "Lasttest"})
                elapsed = time.perf_counter() - started
                problem = _check(kind, response.status_code, response.text)
                results.append((kind, elapsed, response.status_code, problem))
            except errors as exc:
                results.append((kind, time.perf_counter() - started, 0,
                                f"{type(exc).__name__}: {exc}"))


def _check(kind: str, status: int, html: str) -> str:
    if status >= 500:
        return f"HTTP {status}"
    if "Traceback" in html:
        return "traceback in the page"
    if status != EXPECTED[kind] and not (kind == "bad_token_get" and status in (403, 404, 410)):
        return f"HTTP {status}, expected {EXPECTED[kind]}"
    if 'lang="de"' not in html:
        return "not a German page"
    if kind == "page" and 'name="csrf"' not in html:
        return "the approval page has no form"
    return ""


async def _load(base: str, links: list[str], seconds: float, clients: int,
                floor: bool = False, lean: bool = True) -> list:
    results: list[tuple[str, float, int, str]] = []
    until = time.monotonic() + seconds
    await asyncio.gather(*(_client(base, links, until, n, results, floor, lean)
                           for n in range(clients)))
    return results


def load_process_main() -> None:
    """``--load-process``: read the job from stdin, write the raw results to stdout."""
    job = json.loads(sys.stdin.read())
    started = time.monotonic()
    results = asyncio.run(_load(job["base"], job["links"], job["seconds"], job["clients"],
                                job.get("floor", False), job.get("lean", True)))
    json.dump({"wall": time.monotonic() - started, "results": results}, sys.stdout)


# --- the server ---------------------------------------------------------------------------


def prepare(workdir: Path, database_url: str | None, gates: int) -> tuple[object, list[str],
                                                                          str]:
    """A store with ``gates`` occurrences waiting for the Magistrat; the web app and its
    approval links (path tokens)."""
    from starlette.responses import HTMLResponse

    from newsroom import approval, store
    from newsroom.catalog.keeper import CatalogKeeper
    from newsroom.catalog.validation import load_catalog
    from newsroom.rendering.render import render_occurrence
    from newsroom.settings import Settings
    from newsroom.signing import Signer
    from newsroom.sync import sync_catalog
    from newsroom.web import create_web_app

    catalog_dir = workdir / "campaigns"
    shutil.copytree(ROOT / "campaigns", catalog_dir)
    catalog = load_catalog(catalog_dir).catalog
    url = database_url or f"sqlite:///{workdir / 'newsroom.db'}"
    store.upgrade_database(url)
    engine = store.make_engine(url)
    signer = Signer("approval-load-bench-secret-key-0123456789")
    now = datetime.now(UTC)
    posts = render_occurrence(catalog, "europawahl-2029", date(2029, 6, 9))
    tokens = []
    for n in range(gates):
        day = date(2029, 6, 9) + timedelta(days=n)
        shifted = [type(p)(**{**p.__dict__, "occurrence": day}) for p in posts]
        with store.session_scope(engine) as session:
            if n == 0:
                sync_catalog(session, catalog)
            occurrence = store.get_or_create_occurrence(
                session, campaign_id="europawahl-2029", occurrence_date=day,
                first_publish_at=min(p.publish_at for p in shifted))
            store.store_rendered_posts(session, occurrence_id=occurrence.id, posts=shifted)
            occurrence_id = occurrence.id
        approval.open_gate(engine, catalog, occurrence_id=occurrence_id, now=now)
        with store.session_scope(engine) as session:
            for request in store.approval_requests(session, occurrence_id=occurrence_id):
                link = approval.approval_link(signer, request, "http://x")
                tokens.append(link.rsplit("/", 1)[1])
    # The load comes from one address over a few links: measured is the page, not the
    # rate limits (newsroom/web/guard.py), which would refuse most of it with 429.
    unlimited = {name: "" for name in ("rate_limit_address", "rate_limit_address_posts",
                                       "rate_limit_link_views", "rate_limit_link_posts")}
    # As `newsroom web` serves it: the keeper's current catalog (it looks at the folder).
    keeper = CatalogKeeper(catalog_dir, workdir / "snapshots")
    app = create_web_app(engine, lambda: keeper.catalog()[0], Settings(**unlimited),
                         signer=signer)

    async def floor() -> HTMLResponse:  # the trivial page the floor is measured on
        return HTMLResponse('<!doctype html><html lang="de"><title>ok</title></html>')

    app.add_api_route(FLOOR_PATH, floor, methods=["GET"])
    return app, tokens, url


class Server:
    """uvicorn serving ``app`` in a thread of this process on a free loopback port."""

    def __init__(self, app: object) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(
            app, host="127.0.0.1", port=self.port, lifespan="off", log_level="warning",
            log_config=None, ws="none", access_log=False, backlog=2048))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the web app did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


def decisions(database_url: str) -> int:
    from sqlalchemy import text

    from newsroom import store

    engine = store.make_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM approval_decision")).scalar_one()
    finally:
        engine.dispose()


def _load_process(job: dict) -> dict:
    load = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--load-process"],
        input=json.dumps(job), capture_output=True, text=True,
        timeout=job["seconds"] + 120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if load.returncode != 0:
        raise RuntimeError(f"the load process failed: {load.stderr[-2000:]}")
    return json.loads(load.stdout)


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run(seconds: float = 30.0, clients: int = 32, gates: int = 5,
        database_url: str | None = None, floor_seconds: float | None = None,
        client: str = "lean") -> dict:
    """Serve, measure the floor, load from a separate process, check; the figures."""
    if floor_seconds is None:
        floor_seconds = min(10.0, seconds / 3)
    load_before = _load_average()
    with tempfile.TemporaryDirectory(prefix="approval-load-") as tmp:
        app, tokens, url = prepare(Path(tmp), database_url, gates)
        with Server(app) as server:
            job = {"base": f"http://127.0.0.1:{server.port}", "links": tokens,
                   "seconds": seconds, "clients": clients, "lean": client == "lean"}
            cpu = time.process_time()  # the server's: this process only waits meanwhile
            floor = (_load_process({**job, "seconds": floor_seconds, "floor": True})
                     if floor_seconds > 0 else None)
            floor_cpu, cpu = time.process_time() - cpu, time.process_time()
            data = _load_process(job)
            cpu = time.process_time() - cpu
        decided = decisions(url)
    results = data["results"]
    latencies = sorted(r[1] for r in results)
    problems = [r for r in results if r[3]]
    by_kind: dict[str, int] = {}
    for kind, *_ in results:
        by_kind[kind] = by_kind.get(kind, 0) + 1
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    rps = round(len(results) / data["wall"], 1)
    page = _p50_p99([r[1] for r in results if r[0] == "page"])
    floor_figures: dict = {"floor_rps": None, "floor_p99_ms": None, "rps_to_floor": None,
                           "floor_errors": None}
    if floor is not None:
        floor_rps = round(len(floor["results"]) / floor["wall"], 1)
        floor_figures = {
            "floor_rps": floor_rps,
            "floor_p99_ms": (_p50_p99([r[1] for r in floor["results"]]) or [None, None])[1],
            "rps_to_floor": round(rps / floor_rps, 3) if floor_rps else None,
            "floor_errors": sum(1 for r in floor["results"] if r[3]),
            "floor_server_cpu_ms": round(floor_cpu * 1000 / max(1, len(floor["results"])), 2),
        }
    return {
        "seconds": round(data["wall"], 2), "clients": clients, "client": client,
        "links": len(tokens),
        "requests": len(results), "rps": rps,
        "p50_ms": round(quantiles[49] * 1000, 1), "p99_ms": round(quantiles[98] * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        "page_p50_ms": page[0] if page else None, "page_p99_ms": page[1] if page else None,
        # The server's CPU time per request (both cores' worth, all its threads): what the
        # page costs, less dependent on what else the machine runs than the rates.
        "server_cpu_ms": round(cpu * 1000 / max(1, len(results)), 2),
        **floor_figures,
        "load_average": {"before": load_before, "after": _load_average()},
        "errors": len(problems),
        "server_errors": sum(1 for r in problems if r[2] >= 500),
        "error_samples": sorted({f"{r[0]}: {r[3]}" for r in problems})[:5],
        "by_kind": by_kind, "p50_p99_ms_by_kind": {
            kind: _p50_p99([r[1] for r in results if r[0] == kind]) for kind in by_kind},
        "decisions_recorded": decided,
    }


def _p50_p99(latencies: list[float]) -> list[float]:
    if len(latencies) < 2:
        return [round(x * 1000, 1) for x in latencies * 2]
    q = statistics.quantiles(latencies, n=100)
    return [round(q[49] * 1000, 1), round(q[98] * 1000, 1)]


def main() -> None:
    if "--load-process" in sys.argv:
        load_process_main()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--gates", type=int, default=5,
                        help="occurrences waiting for approval (7 links each)")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--floor-seconds", type=float, default=None,
                        help="the floor's run (default: a third of --seconds, at most 10; "
                             "0: none)")
    parser.add_argument("--client", choices=("lean", "httpx"), default="lean",
                        help="the load client: a lean HTTP/1.1 one over asyncio streams, or "
                             "httpx (as the figures before 2026-12 were measured)")
    args = parser.parse_args()
    figures = run(args.seconds, args.clients, args.gates, args.database_url,
                  args.floor_seconds, args.client)
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
