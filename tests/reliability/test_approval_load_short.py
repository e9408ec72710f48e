"""The approval page under concurrent load, short (the 30 s run is bench/approval_load.py):
a real uvicorn server with real approval links, a separate load process with 16
concurrent clients for ~3 s. Asserts correctness under concurrency, not speed: no 5xx,
no failed connection, every answer the expected German page, and no decision recorded
(the POSTs carried wrong CSRF tokens or garbled links)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import approval_load  # noqa: E402

pytestmark = pytest.mark.slow


def test_approval_page_under_concurrent_load() -> None:
    figures = approval_load.run(seconds=3.0, clients=16, gates=2)
    assert figures["requests"] >= 50, figures
    assert figures["server_errors"] == 0, figures
    assert figures["errors"] == 0, figures["error_samples"]
    assert set(figures["by_kind"]) == set(approval_load.KINDS), figures["by_kind"]
    assert figures["decisions_recorded"] == 0
