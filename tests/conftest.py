"""Fixtures for every test: a headless Chromium (Debian's, driven by Playwright) for the
browser tests (Playwright's own browser download is not used); one fresh PostgreSQL
database per session (:mod:`pgkit`); a real Prefect server for the flow tests.

The Prefect server is started as ``newsroom up`` starts it
(``newsroom/orchestration/prefect_server.py``
as a subprocess), on a temporary SQLite database by default. With
``NEWSROOM_TEST_PREFECT=postgres`` (what ``make test-postgres`` and CI's second pass set)
it is on a fresh PostgreSQL database, and the flow tests' store is on PostgreSQL too
(:func:`newsroom_database_url`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import hypothesis  # noqa: F401 - imported early: a late import at exit can fail (CPython 3.11)
import pytest
from pgkit import fresh_database

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


# Module scope: while Playwright's sync API is open, the main thread counts as running an
# event loop (asyncio.run() refuses), so it must not outlive the browser tests' module.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module (a ``playwright.sync_api.Browser``)."""
    if not os.access(CHROMIUM, os.X_OK):  # a browser test is never skipped in silence
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs it (Debian's "
                    "chromium and chromium-driver; `make test` does that first)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def standins_url() -> Iterator[str]:
    """The stand-in channels (Mastodon, Bluesky, … APIs) over HTTP on 127.0.0.1, once per
    session."""
    from newsroom.standins import running_standins

    with running_standins() as url:
        yield url


@pytest.fixture(scope="session")
def _standin_control(standins_url: str) -> Iterator[Any]:
    from newsroom.standins import StandinControl

    with StandinControl(standins_url) as control:
        yield control


@pytest.fixture
def standins(_standin_control: Any) -> Any:
    """The stand-ins' control client (``StandinControl``), a clean slate for each test."""
    _standin_control.reset()
    return _standin_control


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped at its end)."""
    with fresh_database("newsroom_test") as url:
        yield url


ON_POSTGRES = os.environ.get("NEWSROOM_TEST_PREFECT") == "postgres"


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[Any]:
    """A real Prefect server for the session, started as ``newsroom up`` starts it
    (newsroom.orchestration.embedded.PrefectServer: SQLite, or PostgreSQL in the PostgreSQL pass;
    basic
    auth on); PREFECT_API_URL and PREFECT_API_AUTH_STRING point at it meanwhile, in every
    thread and in the environment of subprocesses. Yields the server."""
    import prefect.context
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from newsroom.orchestration.embedded import PrefectServer, StackError
    from newsroom.orchestration.stack import free_port

    with ExitStack() as stack:
        database_url = (stack.enter_context(fresh_database("prefect_test",
                                                           driver="postgresql+asyncpg"))
                        if ON_POSTGRES else None)
        home = Path(tempfile.mkdtemp(prefix="prefect-test-"))
        server = PrefectServer(home, port=free_port(), database_url=database_url).start()
        stack.callback(shutil.rmtree, home, ignore_errors=True)
        stack.callback(server.stop)
        try:
            server.wait_healthy(timeout=120)
        except StackError as exc:
            pytest.fail(f"the Prefect server did not start: {exc}", pytrace=False)
        # With authentication on, as `newsroom up` runs it: every client of the tests (the
        # worker, the web app's resume calls, the CLI, subprocesses) must send it.
        stack.enter_context(temporary_settings({PREFECT_API_URL: server.api_url,
                                                PREFECT_API_AUTH_STRING: server.auth_string}))
        environ = stack.enter_context(pytest.MonkeyPatch.context())
        for name, value in server.client_env().items():
            environ.setenv(name, value)
        # Threads started later (the worker, web servers) read the global settings
        # context, as under Prefect's own test harness.
        stack.enter_context(prefect.context._temporary_global_settings_context(
            prefect.context.get_settings_context()))
        stack.callback(_drain_prefect_senders)  # before the server stops
        yield server


def _drain_prefect_senders() -> None:
    """Send the logs and events still queued in this process, as Prefect's test harness
    does before it stops its server (else: "Error logging to API" at the end)."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        try:
            pending = APILogWorker.instance().drain()
            if inspect.isawaitable(pending):
                await pending
        except RuntimeError:
            pass  # never started
        pending = EventsWorker.drain_all()
        if inspect.isawaitable(pending):
            await pending

    run_coro_as_sync(drain())


@pytest.fixture
def newsroom_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Newsroom's store for a flow test: SQLite, or PostgreSQL in the PostgreSQL pass."""
    if ON_POSTGRES:
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'newsroom.db'}"
