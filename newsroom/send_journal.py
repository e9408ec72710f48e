"""The send journal: which requests that make a post this process has begun to send.

The store's send mark (``Publication.send_started_at``) says "a request may leave from
now on"; it is written once for a whole burst, a moment before the second, because a
transaction per post would cost the burst its punctuality. A worker killed while the
burst goes out leaves every post of it marked, also the ones whose request never left,
and those are "unknown" (a person checks) unless something finer says they never went.

This is the finer thing. Each process that sends keeps an append-only file; right before
the first byte of a request that makes a post goes to the network (httpcore's
``send_request_headers.started`` trace event, see ``Publisher._request``) one line
``<publication id> <claim token>`` is written to it with a single ``write(2)``. No
``fsync``: the line is in the kernel's page cache when the call returns, and a killed
process cannot take it back — only a crash of the machine can, and that changes the boot
id. The store's mark names the journal (``Publication.sent_by``, from :func:`sender`).

A later run that finds a publication marked and still "publishing" asks
:func:`never_sent`: True only when all of these hold, else the publication is treated as
possibly sent, as before:

- the journal was written on this machine since its last boot (same boot id) and in this
  PID namespace (a container sees its own);
- its process is gone: no ``/proc/<pid>`` with the same start time, or a zombie;
- the journal file exists (it is created before any mark names it) and holds no line for
  the publication.

Then no request for it ever left, and the run takes the claim over by compare-and-set
(``store.take_over_unsent(..., marked=True)``) and sends it. Where ``/proc`` is missing
(not Linux) :func:`sender` is None and nothing changes. A publisher that sends otherwise
than through ``Publisher._request`` (e-mail over SMTP, a manual channel) says so with
``journals_sends = False`` and is never taken over this way.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from newsroom.errors import NewsroomError
from newsroom.processes import process_stat

__all__ = ["SendJournalError", "Sender", "never_sent", "note_request", "sender", "sending",
           "sent_by", "use_directory"]

logger = logging.getLogger(__name__)

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_FORMAT = "journal-v1"
# Journals of processes gone longer than this are removed when a process opens its own.
KEEP_DEAD_JOURNALS_S = 14 * 24 * 3600


class SendJournalError(NewsroomError):
    """The line could not be written: the request must not leave."""


@dataclass(frozen=True)
class Sender:
    """One sending process: where its journal is and how to tell whether it still runs."""

    boot_id: str
    pid_namespace: str
    pid: int
    start_ticks: int
    path: Path

    def token(self) -> str:
        """What the store keeps in ``Publication.sent_by``."""
        return "|".join((_FORMAT, self.boot_id, self.pid_namespace, str(self.pid),
                         str(self.start_ticks), str(self.path)))

    @classmethod
    def parse(cls, token: str | None) -> Sender | None:
        parts = (token or "").split("|", 5)
        if len(parts) != 6 or parts[0] != _FORMAT:
            return None
        try:
            return cls(parts[1], parts[2], int(parts[3]), int(parts[4]), Path(parts[5]))
        except ValueError:
            return None


@dataclass
class _Open:
    sender: Sender
    fd: int


_lock = threading.Lock()
_open: _Open | None = None
_unavailable_in: int | None = None  # the pid of a process that cannot keep a journal
_directory: Path | None = None
_current: contextvars.ContextVar[tuple[int, str] | None] = contextvars.ContextVar(
    "newsroom_send_journal_current", default=None)


def _boot_id() -> str | None:
    try:
        return _BOOT_ID.read_text(encoding="ascii").strip() or None
    except OSError:
        return None


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def sender(directory: Path) -> Sender | None:
    """This process's journal, opened (created) in ``directory`` on the first call; None
    where a journal cannot be kept (no ``/proc``, the folder not writable): then nothing
    marked by this process is ever taken for unsent."""
    global _open, _unavailable_in
    pid = os.getpid()
    with _lock:
        if _open is not None and _open.sender.pid == pid:
            return _open.sender
        if _unavailable_in == pid:  # tried once in this process: not again for every post
            return None
        _unavailable_in = pid
        boot, namespace, me = _boot_id(), _pid_namespace(), process_stat(pid)
        if boot is None or namespace is None or me is None:
            return None
        path = directory / f"{boot}-{pid}-{me[0]}.log"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            logger.warning("no send journal in %s (%s): a worker killed while sending leaves "
                           "its unsent posts for a person to check", directory, exc.strerror)
            return None
        _unavailable_in = None
        _open = _Open(Sender(boot, namespace, pid, me[0], path), fd)
        _remove_dead_journals(directory, keep=path)
        return _open.sender


def _remove_dead_journals(directory: Path, *, keep: Path) -> None:
    cutoff = time.time() - KEEP_DEAD_JOURNALS_S
    with contextlib.suppress(OSError):
        for path in directory.glob("*.log"):
            with contextlib.suppress(OSError):
                if path != keep and path.stat().st_mtime < cutoff:
                    path.unlink()


@contextlib.contextmanager
def sending(publication_id: int, claim_token: str | None) -> Iterator[None]:
    """The requests made inside are for this publication (see :func:`note_request`)."""
    reset = _current.set((publication_id, claim_token or "-"))
    try:
        yield
    finally:
        _current.reset(reset)


def note_request() -> None:
    """Write the current publication's line before its request leaves; nothing outside
    :func:`sending` or in a process without a journal. Raises :class:`SendJournalError`
    when the line cannot be written (the request must then not be sent)."""
    current = _current.get()
    opened = _open
    if current is None or opened is None:
        return
    if opened.sender.pid != os.getpid():  # a forked child: the mark names the parent's
        raise SendJournalError("send journal: this process was forked from the one that "
                               "marked the post for sending; it may not send it")
    line = f"{current[0]} {current[1]}\n".encode("ascii", "replace")
    try:
        written = os.write(opened.fd, line)
    except OSError as exc:
        raise SendJournalError(f"send journal {opened.sender.path}: {exc.strerror}") from exc
    if written != len(line):
        raise SendJournalError(f"send journal {opened.sender.path}: short write")


def never_sent(sent_by: str | None, publication_id: int) -> bool:
    """True only when the journal named by ``sent_by`` provably never began a request for
    the publication: see the module doc. False in every case of doubt."""
    who = Sender.parse(sent_by)
    if who is None or who.boot_id != _boot_id() or who.pid_namespace != _pid_namespace():
        return False
    running = process_stat(who.pid)
    if running is not None and running[0] == who.start_ticks and running[1] != "Z":
        return False  # still at it (or this very process): its result will come
    try:
        text = who.path.read_bytes()
    except OSError:
        return False  # removed, unreadable: cannot tell
    prefix = f"{publication_id} ".encode("ascii")
    return not any(line.startswith(prefix) for line in text.split(b"\n"))


def use_directory(directory: Path) -> None:
    """Keep this process's journal in ``directory`` (a runtime's data folder), unless a
    folder was named already (the first runtime's wins)."""
    global _directory
    with _lock:
        if _directory is None:
            _directory = directory


def sent_by() -> str | None:
    """This process's journal as the store keeps it (``Publication.sent_by``): in the
    folder :func:`use_directory` named, else in the settings' data folder; None where no
    journal can be kept."""
    directory = _directory
    if directory is None:
        from newsroom.settings import get_settings  # only when no runtime said where

        directory = get_settings().data_dir / "send-journal"
    who = sender(directory)
    return who.token() if who is not None else None
