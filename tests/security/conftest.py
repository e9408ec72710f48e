"""The security tests reuse the approval, request and flow tests' helpers (their catalog with
test campaigns, forms, images): their folders join the import path here."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parents[1]
for helpers in ("approval", "requests_office", "orchestration"):
    if str(TESTS / helpers) not in sys.path:
        sys.path.insert(0, str(TESTS / helpers))


class _OpenApi(BaseHTTPRequestHandler):
    """A Prefect API without authentication, as far as a client can tell: 200 to all."""

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = b"0"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def open_api() -> Iterator[str]:
    """The API URL of a server on 127.0.0.1 that answers anyone (see :class:`_OpenApi`)."""
    from newsroom.orchestration.stack import free_port

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _OpenApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()
