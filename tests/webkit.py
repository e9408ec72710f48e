"""One way for tests to serve an ASGI app over real HTTP: uvicorn in a thread, on the same
helper the stand-ins run on (``newsroom.standins.server.serving_in_thread``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn

from newsroom.standins.server import serving_in_thread


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 at a free port; yield its base URL."""
    def make_server(port: int) -> uvicorn.Server:
        return uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off",
                                             log_level="warning", log_config=None, ws="none"))

    with serving_in_thread(make_server, name="web app") as url:
        yield url
