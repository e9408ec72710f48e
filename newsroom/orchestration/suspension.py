"""One watcher of external suspensions for all flow runs of a Newsroom worker.

Prefect's flow engine (3.9) notices a run that is suspended from outside (API, UI) while
it runs: for every deployment run it starts a suspension observer of its own, which is a
new thread with its own event loop, its own API client (an SSL context each), its own
events websocket and a 0.2 s wake-up loop, and it *blocks the calling thread* until that
observer has read the run from the API. That fits a process per run. In the Newsroom
worker, where many runs share one process and one event loop, it meant one thread,
loop, client and websocket per running campaign, and a stall of the shared loop at the
start of every run — at the second when forty campaigns publish, each start held up the
others' sends.

:func:`install` replaces it, in this process only, with one shared
:class:`~newsroom.orchestration.prefect_internals.SuspensionObserver` (the same observer
Prefect uses: events stream with a polling fallback) on one background thread that
watches every running flow run. Nothing blocks: a run starts at once and is watched
from the moment the observer has read its state. What it does on a suspension is what
Prefect does: it marks the run's suspension request, and the engine raises ``Pause`` at
the next orchestration boundary.

It relies on Prefect internals (newsroom/orchestration/prefect_internals.py); when they
are not there (another Prefect version), :func:`install` leaves Prefect's own in place
and says so in the log.

:func:`log_waits_as_info`: Prefect's async flow engine ends every run with "Finished in
state …", at ERROR for every state but Completed (the end of its ``start``), so a run
that suspends to wait for approval showed a red ERROR line in the UI. A waiting run has not
failed: its line is INFO. The worker installs it; a suspending flow does too, for when it
runs elsewhere (a process worker).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from newsroom.orchestration.prefect_internals import (
    ENGINE_SUSPENSION_OBSERVER,
    SuspensionObserver,
    replace_engine_suspension_observer,
)

logger = logging.getLogger("newsroom.worker.suspension")


class SharedSuspensionObserver:
    """A :class:`SuspensionObserver` on a thread of its own, for all runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._observer: Any = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._failed = False

    def _start(self) -> asyncio.AbstractEventLoop | None:
        with self._lock:
            if self._loop is not None or self._failed:
                return self._loop
            ready = threading.Event()
            # The starter's context: Prefect's settings (API URL, credential) may live
            # there rather than in the environment.
            context = contextvars.copy_context()
            thread = self._thread = threading.Thread(
                target=context.run, args=(self._run, ready), daemon=True,
                name="newsroom-suspension-observer")
            thread.start()
            ready.wait(timeout=30)
            if self._loop is None:
                self._failed = True
                logger.warning("the suspension observer did not start; runs suspended from "
                               "outside (API, UI) are noticed only when they end")
            return self._loop

    def _run(self, ready: threading.Event) -> None:
        async def main() -> None:
            try:
                async with SuspensionObserver() as observer:
                    self._observer = observer
                    self._stop = asyncio.Event()
                    self._loop = asyncio.get_running_loop()
                    ready.set()
                    await self._stop.wait()  # until stop(): the last worker here ended
            finally:
                ready.set()

        try:
            asyncio.run(main())
        except Exception:  # noqa: BLE001 - the runs go on without external suspension
            logger.warning("the suspension observer stopped", exc_info=True)
            with self._lock:
                self._failed = True
        finally:
            with self._lock:
                self._loop, self._observer, self._stop = None, None, None

    def stop(self, timeout: float = 10.0) -> None:
        """End the observer (its websocket and client) while the Prefect server is still
        there; the next run started in this process starts it again."""
        with self._lock:
            loop, stop, thread = self._loop, self._stop, self._thread
            self._thread = None
        if loop is not None and stop is not None:
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop closed meanwhile
                pass
        if thread is not None:
            thread.join(timeout)

    @contextmanager
    def observe(self, flow_run_id: UUID, suspension_request: Any,
                polling_interval: float = 10) -> Iterator[None]:
        """Stand-in for the flow engine's own suspension observer of one run
        (:func:`~newsroom.orchestration.prefect_internals.replace_engine_suspension_observer`).

        ``suspension_request`` is registered by the engine itself, which is where the
        observer's callback finds it.
        """
        loop = self._start()
        if loop is None or self._observer is None:
            yield
            return
        observer = self._observer
        watch = asyncio.run_coroutine_threadsafe(observer.watch(flow_run_id), loop)
        watch.add_done_callback(_log_failure)
        try:
            yield
        finally:
            watch.cancel()
            try:
                loop.call_soon_threadsafe(observer.unwatch, flow_run_id)
            except RuntimeError:  # the observer stopped meanwhile (its loop is closed)
                pass


def _log_failure(future: Any) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.debug("watching a flow run for suspension failed: %s", future.exception())


_SHARED: SharedSuspensionObserver | None = None
_USERS = 0
_USERS_LOCK = threading.Lock()


def install() -> bool:
    """Use one shared suspension observer for the flow runs of this process (a worker
    calls it when it starts, and :func:`release` when it stops); True if installed."""
    global _SHARED, _USERS

    with _USERS_LOCK:
        _USERS += 1
    if _SHARED is not None:
        return True
    shared = SharedSuspensionObserver()
    if not replace_engine_suspension_observer(shared.observe):
        logger.info("this Prefect version has no %s; keeping Prefect's own suspension "
                    "watching", ENGINE_SUSPENSION_OBSERVER)
        return False
    _SHARED = shared
    return True


def release() -> None:
    """A worker of this process stopped; the last one stops the observer (before the
    Prefect server it talks to goes away)."""
    global _USERS
    with _USERS_LOCK:
        _USERS = max(0, _USERS - 1)
        last = _USERS == 0
    if last and _SHARED is not None:
        _SHARED.stop()


# The state's str() is its name and, where it differs, its type: Suspended(type=PAUSED);
# pause_flow_run's is Paused().
_FINISHED_WAITING = re.compile(r"Finished in state (Suspended|Paused)\(")


class WaitIsNotAnError(logging.Filter):
    """Lowers Prefect's "Finished in state Suspended(…)" / "Paused(…)" from ERROR to INFO
    (every handler after it sees INFO: the API's run log and the console)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and _FINISHED_WAITING.match(str(record.msg)):
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return True


def log_waits_as_info() -> None:
    """Install :class:`WaitIsNotAnError` on Prefect's flow-run logger (once per process)."""
    flow_runs = logging.getLogger("prefect.flow_runs")
    if not any(isinstance(f, WaitIsNotAnError) for f in flow_runs.filters):
        flow_runs.addFilter(WaitIsNotAnError())
