"""Fixtures of the reliability tests: the stand-ins over real HTTP and a real SMTP server
(both once per session, wiped for each test), a migrated SQLite store per test."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_kit import FaultySmtp, SmtpServer
from sqlalchemy.engine import Engine

from newsroom.store import make_engine, upgrade_database


@pytest.fixture(scope="session")
def _smtp_server() -> Iterator[tuple[FaultySmtp, int]]:
    # aiosmtpd warns about its own deprecated attribute on every login.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    server = SmtpServer()
    with server as handler:
        yield handler, server.port


@pytest.fixture
def smtp(_smtp_server: tuple[FaultySmtp, int]) -> tuple[FaultySmtp, int]:
    """The SMTP server (handler, port), emptied and without faults for each test."""
    handler, port = _smtp_server
    handler.envelopes.clear()
    handler.set_fault(None)
    return handler, port


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'newsroom.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()
