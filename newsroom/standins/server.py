"""Serving the stand-ins with uvicorn: in the foreground, or in a thread for tests/bench.

``drop_after_receive`` needs to close a client's connection without an answer, which
ASGI cannot express; :class:`_UvicornDropper` finds the connection among uvicorn's open
ones by the client's address and closes (or resets) its transport. That reaches into
uvicorn's h11 protocol (``server_state.connections``, ``.client``, ``.transport``), so
the server is pinned to ``http="h11"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import uvicorn
from starlette.types import Scope

from newsroom.redaction import install_log_redaction
from newsroom.standins.app import StandinApp, create_app
from newsroom.standins.config import StandinConfig


class _UvicornDropper:
    def __init__(self, server: uvicorn.Server):
        self.server = server

    async def __call__(self, scope: Scope, reset: bool) -> bool:
        client = tuple(scope.get("client") or ())
        for protocol in list(self.server.server_state.connections):
            if getattr(protocol, "client", None) != client:
                continue
            transport = protocol.transport
            if reset:  # linger 0: close with a TCP RST, the client reads ECONNRESET
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()
            else:  # a clean FIN: "Server disconnected without sending a response"
                transport.close()
            # Let connection_lost run, so uvicorn knows not to answer.
            for _ in range(100):
                cycle = getattr(protocol, "cycle", None)
                if cycle is None or cycle.disconnected:
                    break
                await asyncio.sleep(0)
            return True
        return False


def standin_server(app: StandinApp, *, host: str, port: int, quiet: bool) -> uvicorn.Server:
    install_log_redaction()  # the stand-in Telegram's paths hold bot tokens
    config = uvicorn.Config(
        app, host=host, port=port, http="h11", ws="none", lifespan="off",
        log_level="warning" if quiet else "info", access_log=not quiet,
        log_config=None if quiet else uvicorn.config.LOGGING_CONFIG,
    )
    server = uvicorn.Server(config)
    app.dropper = _UvicornDropper(server)
    return server


def run_standins(host: str = "127.0.0.1", port: int = 8900,
                 config: StandinConfig | None = None, *, quiet: bool = False) -> None:
    """Serve all stand-ins in the foreground until interrupted. ``quiet``: no access log
    (a bench's burst: writing a log line per request is a good part of the stand-in's
    own cost)."""
    app = create_app(config)
    print(f"Newsroom stand-ins on http://{host}:{port}/  (admin page at /)", flush=True)
    standin_server(app, host=host, port=port, quiet=quiet).run()


@contextlib.contextmanager
def running_standins(config: StandinConfig | None = None, *, host: str = "127.0.0.1"
                     ) -> Iterator[str]:
    """Run the stand-ins in a background thread on a free port; yield the base URL."""
    app = create_app(config)
    with serving_in_thread(lambda port: standin_server(app, host=host, port=port, quiet=True),
                           host=host, name="standins") as url:
        yield url


@contextlib.contextmanager
def serving_in_thread(make_server: Callable[[int], uvicorn.Server], *, host: str = "127.0.0.1",
                      name: str = "uvicorn") -> Iterator[str]:
    """Run the uvicorn server ``make_server(port)`` in a thread on a free port; yield its URL.

    The socket is bound before the server starts (no race for the port), and the server is
    stopped and joined when the block ends.
    """
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it every answer stalls ~40 ms (Nagle meets delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = make_server(port)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name=f"{name}:{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {name} server did not start")
            time.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


class StandinControl:
    """A small synchronous client of the control endpoints (for tests and the bench)."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=10)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> StandinControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reset(self) -> None:
        self._client.post("/_standin/reset").raise_for_status()

    def set_faults(self, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = self._client.post("/_standin/faults", json=rules)
        response.raise_for_status()
        return response.json()["faults"]

    def faults(self) -> list[dict[str, Any]]:
        return self._client.get("/_standin/faults").json()["faults"]

    def posts(self, network: str | None = None) -> list[dict[str, Any]]:
        params = {"network": network} if network else {}
        return self._client.get("/_standin/posts", params=params).json()["posts"]

    def requests(self, network: str | None = None) -> list[dict[str, Any]]:
        params = {"network": network} if network else {}
        return self._client.get("/_standin/requests", params=params).json()["requests"]
