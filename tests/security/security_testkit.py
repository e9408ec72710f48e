"""Helpers of the security tests of the web app's public routes: a store with a real
approval link, an invitation and an answer link; the web app in a uvicorn subprocess
(for its memory) or in a thread; a raw HTTP client that can send 400 MB; the store's
row counts."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from approval_testkit import build_catalog, load, requests_by_person, store_posts
from requests_testkit import form
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import select as sql_select

from newsroom import approval, store
from newsroom import requests as domain
from newsroom.catalog.catalog import Catalog
from newsroom.signing import MANUAL_CONFIRM, Signer
from newsroom.store.models import TABLES

ROOT = Path(__file__).resolve().parents[2]

SECRET = "security-tests-secret-key-0123456789-abcdefghijklmno"
NOW = datetime.now(UTC)
MiB = 1024 * 1024


@dataclass
class Site:
    """A migrated store on ``url`` with one link of each kind."""

    root: Path  # catalog
    data_dir: Path
    url: str
    engine: Engine
    catalog: Catalog
    signer: Signer
    approval_token: str
    manual_token: str
    invite_token: str
    answer_token: str
    occurrence_id: int


def make_site(tmp: Path, database_url: str | None = None) -> Site:
    """The test catalog (project catalog plus the approval tests' campaigns), a store with
    an open approval gate, an invitation of the Kinder- und Jugenddezernat and a request
    of it that the office asked back about (its answer link)."""
    root = build_catalog(tmp / "campaigns")
    catalog = load(root)
    url = database_url or f"sqlite:///{tmp / 'newsroom.db'}"
    store.upgrade_database(url)
    engine = store.make_engine(url)
    signer = Signer(SECRET)
    occurrence_id = store_posts(engine, catalog, "t-one")
    approval.open_gate(engine, catalog, occurrence_id=occurrence_id, now=NOW)
    request = requests_by_person(engine, occurrence_id)["benz"]
    approval_token = approval.approval_link(signer, request, "http://x").rsplit("/", 1)[1]
    manual_token, _ = signer.issue(purpose=MANUAL_CONFIRM, subject={"publication": 1,
                                                                    "post": 1},
                                   person="benz", content_hash="0" * 64,
                                   ttl=timedelta(days=1))
    requester = domain.requester_for(catalog, "portfolio", "kinder-jugend")
    invite_token = domain.invite_link(signer, "http://x", requester)[0].rsplit("/", 1)[1]
    draft = domain.check_request(form(), catalog)
    request_id = domain.submit_request(engine, tmp / "var", requester, draft,
                                       invite_nonce="setup")
    domain.ask_back(engine, request_id, question="Welches Foto?", by="admin:test")
    row, _ = domain.load_request(engine, request_id)
    answer_token = domain.answer_link(signer, "http://x", row).rsplit("/", 1)[1]
    return Site(root, tmp / "var", url, engine, catalog, signer, approval_token,
                manual_token, invite_token, answer_token, occurrence_id)


def row_counts(engine: Engine) -> dict[str, int]:
    """How many rows each table holds (the store is unchanged when these are)."""
    with store.session_scope(engine) as session:
        return {table.__tablename__: session.exec(
            sql_select(func.count()).select_from(table)).one() for table in TABLES}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the web app in its own process -------------------------------------------------------


SERVER_SCRIPT = """
import json, sys
from pathlib import Path
import uvicorn
from newsroom.catalog.validation import load_catalog
from newsroom.settings import Settings
from newsroom.signing import Signer
from newsroom.store import make_engine
from newsroom.web.app import create_web_app

config = json.loads(sys.argv[1])
catalog = load_catalog(Path(config["root"])).catalog
settings = Settings(catalog_dir=config["root"], data_dir=config["data_dir"],
                    database_url=config["url"], secret_key=config["secret"])
app = create_web_app(make_engine(config["url"]), catalog, settings,
                     signer=Signer(config["secret"]))
uvicorn.run(app, host="127.0.0.1", port=config["port"], log_level="warning")
"""


@dataclass
class WebProcess:
    process: subprocess.Popen
    url: str
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    def status(self, field: str) -> int:
        """A VmRSS/VmHWM-like line of /proc/PID/status, in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field)

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (Linux: clear_refs 5); False if not allowed."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False


@contextmanager
def web_processes(site: Site, count: int) -> Iterator[list[WebProcess]]:
    """``count`` processes serving ``create_web_app`` over the site's store with uvicorn,
    started together."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSROOM_")}
    servers = []
    for _ in range(count):
        port = free_port()
        config = {"root": str(site.root), "data_dir": str(site.data_dir), "url": site.url,
                  "secret": SECRET, "port": port}
        process = subprocess.Popen([sys.executable, "-c", SERVER_SCRIPT, json.dumps(config)],
                                   cwd=ROOT, env=env)
        servers.append(WebProcess(process, f"http://127.0.0.1:{port}", port))
    try:
        deadline = time.monotonic() + 60
        for server in servers:
            while True:
                assert server.process.poll() is None, "the web app process ended"
                try:
                    httpx.get(server.url + "/", timeout=1)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the web app did not start"
                    time.sleep(0.1)
        yield servers
    finally:
        for server in servers:
            server.process.terminate()
        for server in servers:
            try:
                server.process.wait(10)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(5)


@contextmanager
def web_process(site: Site) -> Iterator[WebProcess]:
    """``create_web_app`` over the site's store, served by uvicorn in a subprocess."""
    with web_processes(site, 1) as (server,):
        yield server


# --- a raw client for huge bodies ---------------------------------------------------------


@dataclass
class RawAnswer:
    status: int | None  # None: no answer arrived
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the server let us send before it answered


def post_huge(port: int, path: str, size: int, *, chunked: bool,
              headers: dict[str, str] | None = None, timeout: float = 30.0) -> RawAnswer:
    """POST ``size`` bytes to ``path``: declared (Content-Length) or chunked, sending until
    the server answers, and read its answer. Sends while watching for the answer, so a
    server that refuses early is heard before it closes the connection."""
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
            "Content-Type: application/x-www-form-urlencoded"]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    piece = b"a" * (64 * 1024)
    frame = (f"{len(piece):x}\r\n".encode() + piece + b"\r\n") if chunked else piece
    count = -(-size // len(piece))
    frames = iter([frame] * count + ([b"0\r\n\r\n"] if chunked else []))
    received = b""
    sent = 0
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sock.setblocking(False)
        pending = b""
        closed = False
        while time.monotonic() < deadline and not closed:
            if not pending:
                pending = next(frames, b"")
                if not pending:
                    break  # all sent: read the answer
                sent += len(piece) if pending is frame else 0
            readable, writable, _ = select.select([sock], [sock], [], 1.0)
            if readable:
                try:
                    data = sock.recv(65536)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                if not data:
                    closed = True
                received += data
                if b"\r\n\r\n" in received:
                    break  # the server answered: stop sending
            if writable:
                try:
                    pending = pending[sock.send(pending):]
                except (BrokenPipeError, ConnectionResetError):
                    break
        sock.setblocking(True)
        sock.settimeout(5)
        while not closed:
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, TimeoutError, OSError):
                break
            if not data:
                break
            received += data
            if _complete(received):
                break
    return _parse(received, sent)


def _complete(raw: bytes) -> bool:
    if b"\r\n\r\n" not in raw:
        return False
    head, body = raw.split(b"\r\n\r\n", 1)
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return len(body) >= int(value)
    return False


def _parse(raw: bytes, sent: int) -> RawAnswer:
    if b"\r\n\r\n" not in raw:
        return RawAnswer(None, {}, raw, sent)
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawAnswer(int(lines[0].split()[1]), headers, body, sent)
