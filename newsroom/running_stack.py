"""Where the running stack is: the record ``newsroom up`` keeps in its data dir.

Once its parts run, ``newsroom up`` writes ``<data dir>/stack.json`` (mode 0600, like the
credential files beside it) and removes it when it stops. The record holds

- the stack's Prefect API: its URL, the UI's, and the credential its clients send
  (``PREFECT_API_AUTH_STRING``);
- the process id of ``newsroom up`` (a record whose process has ended is ignored);
- the environment the stack's worker publishes with: Newsroom's settings (``NEWSROOM_*``,
  except the data dir and the catalog, which are the shell's own) and every channel
  credential the registry names (``credential.env``; the stand-ins' in the demo).

Every other ``newsroom`` command calls :func:`connect` before Prefect reads its settings.
With ``PREFECT_API_URL`` unset, or naming the recorded API, it takes the record's values
(what the shell sets itself wins), so a second shell finds the stack, talks to it with its
credential, and ``crisis start --direct`` publishes with what the worker publishes with.
``PREFECT_API_URL`` naming another API wins over the record.

:func:`connect` also turns Prefect's ephemeral mode off (Prefect's default profile turns it
on): without a reachable API a Prefect client fails at once, instead of starting a
throwaway server of its own on the side that takes minutes, locks SQLite and outlives the
command.

No Prefect import here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from newsroom.errors import NewsroomError
from newsroom.prefect_access import (
    AUTH_STRING_FILE,
    CredentialFileError,
    read_auth_string,
    read_private_file,
)

__all__ = [
    "STACK_FILE",
    "StackAlreadyRuns",
    "StackRecord",
    "connect",
    "no_api_explanation",
    "publishing_environment",
    "read_record",
    "recorded_stack_in_use",
    "refuse_second_stack",
    "remove_record",
    "write_record",
]

STACK_FILE = "stack.json"
# Prefect's own setting (alias PREFECT_SERVER_ALLOW_EPHEMERAL_MODE; this name wins over it).
EPHEMERAL_SETTING = "PREFECT_SERVER_EPHEMERAL_ENABLED"
# Where the shell's Newsroom lives and what it reads are its own, not the stack's.
_NOT_RECORDED = frozenset({"NEWSROOM_DATA_DIR", "NEWSROOM_CATALOG_DIR"})
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class StackRecordError(NewsroomError):
    """The stack record exists but cannot be read."""


class StackAlreadyRuns(NewsroomError):
    """``newsroom up`` was started a second time on the same data dir."""


@dataclass(frozen=True)
class StackRecord:
    api_url: str
    ui_url: str
    pid: int
    started_at: str  # ISO 8601, UTC
    # Secrets: never in a repr, a log line or an error message.
    prefect_auth_string: str | None = field(default=None, repr=False)
    environment: dict[str, str] = field(default_factory=dict, repr=False)


def stack_file(data_dir: Path) -> Path:
    return data_dir / STACK_FILE


def write_record(data_dir: Path, record: StackRecord) -> Path:
    """Write the record (mode 0600 from the first byte, replaced in one step)."""
    target = stack_file(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{STACK_FILE}.{os.getpid()}")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(record), handle, indent=2)
        handle.write("\n")
    os.replace(partial, target)
    return target


def _load(data_dir: Path) -> StackRecord | None:
    path = stack_file(data_dir)
    text = read_private_file(path)
    if text is None:
        return None
    try:
        return StackRecord(**json.loads(text))
    except (ValueError, TypeError) as exc:
        raise StackRecordError(f"{path} is not a stack record ({type(exc).__name__}); "
                               "delete it, `newsroom up` writes a new one") from None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive, and not ours to judge
        return True
    return True


def read_record(data_dir: Path) -> StackRecord | None:
    """The record of the stack running from ``data_dir``; None when there is none, or its
    ``newsroom up`` has ended (a stack killed without stopping leaves its record)."""
    record = _load(data_dir)
    if record is None or not _process_alive(record.pid):
        return None
    return record


def remove_record(data_dir: Path, pid: int) -> None:
    """Remove the record if process ``pid`` wrote it."""
    try:
        record = _load(data_dir)
    except (StackRecordError, CredentialFileError):
        return
    if record is not None and record.pid == pid:
        stack_file(data_dir).unlink(missing_ok=True)


def refuse_second_stack(data_dir: Path, timeout: float = 2.0) -> None:
    """Raise :class:`StackAlreadyRuns` when a stack runs from ``data_dir`` (its process
    lives and its Prefect API answers)."""
    record = read_record(data_dir)
    if record is None:
        return
    try:
        answered = httpx.get(f"{record.api_url.rstrip('/')}/health",
                             timeout=timeout).status_code == 200
    except httpx.HTTPError:
        answered = False
    if answered:
        raise StackAlreadyRuns(
            f"a stack already runs from {data_dir} (newsroom up, process {record.pid}, "
            f"Prefect API {record.api_url}): use it from this shell as it is, or stop it "
            "(Ctrl-C where it runs) first; another data dir (NEWSROOM_DATA_DIR) runs a "
            "second one")


def publishing_environment(environ: Mapping[str, str],
                           credential_names: Iterable[str]) -> dict[str, str]:
    """What the stack's worker publishes with, as recorded: Newsroom's settings and the
    channel credentials named ``credential_names`` that ``environ`` sets."""
    names = {name for name in environ
             if name.startswith("NEWSROOM_") and name not in _NOT_RECORDED}
    names.update(name for name in credential_names if name in environ)
    return {name: environ[name] for name in sorted(names)}


def _same_api(one: str, other: str) -> bool:
    return one.rstrip("/").lower() == other.rstrip("/").lower()


def connect(environ: MutableMapping[str, str], *, data_dir: Path,
            use_record: bool = True) -> list[str]:
    """Prepare ``environ`` for Prefect (before Prefect is imported): ephemeral mode off;
    the recorded stack's API, credential and publishing environment (``use_record``);
    for a Prefect API on this machine without a credential, the one ``newsroom up`` keeps
    in ``data_dir``. Returns warnings to show; values already in ``environ`` win."""
    environ[EPHEMERAL_SETTING] = "false"
    warnings: list[str] = []
    if use_record:
        try:
            record = read_record(data_dir)
        except (StackRecordError, CredentialFileError) as exc:
            warnings.append(f"the running stack's record is ignored: {exc}")
            record = None
        configured = environ.get("PREFECT_API_URL")
        if record is not None and (not configured or _same_api(configured, record.api_url)):
            environ.setdefault("PREFECT_API_URL", record.api_url)
            if record.prefect_auth_string:
                environ.setdefault("PREFECT_API_AUTH_STRING", record.prefect_auth_string)
            for name, value in record.environment.items():
                environ.setdefault(name, value)
    if environ.get("PREFECT_API_AUTH_STRING"):
        return warnings
    api_url = environ.get("PREFECT_API_URL")
    if api_url and urlsplit(api_url).hostname not in _LOCAL_HOSTS:
        return warnings  # never hand the local credential to another machine
    try:
        auth_string = read_auth_string(data_dir / "prefect" / AUTH_STRING_FILE)
    except CredentialFileError as exc:
        warnings.append(str(exc))
        return warnings
    if auth_string:
        environ["PREFECT_API_AUTH_STRING"] = auth_string
    return warnings


def recorded_stack_in_use(environ: Mapping[str, str], data_dir: Path) -> StackRecord | None:
    """The running stack whose record :func:`connect` applied to ``environ``: the one
    this process talks to and publishes like; None when there is none or the shell's
    PREFECT_API_URL names another API."""
    try:
        record = read_record(data_dir)
    except (StackRecordError, CredentialFileError):
        return None
    if record is None or not _same_api(environ.get("PREFECT_API_URL", ""), record.api_url):
        return None
    return record


def no_api_explanation(api_url: str | None, data_dir: Path) -> str:
    """Where Newsroom looked for a Prefect API and found none, and what to do."""
    todo = ("start the stack with `newsroom up` (a second shell then finds it by itself), "
            "or set PREFECT_API_URL to a running Prefect server")
    if not api_url:
        return (f"no Prefect API: PREFECT_API_URL is not set and no stack runs from "
                f"{data_dir} (`newsroom up` records its API in {stack_file(data_dir)}); "
                + todo)
    record = recorded_stack_in_use({"PREFECT_API_URL": api_url}, data_dir)
    source = (f" (recorded by `newsroom up`, process {record.pid}, in "
              f"{stack_file(data_dir)})" if record else "")
    return f"no Prefect API answers at {api_url}{source}; {todo}"
