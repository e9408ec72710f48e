"""400 MB to every POST route of the web app, served by uvicorn in its own process:
declared (Content-Length) or chunked, each is refused with the German 413 page, the
process's memory stays within 20 MB of what it was before, and the store is unchanged.

The links are genuine (an open approval, a signed confirmation link, an invitation, an
answer link, the alert hook's bearer), so nothing but the body's size refuses them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from security_testkit import SECRET, MiB, WebProcess, make_site, post_huge, row_counts, web_process

from newsroom.web.hooks import hook_token

pytestmark = pytest.mark.slow

SIZE = 400 * MiB
ALLOWED_GROWTH = 20 * MiB


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    site = make_site(tmp_path_factory.mktemp("body-limits"))
    with web_process(site) as server:
        yield site, server
    site.engine.dispose()


def _routes(site) -> dict[str, tuple[str, dict[str, str]]]:
    return {
        "approval": (f"/freigabe/{site.approval_token}", {}),
        "manual": (f"/manual/{site.manual_token}", {}),
        "request": (f"/anfrage/{site.invite_token}", {}),
        "answer": (f"/anfrage/antwort/{site.answer_token}", {}),
        "hooks": ("/hooks/alert", {"Authorization": f"Bearer {hook_token(SECRET)}"}),
    }


class _PeakSampler:
    """The highest VmRSS seen while it runs (when VmHWM cannot be reset)."""

    def __init__(self, server: WebProcess):
        self.server, self.peak, self._stop = server, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.server.status("VmRSS"))
            self._stop.wait(0.002)

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
@pytest.mark.parametrize("route", ["approval", "manual", "request", "answer", "hooks"])
def test_400_mb_are_refused_without_growing_the_process(served, route: str,
                                                          chunked: bool) -> None:
    site, server = served
    path, headers = _routes(site)[route]
    rows = row_counts(site.engine)
    before = server.status("VmRSS")
    exact_peak = server.reset_peak()
    with _PeakSampler(server) as sampler:
        answer = post_huge(server.port, path, SIZE, chunked=chunked, headers=headers)
    peak = max(sampler.peak, server.status("VmHWM") if exact_peak else 0)

    assert answer.status == 413, (answer.status, answer.body[:300])
    page = answer.body.decode("utf-8", "replace")
    assert "Die Anfrage ist zu groß" in page and 'lang="de"' in page
    assert answer.headers.get("connection") == "close"
    assert answer.sent < SIZE // 10, "the server read on instead of refusing"
    assert peak - before <= ALLOWED_GROWTH, (
        f"{route} ({'chunked' if chunked else 'declared'}): RSS {before / MiB:.1f} MB before, "
        f"peak {peak / MiB:.1f} MB")
    assert row_counts(site.engine) == rows
    assert server.process.poll() is None
