"""The shared HTTP layer (``Publisher._request``) against a server that kills connections
under the client: a raw HTTP/1.1 server on 127.0.0.1 whose sockets die at a chosen
moment, so each way a pooled connection can be dead is played exactly.

- The request did not go out in full (the server reset the connection while the body was
  being written): sent again on a new connection — the create too; nothing was made.
- The request went out and no answer came: a read is sent again, the create is ambiguous.
- A create on a network that does not recognise a repeat never goes out on a reused
  connection at all.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from channel_testkit import make_account
from pydantic import SecretStr

from newsroom.channels import publisher_for
from newsroom.errors import AmbiguousPublishError

pytestmark = pytest.mark.anyio

# Larger than what the two kernels' socket buffers take from a client whose server has
# stopped reading (a few MB each on Linux), so the write is still going when the reset
# arrives: "not sent in full" for certain.
LARGE_BODY = b"x" * (64 * 1024 * 1024)


@dataclass
class Seen:
    connection: int
    number: int  # the request's number on its connection, from 1
    method: str
    path: str
    body: int | None  # bytes of body read; None: only the head was read


@dataclass
class DyingServer:
    """Answers ``{"id": …}`` to everything, except where ``fate(connection, number,
    method)`` says "reset_after_head" (read the head, then reset the connection with the
    body unread) or "reset_after_body" (read it all, then reset without an answer)."""

    fate: Callable[[int, int, str], str | None]
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection, number = self.connections, 0
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                number += 1
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                length = int({k.lower(): v for k, v in headers.items()}.get(
                    "content-length", "0"))
                fate = self.fate(connection, number, method)
                if fate == "reset_after_head":
                    self.seen.append(Seen(connection, number, method, path, None))
                    _reset(writer)
                    return
                await reader.readexactly(length)
                self.seen.append(Seen(connection, number, method, path, length))
                if fate == "reset_after_body":
                    _reset(writer)
                    return
                body = json.dumps({"id": f"{connection}-{number}",
                                   "url": f"{self.url}/@stadt/{connection}-{number}"}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        finally:
            writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (linger 0), as a server that drops the connection does."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Callable[[int, int, str], str | None]],
                                            asyncio.Future[DyingServer]]]:
    servers: list[asyncio.AbstractServer] = []

    async def start(fate: Callable[[int, int, str], str | None]) -> DyingServer:
        dying = DyingServer(fate)
        server = await asyncio.start_server(dying.handle, "127.0.0.1", 0)
        servers.append(server)
        dying.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return dying

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def mastodon_on(dying: DyingServer, client: httpx.AsyncClient, idempotency: str):
    account = make_account("mastodon", "", base_url=dying.url, idempotency=idempotency)
    return publisher_for(account, client=client, credential=SecretStr("token-1234"),
                         settle_delay=0)


def second_request_on_the_first_connection(fate: str) -> Callable[[int, int, str], str | None]:
    return lambda connection, number, method: fate if (connection, number) == (1, 2) else None


async def test_a_create_not_sent_in_full_goes_again_on_a_new_connection(serve) -> None:
    dying = await serve(second_request_on_the_first_connection("reset_after_head"))
    async with httpx.AsyncClient(timeout=30) as client:
        mastodon = mastodon_on(dying, client, "recognised")  # may reuse a connection
        await mastodon._request("GET", f"{dying.url}/api/v1/instance")
        response = await mastodon._request("POST", f"{dying.url}/api/v1/statuses",
                                           content=LARGE_BODY, creates_post=True)
    assert response.json()["id"] == "2-1"
    assert [(s.connection, s.method, s.body) for s in dying.seen] == [
        (1, "GET", 0), (1, "POST", None), (2, "POST", len(LARGE_BODY))]


async def test_a_create_sent_without_an_answer_is_ambiguous_and_not_repeated(serve) -> None:
    dying = await serve(second_request_on_the_first_connection("reset_after_body"))
    async with httpx.AsyncClient(timeout=30) as client:
        mastodon = mastodon_on(dying, client, "recognised")
        await mastodon._request("GET", f"{dying.url}/api/v1/instance")
        with pytest.raises(AmbiguousPublishError, match="no answer arrived"):
            await mastodon._request("POST", f"{dying.url}/api/v1/statuses",
                                    json={"status": "Trikottag"}, creates_post=True)
    assert [(s.connection, s.method) for s in dying.seen] == [(1, "GET"), (1, "POST")]


async def test_a_read_sent_without_an_answer_goes_again_on_a_new_connection(serve) -> None:
    dying = await serve(second_request_on_the_first_connection("reset_after_body"))
    async with httpx.AsyncClient(timeout=30) as client:
        mastodon = mastodon_on(dying, client, "recognised")
        await mastodon._request("GET", f"{dying.url}/api/v1/instance")
        response = await mastodon._request("GET", f"{dying.url}/api/v1/media/7")
    assert response.json()["id"] == "2-1"
    assert [(s.connection, s.path) for s in dying.seen] == [
        (1, "/api/v1/instance"), (1, "/api/v1/media/7"), (2, "/api/v1/media/7")]
    assert mastodon._server_closes_connections  # learnt: a new connection from now on


async def test_a_create_without_repeat_recognition_never_takes_a_reused_connection(
        serve) -> None:
    """The first connection would die under a second request; the create never meets it."""
    dying = await serve(lambda connection, number, method:
                        "reset_after_body" if number >= 2 else None)
    async with httpx.AsyncClient(timeout=30) as client:
        mastodon = mastodon_on(dying, client, "ignored")
        for _ in range(3):
            await mastodon._request("GET", f"{dying.url}/api/v1/instance")
            response = await mastodon._request("POST", f"{dying.url}/api/v1/statuses",
                                               json={"status": "Trikottag"},
                                               creates_post=True)
            assert response.is_success
    posts = [s for s in dying.seen if s.method == "POST"]
    assert len(posts) == 3 and all(s.number == 1 for s in posts), dying.seen
