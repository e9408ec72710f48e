"""The embedded stack of ``newsroom up``: everything on one machine, started by one command.

    Prefect server (subprocess, SQLite under var/prefect)
      + deployments on the "newsroom-inprocess" work pool
      + the Newsroom worker (thread)      + the approval page (thread)
      + the mail catcher (SMTP, thread)   + the stand-in channels (thread)
      + a demo campaign a few minutes ahead, with its flow run

Ctrl-C (SIGINT) or SIGTERM stops all of it, the Prefect server last (terminate, then kill).

Nothing here imports Prefect at module level: the Prefect API URL is put into the
environment before the first Prefect import (Prefect reads its settings then).

Its size (about 640 lines): the start, the health checks and the orderly stop of the
stack's processes and threads belong together (a stop undoes a start in reverse order).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from newsroom.errors import NewsroomError
from newsroom.prefect_access import (
    AUTH_STRING_FILE,
    PrefectAccessRefused,
    load_or_create_auth_string,
    require_usable_api,
)
from newsroom.progress import step
from newsroom.running_stack import (
    StackRecord,
    publishing_environment,
    remove_record,
    write_record,
)
from newsroom.settings import Settings, get_settings
from newsroom.timeutil import Duration, after

logger = logging.getLogger("newsroom.embedded")

APPROVAL_LINK = re.compile(r"https?://[^\s\"'<>]+/freigabe/[A-Za-z0-9_\-\.]+")
DEMO_PREFIX = "demo-"


class StopRequested(BaseException):
    """Raised in the main thread by the SIGINT/SIGTERM handler (like KeyboardInterrupt)."""


class StackError(NewsroomError):
    """A part of the stack could not start; the message says what to do."""


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _require_port(host: str, port: int, what: str, option: str) -> None:
    if not port_is_free(host, port):
        raise StackError(f"port {port} on {host} is in use, so the {what} cannot start; "
                         f"stop what runs there or choose another port with {option}")


# --- the Prefect server -------------------------------------------------------------------

class PrefectServer:
    """``prefect server start`` as a subprocess in its own process group."""

    def __init__(self, home: Path, *, host: str = "127.0.0.1", port: int = 4200,
                 database_url: str | None = None, log_level: str | None = None,
                 auth_string: str | None = None):
        self.home, self.host, self.port = home, host, port
        # Default: SQLite in ``home``; PostgreSQL: ``postgresql+asyncpg://…``.
        self.database_url = database_url or f"sqlite+aiosqlite:///{home / 'prefect.db'}"
        self.log_level = log_level
        # Never without authentication: the given credential, or the one kept in ``home``
        # (generated on first start, mode 0600).
        self.auth_string = auth_string or load_or_create_auth_string(
            home / AUTH_STRING_FILE)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = home / "server.log"

    @property
    def auth_string_path(self) -> Path:
        return self.home / AUTH_STRING_FILE

    def client_env(self) -> dict[str, str]:
        """What a Prefect client of this server needs in its environment."""
        return {"PREFECT_API_URL": self.api_url, "PREFECT_API_AUTH_STRING": self.auth_string}

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise StackError("the Prefect server was not started")
        return self.process.pid

    def _command(self) -> list[str]:
        # ``prefect server start`` whose SQLite writers queue instead of failing with 503
        # (see newsroom/orchestration/prefect_server.py).
        return [sys.executable, "-m", "newsroom.orchestration.prefect_server", "server", "start",
                "--host", self.host, "--port", str(self.port)]

    def start(self) -> PrefectServer:
        _require_port(self.host, self.port, "Prefect server", "--prefect-port")
        self.home.mkdir(parents=True, exist_ok=True)
        # Its database holds the Secret blocks and their encryption key; its home the API
        # credential: for this user only.
        self.home.chmod(0o700)
        env = server_environment(os.environ)
        env.update({
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_DATABASE_CONNECTION_URL": self.database_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # SQLite serialises writers: under a burst, wait for the lock instead of
            # answering 503 after the default 10 s.
            "PREFECT_SERVER_DATABASE_TIMEOUT": "60",
            "PREFECT_SERVER_API_HOST": self.host,
            "PREFECT_SERVER_API_PORT": str(self.port),
            "PREFECT_UI_API_URL": self.api_url,
            "PREFECT_API_URL": self.api_url,
            # Basic auth on the API (the UI asks for it once); the server's own client
            # (its services) sends the same credential.
            "PREFECT_SERVER_API_AUTH_STRING": self.auth_string,
            "PREFECT_API_AUTH_STRING": self.auth_string,
        })
        if self.log_level:
            env["PREFECT_LOGGING_LEVEL"] = self.log_level
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self._command(), env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_healthy(self, timeout: float = 120.0,
                     on_wait: Callable[[], None] | None = None) -> float:
        """Block until ``/api/health`` answers; the seconds it took. ``on_wait`` is
        called between the tries (progress)."""
        started = time.monotonic()
        deadline = started + timeout
        with httpx.Client(timeout=2) as client:
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise StackError(
                        f"the Prefect server ended with exit code {self.process.returncode} "
                        f"while starting; its log ({self.log_path}) ends with:\n"
                        f"{self._log_tail()}")
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise StackError(f"the Prefect server did not answer on {self.api_url} "
                                     f"within {timeout:.0f} s; see {self.log_path}")
                if on_wait is not None:
                    on_wait()
                time.sleep(0.25)

    def stop(self, timeout: float = 15.0) -> int | None:
        """Terminate the server's process group, kill it after ``timeout``; the exit code."""
        process = self.process
        if process is None or process.poll() is not None:
            return process.returncode if process else None
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                return process.wait(wait)
            except subprocess.TimeoutExpired:
                logger.warning("the Prefect server did not stop within %.0f s; killing it",
                               wait)
        return process.poll()


# What the Prefect server process inherits from ours: what Python and the system need, no
# secret of Newsroom's (NEWSROOM_SECRET_KEY, SMTP passwords, channel tokens) and none of the
# caller's PREFECT_ settings (the server gets exactly those set in PrefectServer.start).
_SERVER_ENV_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP",
    "TMP", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONUNBUFFERED", "PYTHONHASHSEED",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
})


def server_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of ``environ`` a Prefect server process may see (an allow-list)."""
    return {key: value for key, value in environ.items()
            if key in _SERVER_ENV_NAMES or key.startswith("LC_")}


def api_reachable(api_url: str, timeout: float = 3.0) -> bool:
    """True when a Prefect API answers at ``api_url`` and accepts this process's
    credential (PREFECT_API_AUTH_STRING) while refusing requests without one.

    Raises :class:`~newsroom.prefect_access.PrefectAccessRefused` (with what to do) when it
    refuses our credential or answers anyone: nothing then falls back to working without
    Prefect as if the server were down."""
    return require_usable_api(api_url, _client_auth_string(), timeout=timeout,
                              allow_open=get_settings().prefect_allow_unauthenticated)


def reachable_prefect_api(timeout: float = 2.0) -> str | None:
    """The configured PREFECT_API_URL (environment or Prefect profile) when
    :func:`api_reachable` says it may be used; None when unset or nobody answers there.
    Raises ``PrefectAccessRefused`` like :func:`api_reachable`."""
    from prefect.settings import PREFECT_API_URL

    api_url = PREFECT_API_URL.value()
    if not api_url:
        return None
    return api_url if api_reachable(api_url, timeout=timeout) else None


def _client_auth_string() -> str | None:
    if "prefect" not in sys.modules:  # before Prefect reads its settings: the environment
        return os.environ.get("PREFECT_API_AUTH_STRING") or None
    from prefect.settings import PREFECT_API_AUTH_STRING

    value = PREFECT_API_AUTH_STRING.value()
    secret = value.get_secret_value() if hasattr(value, "get_secret_value") else value
    return secret or None


# --- the stand-in channels on a fixed port --------------------------------------------------

class StandinsThread:
    """The stand-in channels (uvicorn) in a thread on ``host:port``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8900):
        from newsroom.standins.app import create_app
        from newsroom.standins.server import standin_server

        self.host, self.port = host, port
        self.server = standin_server(create_app(), host=host, port=port, quiet=True)
        self.thread = threading.Thread(target=self.server.run, name=f"standins:{port}",
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> StandinsThread:
        _require_port(self.host, self.port, "stand-in channels", "--standins-port")
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise StackError(f"the stand-in channels did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


# --- the demo campaign ----------------------------------------------------------------------

@dataclass(frozen=True)
class Demo:
    campaign_id: str
    slot: datetime  # aware
    occurrence_date: str  # ISO date in Berlin
    deadline_before: str
    path: Path


def write_demo_campaign(folder: Path, slot: datetime) -> Demo:
    """Write a one-off campaign at ``slot`` (approver: portfolio kinder-jugend) into
    ``folder``, the stack's overlay (newsroom/catalog/overlay.py): the catalog people
    edit does not get it."""
    from newsroom.timeutil import BERLIN

    local = slot.astimezone(BERLIN)
    lead = (slot - datetime.now(UTC)).total_seconds()
    # The approver needs time between the e-mail and the deadline.
    deadline_before = "1m" if lead >= 150 else "15s" if lead >= 35 else "5s"
    campaign_id = f"{DEMO_PREFIX}{local:%Y%m%d-%H%M%S}"
    path = folder / f"{campaign_id}.yaml"
    partial = folder / f".{campaign_id}.yaml.partial"
    partial.write_text(f"""\
# Written by `newsroom up` (demo) into this stack's overlay; not part of the catalog.
id: {campaign_id}
title: Demo – Aktionstag Kinder und Jugend
topic: Kinder und Jugend
kind: awareness_day
requested_by: {{portfolio: kinder-jugend}}
approval:
  approvers:
    - portfolio: kinder-jugend
  mode: one
  deadline_before: {deadline_before}
  on_timeout: cancel
slots:
  - at: "{local:%Y-%m-%d %H:%M:%S}"
    channels: [mastodon, bluesky, telegram, website]
content:
  text: "Heute ist Aktionstag Kinder und Jugend in Darmstadt – schön, dass Sie dabei \\
    sind! {{{{ hashtags }}}}"
  hashtags: [AktionstagDarmstadt]
""", encoding="utf-8")
    partial.replace(path)  # whole, for the keeper watching the overlay
    return Demo(campaign_id, slot, local.date().isoformat(), deadline_before, path)


async def create_campaign_run(deployment_id: str, campaign_id: str, occurrence_date: str
                              ) -> tuple[str, str]:
    """A flow run of the campaign deployment starting now; (run id, run name)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client

    async with get_client() as client:
        run = await client.create_flow_run_from_deployment(
            UUID(deployment_id), parameters={"campaign_id": campaign_id,
                                             "occurrence_date": occurrence_date},
            idempotency_key=f"newsroom-up-{campaign_id}-{occurrence_date}")
        return str(run.id), run.name


# --- the caught mail ------------------------------------------------------------------------

class MailWatcher(threading.Thread):
    """Prints each message the mail catcher receives (approval links prominently) and
    writes it as ``.eml`` and ``.html`` into ``folder``."""

    def __init__(self, catcher: Any, folder: Path, echo: Callable[[str], None],
                 interval: float = 0.2, *, show_links: bool = False):
        super().__init__(name="newsroom-mail-watcher", daemon=True)
        self.catcher, self.folder, self.echo, self.interval = catcher, folder, echo, interval
        # An approval link lets whoever holds it decide for its approver: printed only for
        # the demo, where the person at the terminal plays every approver.
        self.show_links = show_links
        self._halt = threading.Event()
        self.seen = 0

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def run(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)  # the saved mails hold live links
        while not self._halt.wait(self.interval):
            with self.catcher._lock:
                new = list(self.catcher.messages[self.seen:])
            for message in new:
                self.seen += 1
                try:
                    self._show(self.seen, message)
                except Exception:  # noqa: BLE001 - one odd message must not end the watcher
                    logger.exception("could not show caught mail %d", self.seen)

    def _show(self, number: int, message: Any) -> None:
        stem = self.folder / f"{datetime.now():%Y%m%d-%H%M%S}-{number:03d}"
        eml = stem.with_suffix(".eml")
        eml.write_bytes(message.as_bytes())
        html_part = message.get_body(preferencelist=("html",))
        text_part = message.get_body(preferencelist=("plain",))
        text = text_part.get_content() if text_part is not None else ""
        html_file = None
        if html_part is not None:
            html_file = stem.with_suffix(".html")
            html_file.write_text(html_part.get_content(), encoding="utf-8")
        links = list(dict.fromkeys(APPROVAL_LINK.findall(text or (
            html_part.get_content() if html_part is not None else ""))))
        lines = [f"mail to {message.get('to')}: {message.get('subject')}",
                 f"  saved: {(html_file or eml).resolve().as_uri()}"]
        if links and not self.show_links:
            lines.append(f"  ({len(links)} approval link(s) in the saved mail; not printed "
                         "outside the demo)")
        elif links:
            bar = "=" * 78
            lines = [bar, *lines, "", "  APPROVAL LINK (open it in a browser to decide):"]
            lines += [f"  >>> {link}" for link in links]
            lines.append(bar)
        self.echo("\n".join(lines))


# --- putting it together ---------------------------------------------------------------------

@dataclass
class StackOptions:
    work_pool: str
    data_dir: Path
    prefect_port: int = 4200
    web_port: int = 8100
    smtp_host: str = "127.0.0.1"
    smtp_port: int | None = 8025  # None: mail goes elsewhere, no catcher
    standins_port: int = 8900
    demo: Demo | None = None
    demo_in: Duration | None = None  # from now, as timeutil.after counts
    overlay_dir: Path | None = None  # the stack's catalog overlay: the demo goes there
    worker_poll: float = 0.5
    # The stack's settings (the process's, see newsroom.settings.use_settings), and those of
    # them a second shell's commands need, as NEWSROOM_* variables for the stack's record.
    settings: Settings | None = None
    recorded_settings: dict[str, str] = field(default_factory=dict)


def _install_signal_handlers(state: dict[str, bool], echo: Callable[[str], None]) -> None:
    def handler(signum: int, frame: Any) -> None:
        if state["stopping"]:
            echo("still stopping, please wait …")
            return
        state["stopping"] = True
        raise StopRequested(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def run_stack(options: StackOptions, echo: Callable[[str], None]) -> int:
    """Start everything, print the addresses, wait for Ctrl-C/SIGTERM, stop everything.

    Returns the exit code (0 after a requested stop).
    """
    state = {"stopping": False}
    _install_signal_handlers(state, echo)
    stack = ExitStack()
    try:
        try:
            _start(options, stack, echo)
            echo("press Ctrl-C to stop")
            while True:
                time.sleep(3600)
        except StopRequested as stop:
            state["stopping"] = True
            echo(f"\n{stop.args[0] if stop.args else 'stop'} received: stopping …")
            return 0
    finally:
        state["stopping"] = True
        # A second signal during shutdown only prints a note (the handler stays installed).
        started = time.monotonic()
        stack.close()
        echo(f"stopped ({time.monotonic() - started:.1f} s)")


def _start(options: StackOptions, stack: ExitStack, echo: Callable[[str], None]) -> None:
    host = "127.0.0.1"
    # 1. Prefect: a configured server, or our own subprocess.
    for port, what, option in ((options.web_port, "approval page", "--web-port"),
                               (options.standins_port, "stand-in channels",
                                "--standins-port")):
        _require_port(host, port, what, option)
    if options.smtp_port is not None:
        _require_port(options.smtp_host, options.smtp_port, "mail catcher", "--smtp-port")
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        try:
            reachable = api_reachable(configured)
        except PrefectAccessRefused as exc:
            raise StackError(str(exc)) from None
        if not reachable:
            raise StackError(f"PREFECT_API_URL is {configured} but no Prefect server answers "
                             "there; start it, or unset PREFECT_API_URL to let `newsroom up` "
                             "start one")
        api_url, ui_url = configured.rstrip("/"), configured.rstrip("/").removesuffix("/api")
        echo(f"Prefect server (configured, PREFECT_API_URL): {api_url}")
    else:
        if "prefect" in sys.modules:  # pragma: no cover - guarded by the CLI
            raise StackError("internal: Prefect was imported before its API URL was set")
        server = PrefectServer(options.data_dir / "prefect", host=host,
                               port=options.prefect_port,
                               auth_string=os.environ.get("PREFECT_API_AUTH_STRING") or None)
        echo(f"starting the Prefect server on {server.url} (SQLite in {server.home}; "
             "10–60 s, depending on the machine's load) …")
        server.start()
        _timed(stack, "Prefect server", lambda: _stop_server(server, echo), echo)
        assert server.process is not None  # started just above
        echo(f"Prefect server pid {server.process.pid}")
        with step("Prefect server starting") as progress:
            took = server.wait_healthy(on_wait=lambda: progress.advance(0))
        echo(f"Prefect server ready after {took:.1f} s")
        api_url, ui_url = server.api_url, server.url
        os.environ.update(server.client_env())
        os.environ["PREFECT_HOME"] = str(server.home)
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        where = (f"in {server.auth_string_path}" if server.auth_string_path.exists()
                 else "the value of PREFECT_API_AUTH_STRING")
        echo(f"Prefect API credential (user:password; the UI asks for it once): {where}")

    # Runs last but one: what Prefect still queues (logs, events) goes out while the
    # server is up; otherwise its exit handlers retry against a stopped server.
    _timed(stack, "Prefect log and event queues", _drain_prefect_queues, echo)

    # 2. Deployments and the work pool.
    from newsroom.orchestration.stack import (
        MailCatcher,
        WebServer,
        WorkerThread,
        apply_deployments,
        run_async,
    )
    from newsroom.runtime import get_runtime, reset_runtimes

    reset_runtimes()  # a runtime the CLI built before the stack's settings were decided
    settings = options.settings or get_settings()
    deployments = run_async(apply_deployments(options.work_pool))
    echo(f"deployments on work pool {options.work_pool!r}: {', '.join(sorted(deployments))}")

    # 3. The parts in threads.
    if options.smtp_port is not None:
        mail = MailCatcher(host=options.smtp_host, port=options.smtp_port).start()
        _timed(stack, "mail catcher", mail.stop, echo)
        watcher = MailWatcher(mail, options.data_dir / "mail", echo,
                              show_links=options.demo_in is not None)
        watcher.start()
        _timed(stack, "mail watcher", watcher.stop, echo)
    else:
        mail = None
    standins = StandinsThread(host, options.standins_port).start()
    _timed(stack, "stand-ins", standins.stop, echo)
    web = WebServer(get_runtime(settings), host=host, port=options.web_port)
    web.start()
    _timed(stack, "approval page", web.stop, echo)
    worker = WorkerThread(options.work_pool, poll_seconds=options.worker_poll,
                          housekeeping=True)
    worker.start()
    _timed(stack, "worker", worker.stop, echo)
    record = _record_stack(options.data_dir, api_url, ui_url, get_runtime(settings).catalog,
                           options.recorded_settings)
    # Removed first when stopping: a second shell then hears "no stack", not a half one.
    stack.callback(remove_record, options.data_dir, os.getpid())

    echo("")
    echo(f"Prefect UI:             {ui_url}")
    echo(f"Prefect API:            {api_url}")
    echo(f"approval page base:     {web.url}/freigabe/<token>  (links come by e-mail)")
    echo(f"stand-in channels:      {standins.url}/  (received posts)")
    if mail is not None:
        echo(f"mail catcher (SMTP):    {options.smtp_host}:{options.smtp_port}  "
             f"(caught mail: {(options.data_dir / 'mail').resolve().as_uri()})")
    echo(f"running stack record:   {record}  (other shells find the stack there)")

    # 4. The demo campaign, a few minutes ahead.
    if options.demo_in is not None and options.overlay_dir is not None:
        from newsroom import store
        from newsroom.sync import sync_catalog
        from newsroom.timeutil import format_local

        slot = after(datetime.now(UTC), options.demo_in).replace(microsecond=0)
        demo = write_demo_campaign(options.overlay_dir, slot)
        runtime = get_runtime(settings)
        with store.session_scope(runtime.engine) as session:
            sync_catalog(session, runtime.catalog)
        run_id, run_name = run_async(create_campaign_run(
            deployments["campaign"], demo.campaign_id, demo.occurrence_date))
        echo("")
        echo(f"demo campaign {demo.campaign_id}: publishes at {format_local(slot)} on "
             f"mastodon, bluesky, telegram, website once approved (deadline "
             f"{demo.deadline_before} before); file {demo.path}")
        echo(f"demo flow run {run_name}: {ui_url}/runs/flow-run/{run_id}")
        echo("the approval e-mail goes to the Kinder- und Jugenddezernat; its link is "
             "printed here when it arrives"
             + ("" if mail is not None else " (no mail catcher: see your mailbox)"))
        echo("or decide from the command line: newsroom approve "
             f"{demo.campaign_id} {demo.occurrence_date} --as NAME")
    echo("")


def _record_stack(data_dir: Path, api_url: str, ui_url: str, catalog: Any,
                  settings: Mapping[str, str]) -> Path:
    """Tell other shells where this stack is and what its worker publishes with
    (newsroom/running_stack.py): the environment's Newsroom settings and channel
    credentials, and ``settings`` (what the stack decided itself) over them."""
    credential_names = {account.credential.env for account in catalog.accounts.values()
                        if account.credential and account.credential.env}
    return write_record(data_dir, StackRecord(
        api_url=api_url, ui_url=ui_url, pid=os.getpid(),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        prefect_auth_string=_client_auth_string(),
        environment={**publishing_environment(os.environ, credential_names), **settings}))


def _timed(stack: ExitStack, name: str, stop: Callable[[], Any],
           echo: Callable[[str], None]) -> None:
    def call() -> None:
        started = time.monotonic()
        try:
            stop()
        finally:
            echo(f"  stopped {name} ({time.monotonic() - started:.1f} s)")

    stack.callback(call)


def _drain_prefect_queues(timeout: float = 5.0) -> None:
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for service in (APILogWorker, EventsWorker):
        try:
            service.drain_all(timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - shutting down: note it, go on
            logger.warning("could not drain %s: %s", service.__name__, exc)


def _stop_server(server: PrefectServer, echo: Callable[[str], None]) -> None:
    code = server.stop()
    echo(f"Prefect server stopped (exit code {code})")
