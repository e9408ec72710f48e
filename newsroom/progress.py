"""Progress where people wait (``newsroom up``'s start, ``schedule``, ``validate``).

On a terminal: rich's live display on stderr (a spinner, a bar where the total is known,
the seconds so far), gone when the work is done. Elsewhere (a pipe, a log file, CI): plain
lines on stderr, one when a wait starts only if it may be long (``announce``), then at most
one every :data:`PLAIN_EVERY` seconds while it lasts — a short wait prints nothing. What a
command prints as its result (stdout) is never touched.

The domain functions report progress through a plain callback and know nothing of this.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Protocol

__all__ = ["PLAIN_EVERY", "Step", "on_terminal", "step"]

PLAIN_EVERY = 5.0


def on_terminal(stream: IO[str] | None = None) -> bool:
    """Whether ``stream`` (default: stderr) is a terminal a person watches."""
    stream = stream or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Step(Protocol):
    def advance(self, amount: int = 1, detail: str = "") -> None: ...


class _Plain:
    def __init__(self, what: str, total: int | None, stream: IO[str], every: float):
        self.what, self.total, self.stream, self.every = what, total, stream, every
        self.done = 0
        self.started = self.last = time.monotonic()

    def advance(self, amount: int = 1, detail: str = "") -> None:
        self.done += amount
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            count = (f" {self.done}/{self.total}" if self.total is not None
                     else f" {self.done}" if self.done else "")
            self.stream.write(f"{self.what}:{count}{' – ' + detail if detail else ''}"
                              f" ({now - self.started:.0f} s)\n")
            self.stream.flush()


class _Rich:
    def __init__(self, progress, task):
        self.progress, self.task = progress, task

    def advance(self, amount: int = 1, detail: str = "") -> None:
        self.progress.update(self.task, advance=amount, detail=detail)


@contextmanager
def step(what: str, total: int | None = None, *, stream: IO[str] | None = None,
         announce: bool = False, every: float = PLAIN_EVERY) -> Iterator[Step]:
    """Show ``what`` while the block runs; ``total`` units if known (advance per unit).

    ``announce``: also print the plain line at the start (a wait known to be long)."""
    stream = stream or sys.stderr
    if not on_terminal(stream):
        if announce:
            stream.write(f"{what} …\n")
            stream.flush()
        yield _Plain(what, total, stream, every)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    columns += [TimeElapsedColumn(), TextColumn("{task.fields[detail]}")]
    with Progress(*columns, console=Console(file=stream), transient=True) as progress:
        yield _Rich(progress, progress.add_task(what, total=total, detail=""))
