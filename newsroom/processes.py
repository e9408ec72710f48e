"""Processes on this host, as /proc tells them: whether one still runs, and is the same.

A pid alone may have been reused by a new process; the start time (clock ticks since
boot, field 22 of ``/proc/<pid>/stat``) tells the two apart. Used by the worker's
recovery of orphaned runs and by the send journal.
"""

from __future__ import annotations

import os

__all__ = ["process_start_ticks", "process_stat"]


def process_stat(pid: int) -> tuple[int, str] | None:
    """(start time in clock ticks since boot, state letter — ``Z`` for a zombie) of
    ``pid`` from /proc; None if it does not exist or /proc cannot say."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # The command name (field 2) is in parentheses and may hold spaces or ")".
            fields = stat.read().rsplit(b")", 1)[1].split()
        return int(fields[19]), fields[0].decode("ascii", "replace")
    except (OSError, IndexError, ValueError):
        return None


def process_start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot; /proc), or None if it does not exist.

    Without /proc (not Linux) 0 for a process that exists: only the pid is compared then.
    """
    stat = process_stat(pid)
    if stat is not None:
        return stat[0]
    if os.path.isdir("/proc/self"):
        return None  # /proc is there and has no such process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return 0
    return 0
