"""The burst: many posts fall due at the same second.

Recording a result waits while the burst goes out: :func:`current_traffic` is the running
event loop's :class:`Traffic`, which the state machine
(:mod:`newsroom.publishing.state_machine`) tells of every send it starts and finishes and
asks to be :meth:`~Traffic.quiet` before it records a result.
"""

from __future__ import annotations

import asyncio
import weakref

__all__ = ["RECORD_DEFER_MAX_S", "Traffic", "current_traffic"]

# How long recording a result may wait for the other sends of a burst to go out.
RECORD_DEFER_MAX_S = 1.5


class Traffic:
    """The sends in flight in one event loop.

    Many posts fall due at the same second. Recording each result is a database
    transaction in a worker thread that competes for the interpreter with the sends still
    going out; so a result is recorded once the burst has gone out (no send in flight) or
    after :data:`RECORD_DEFER_MAX_S`, whichever is first. The publication is "publishing"
    meanwhile: a crash in that moment is handled like any crash between sending and
    recording (a repeat where the network recognises it, else "unknown").
    """

    def __init__(self) -> None:
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def started(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def finished(self) -> None:
        self.in_flight -= 1
        if self.in_flight <= 0:
            self.in_flight = 0
            self._idle.set()

    async def quiet(self, max_wait: float = RECORD_DEFER_MAX_S) -> None:
        if self._idle.is_set():
            return
        try:
            await asyncio.wait_for(self._idle.wait(), max_wait)
        except TimeoutError:
            pass


_TRAFFIC: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Traffic] = (
    weakref.WeakKeyDictionary())


def current_traffic() -> Traffic:
    loop = asyncio.get_running_loop()
    traffic = _TRAFFIC.get(loop)
    if traffic is None:
        traffic = _TRAFFIC[loop] = Traffic()
    return traffic
