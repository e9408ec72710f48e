"""``prefect server start`` for Newsroom: on SQLite, write transactions wait for the lock.

    python -m newsroom.orchestration.prefect_server server start --host 127.0.0.1 --port 4200

The same command line as ``prefect``; the only difference is one change to the Prefect
server's SQLite configuration, made before the server starts (it runs uvicorn in this
process). On PostgreSQL it changes nothing.

Why: Prefect opens its API transactions on SQLite as ``BEGIN DEFERRED``. Such a
transaction reads first and takes the write lock only at its first write; when another
connection committed in between (the server's own services write every few seconds),
SQLite refuses the upgrade at once with ``SQLITE_BUSY_SNAPSHOT``, without waiting for the
busy timeout. The server answers 503, and Prefect's client retries *two seconds later*
(its backoff is ``2 ** attempt``). Measured on the embedded stack: one run-creating call
in about 200 took 1.8-2.5 s (sometimes 6 s: two refusals), which made a crisis message
miss its 2 s goal (``bench/crisis.py``) and a burst of runs answer 503s.

``BEGIN IMMEDIATE`` takes the write lock at the start, so two writers queue on SQLite's
busy timeout (``PREFECT_SERVER_DATABASE_TIMEOUT``, 60 s in the embedded stack) instead
of failing; SQLite has one writer at a time anyway. Reads outside transactions (most of
the API's, and the UI's) are not affected: WAL readers never wait for writers.
"""

from __future__ import annotations

import sys

from newsroom.orchestration.prefect_internals import make_sqlite_transactions_immediate


def immediate_sqlite_transactions() -> bool:
    """Make the Prefect server's SQLite transactions ``BEGIN IMMEDIATE``; True if it
    changed anything (False if already done)."""
    return make_sqlite_transactions_immediate()


def main() -> None:
    immediate_sqlite_transactions()
    from prefect.cli import app

    sys.argv[0] = "prefect"
    app()  # exits through SystemExit on failure, like the ``prefect`` command


if __name__ == "__main__":
    main()
