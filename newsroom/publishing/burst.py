"""The burst: many posts fall due at the same second.

Recording a result waits while the burst goes out: :func:`current_traffic` is the running
event loop's :class:`Traffic`, which the state machine
(:mod:`newsroom.publishing.state_machine`) tells of every send it starts and finishes and
asks to be :meth:`~Traffic.quiet` before it records a result.

Just before the second, the burst's armed publications are marked for sending
(:func:`mark_for_sending`): the durable note that a request may leave from now on. Every
occurrence of the burst asks at about the same moment; the asks of one event loop within
:data:`MARK_GATHER_S` become one transaction, so the mark costs the burst one commit, not
one per post.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping

from sqlalchemy.engine import Engine

from newsroom import send_journal, store
from newsroom.store import Publication, stored_id

from .transactions import run_in_session

__all__ = ["MARK_GATHER_S", "RECORD_DEFER_MAX_S", "SendMarks", "Traffic", "current_traffic",
           "mark_for_sending"]

# How long the first ask for a mark waits for the other occurrences of the burst.
MARK_GATHER_S = 0.01

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


class SendMarks:
    """The marks for sending asked for in one event loop, for one store: gathered for
    :data:`MARK_GATHER_S` and written in one transaction (:func:`store.mark_sending`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._claims: dict[int, str] = {}
        self._batch: asyncio.Future[set[int]] | None = None
        self._writing: set[asyncio.Task[None]] = set()  # held: a loop keeps weak refs only

    async def mark(self, claims: Mapping[int, str]) -> set[int]:
        """Mark ``claims`` (publication id -> claim token); the ids that are ours to send."""
        if not claims:
            return set()
        self._claims.update(claims)
        if self._batch is None:
            self._batch = asyncio.get_running_loop().create_future()
            task = asyncio.get_running_loop().create_task(self._write(self._batch))
            self._writing.add(task)
            task.add_done_callback(self._writing.discard)
        ours = await asyncio.shield(self._batch)
        return ours & set(claims)

    async def _write(self, batch: asyncio.Future[set[int]]) -> None:
        await asyncio.sleep(MARK_GATHER_S)
        claims, self._claims, self._batch = self._claims, {}, None
        try:
            ours = await run_in_session(
                self.engine, lambda session: store.mark_sending(session, claims=claims,
                                                                sent_by=send_journal.sent_by()))
        except Exception as exc:  # every asker of the batch gets it: nothing is sent
            batch.set_exception(exc)
            batch.exception()  # retrieved: an asker that was cancelled meanwhile is not told
            return
        batch.set_result(ours)


_MARKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Engine, SendMarks]] = (
    weakref.WeakKeyDictionary())


async def mark_for_sending(engine: Engine, armed: Mapping[str, Publication]) -> set[int]:
    """Mark the armed publications (channel -> publication, from
    :func:`~newsroom.publishing.arming.arm_occurrence`) for sending, with the rest of the
    burst; returns the ids this run may send. One another run took over meanwhile is left
    out (that run sends it). Raises what the store raised: then nothing may be sent."""
    loop = asyncio.get_running_loop()
    marks = _MARKS.setdefault(loop, {})
    batcher = marks.get(engine)
    if batcher is None:
        batcher = marks[engine] = SendMarks(engine)
    return await batcher.mark({stored_id(publication): publication.claim_token or ""
                               for publication in armed.values()})
