"""The chaos test, short: the Newsroom worker (its own process) SIGKILLed twice during
publication, 10 campaigns × 5 channels; nothing twice, nothing lost, every post confirmed
or reported "unknown" (with an alert to the office). The long run: bench/chaos.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from chaos import run_chaos  # noqa: E402

pytestmark = pytest.mark.slow


def test_worker_killed_during_publication_loses_nothing_and_repeats_nothing(
        prefect_server: None, tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    lines: list[str] = []
    result = run_chaos(tmp_path, api_url=PREFECT_API_URL.value(), campaigns=10, rounds=2,
                       seed=6, lead_s=8.0, kill_window=(-1.5, 0.8), final_timeout=150,
                       echo=lines.append)
    report = "\n".join(lines) + f"\n{result.summary()}"
    assert result.posts == 50
    # The kills really landed during publication: after the arming, before the end.
    assert all(k.during_publication for k in result.kills), report
    assert any(0 < k.posts_at_kill < k.expected for k in result.kills) or any(
        k.offset_s < 0 for k in result.kills), report
    assert result.duplicates == 0, f"{result.duplicate_posts}\n{report}"
    assert result.lost == 0, f"{result.lost_posts}\n{report}"
    assert result.recorded_but_absent == 0, report
    # Every publication is confirmed (at the network and recorded) or reported unknown,
    # and every unknown one was told to the office.
    assert result.confirmed + result.unknown == result.posts, report
    assert result.unknown_alerted == result.unknown, report
    # The runs the killed workers left behind were run again to their end.
    assert sum(n for state, n in result.runs.items()
               if state in ("Completed", "Failed")) == 10, report
