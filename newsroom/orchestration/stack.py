"""The parts of a running Newsroom beside the Prefect server, each startable on its own.

- :func:`apply_deployments` registers the deployments of prefect.yaml (the one definition,
  also read by ``prefect deploy --all``) on a work pool, and :func:`apply_alert_automation`
  the automation that tells the office about a failed run.
- :class:`WorkerThread` runs the in-process Newsroom worker (see
``newsroom/orchestration/worker.py``).
- :class:`WebServer` serves the approval page; a settled gate resumes the waiting run, a
  signature that leaves it open shows on the run (artifact version, log line).
- :class:`MailCatcher` is a local SMTP server that keeps what it receives (the embedded
  default for approvals: the links can be read on ``/mail`` of the stand-ins page or
  in the log).

``newsroom up`` and the end-to-end tests put them together.
"""

from __future__ import annotations

import asyncio
import contextvars
import email
import email.policy
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller

from newsroom.runtime import Runtime, get_runtime
from newsroom.settings import PROJECT_ROOT

logger = logging.getLogger("newsroom.stack")

# The one definition of the deployments: prefect.yaml (what ``prefect deploy --all``
# reads); ``apply_deployments`` applies the same entries, on the pool it is given.
PREFECT_YAML = PROJECT_ROOT / "prefect.yaml"


@dataclass(frozen=True)
class DeploymentDefinition:
    """One entry of prefect.yaml's ``deployments``, as both ways of applying it use it."""

    name: str
    entrypoint: str  # "flows/campaign.py:campaign", relative to the project root
    description: str | None = None
    tags: tuple[str, ...] = ()
    # As prefect.yaml writes them (cron/interval/rrule, timezone, slug, active, …).
    schedules: tuple[dict[str, Any], ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)
    work_pool: str | None = None
    work_queue: str | None = None

    @property
    def path(self) -> str:
        return self.entrypoint.partition(":")[0]

    @property
    def attribute(self) -> str:
        return self.entrypoint.partition(":")[2]


def load_deployment_definitions(path: Path = PREFECT_YAML
                                ) -> tuple[DeploymentDefinition, ...]:
    """The deployments of prefect.yaml at ``path``."""
    import yaml

    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    definitions = []
    for entry in document.get("deployments") or ():
        pool = entry.get("work_pool") or {}
        definitions.append(DeploymentDefinition(
            name=entry["name"], entrypoint=entry["entrypoint"],
            description=entry.get("description"), tags=tuple(entry.get("tags") or ()),
            schedules=tuple(dict(s) for s in entry.get("schedules") or ()),
            parameters=dict(entry.get("parameters") or {}),
            work_pool=pool.get("name"), work_queue=pool.get("work_queue_name")))
    return tuple(definitions)


DEFINITIONS = load_deployment_definitions()
# (flow file, flow attribute, deployment name, its schedules): the shape callers unpack.
DEPLOYMENTS: tuple[tuple[str, str, str, tuple[dict[str, Any], ...]], ...] = tuple(
    (d.path, d.attribute, d.name, d.schedules) for d in DEFINITIONS)
# Deployments of earlier versions, deleted when the deployments are applied (their
# schedules would go on creating runs of flows that are gone): a run a minute each,
# replaced by the ``housekeeping`` run.
RETIRED_DEPLOYMENTS = ("approval-deadlines/approval-deadlines", "request-sweep/request-sweep")


def deployment_schedules(definition: DeploymentDefinition) -> list[dict[str, Any]]:
    """The definition's schedules as Prefect's deployment API takes them, built as
    ``prefect deploy`` builds them from prefect.yaml (a test holds both to the same)."""
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    built = []
    for config in definition.schedules:
        timezone = {"timezone": config["timezone"]} if config.get("timezone") else {}
        if config.get("cron"):
            schedule: Any = CronSchedule(cron=config["cron"], **timezone)
        elif config.get("interval"):
            schedule = IntervalSchedule(interval=timedelta(seconds=config["interval"]),
                                        **timezone)
        else:
            raise ValueError(f"deployment {definition.name}: a schedule needs cron or "
                             f"interval (prefect.yaml): {config}")
        entry: dict[str, Any] = {"schedule": schedule}
        if config.get("active") is not None:
            entry["active"] = config["active"]
        entry.update({key: config[key] for key in ("slug", "parameters") if config.get(key)})
        built.append(entry)
    return built


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def apply_deployments(work_pool: str, *, schedules: bool = True) -> dict[str, str]:
    """Create or update every deployment of prefect.yaml on ``work_pool`` (created when
    missing); name -> deployment id. ``schedules=False`` leaves every deployment without
    a schedule (tests: nothing starts behind them). Then the alert automation."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    from newsroom.orchestration.worker import WORKER_TYPE

    async with get_client() as client:
        try:
            await client.create_work_pool(WorkPoolCreate(name=work_pool, type=WORKER_TYPE))
        except ObjectAlreadyExists:
            pass
        for retired in RETIRED_DEPLOYMENTS:
            try:
                await client.delete_deployment((await client.read_deployment_by_name(
                    retired)).id)
            except ObjectNotFound:
                pass
        ids: dict[str, str] = {}
        for definition in DEFINITIONS:
            deployment = await definition_flow(definition).ato_deployment(
                name=definition.name, description=definition.description,
                tags=list(definition.tags), parameters=dict(definition.parameters),
                work_queue_name=definition.work_queue)
            deployment.entrypoint = definition.entrypoint
            wanted = deployment_schedules(definition) if schedules else []
            # None keeps what the server has; a slugged schedule is updated in place.
            deployment_id = await deployment.apply(schedules=wanted or None,
                                                   work_pool_name=work_pool)
            if not wanted:  # an empty list would keep slugged schedules: delete them
                for schedule in await client.read_deployment_schedules(deployment_id):
                    await client.delete_deployment_schedule(deployment_id, schedule.id)
            ids[definition.name] = str(deployment_id)
    await apply_alert_automation()
    return ids


def definition_flow(definition: DeploymentDefinition) -> Any:
    """The flow object of the definition's entrypoint (imported as a module)."""
    import importlib

    module = importlib.import_module(definition.path[:-3].replace("/", "."))
    return getattr(module, definition.attribute)


async def read_deployment_state() -> dict[str, dict[str, Any] | None]:
    """What the Prefect API has of each defined deployment (None: absent): name -> its
    id, entrypoint, description, tags, parameters, work pool and queue, and schedules
    written as prefect.yaml writes them. To tell what applying changed, and for tests."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    state: dict[str, dict[str, Any] | None] = {}
    async with get_client() as client:
        for definition in DEFINITIONS:
            try:
                found = await client.read_deployment_by_name(
                    f"{definition_flow(definition).name}/{definition.name}")
            except ObjectNotFound:
                state[definition.name] = None
                continue
            state[definition.name] = {
                "id": str(found.id), "entrypoint": found.entrypoint,
                "description": found.description, "tags": sorted(found.tags),
                "parameters": found.parameters, "work_pool": found.work_pool_name,
                "work_queue": found.work_queue_name,
                "schedules": sorted((_schedule_as_written(s) for s in found.schedules),
                                    key=repr)}
    return state


def _schedule_as_written(deployment_schedule: Any) -> dict[str, Any]:
    """A deployment's schedule in prefect.yaml's words (cron/interval/rrule, timezone, …)."""
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule

    schedule = deployment_schedule.schedule
    if isinstance(schedule, CronSchedule):
        written: dict[str, Any] = {"cron": schedule.cron}
    elif isinstance(schedule, IntervalSchedule):
        written = {"interval": schedule.interval.total_seconds()}
    else:
        written = {"rrule": getattr(schedule, "rrule", repr(schedule))}
    if schedule.timezone:
        written["timezone"] = schedule.timezone
    if deployment_schedule.slug:
        written["slug"] = deployment_schedule.slug
    if not deployment_schedule.active:
        written["active"] = False
    if deployment_schedule.parameters:
        written["parameters"] = deployment_schedule.parameters
    return written


async def read_alert_automation() -> dict[str, Any] | None:
    """The alert automation on the Prefect API (None: absent): its id, how many of that
    name there are, and what it does (trigger, actions)."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        found = await client.read_automations_by_name(ALERT_AUTOMATION)
    if not found:
        return None
    return {"id": str(found[0].id), "count": len(found), "spec": _automation_spec(found[0])}


ALERT_BLOCK = "newsroom-office-alerts"
ALERT_AUTOMATION = "newsroom: tell the office when a run fails"


async def apply_alert_automation(runtime: Runtime | None = None) -> str:
    """The Prefect automation that tells the office (apprise, via the web app's
    ``/hooks/alert``) when a Newsroom flow run fails or crashes; returns its id."""
    from prefect.automations import Automation, EventTrigger, Posture
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.events.actions import SendNotification
    from prefect.types import SecretDict

    runtime = runtime or get_runtime()
    block = CustomWebhookNotificationBlock(
        name="Newsroom office alerts", url=f"{runtime.base_url}/hooks/alert", method="POST",
        headers={"Authorization": "Bearer {{token}}"},
        cookies=None,  # its default, spelled out: mypy does not read Field(None, …) as one
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        secrets=SecretDict({"token": runtime.signer.alert_hook_token}),
        allow_private_urls=True)
    block_id = await block.save(ALERT_BLOCK, overwrite=True)  # updated in place
    automation = Automation(
        name=ALERT_AUTOMATION,
        description="A Newsroom flow run failed or crashed: the office is told through "
                    "apprise (tag newsroom-alerts).",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "tag",
                           "prefect.resource.id": "prefect.tag.newsroom"},
            posture=Posture.Reactive, threshold=1, within=timedelta(0)),
        actions=[SendNotification(
            block_document_id=block_id,
            subject="Newsroom: {{ flow.name }} / {{ flow_run.name }} – {{ flow_run.state.name }}",
            body=("Der Lauf {{ flow_run.name }} ({{ flow.name }}) endete mit "
                  "{{ flow_run.state.name }}: {{ flow_run.state.message }}\n"
                  "Prefect: {{ flow_run|ui_url }}"))])
    # One automation of this name, kept when it is as defined (applying again changes
    # nothing), updated in place otherwise. The client reads plain automation models
    # (prefect.events.schemas), which have no delete method of their own.
    async with get_client() as client:
        existing = await client.read_automations_by_name(ALERT_AUTOMATION)
        for duplicate in existing[1:]:
            await client.delete_automation(duplicate.id)
    if not existing:
        return str((await automation.acreate()).id)
    current = existing[0]
    if _automation_spec(current) != _automation_spec(automation):
        automation.id = current.id
        await automation.aupdate()
    return str(current.id)


def _automation_spec(automation: Any) -> dict[str, Any]:
    """What an automation does, without its id (to compare the server's with ours)."""
    from prefect.events.schemas.automations import AutomationCore

    return AutomationCore(**automation.model_dump(exclude={"id", "owner_resource"})
                          ).model_dump(exclude={"owner_resource"})


class _LoopThread(threading.Thread):
    """A thread with its own event loop running one coroutine until stopped."""

    def __init__(self, name: str):
        super().__init__(name=name, daemon=True)
        self.loop = asyncio.new_event_loop()
        self._task: asyncio.Task | None = None
        self._ready = threading.Event()
        # Prefect's settings (API URL, test harness) live in context variables: carry them.
        self._context = contextvars.copy_context()

    async def main(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def run(self) -> None:
        self._context.run(self._run)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._task = self.loop.create_task(self.main())
        self._ready.set()
        try:
            self.loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except Exception:  # noqa: BLE001 - logged, the thread ends
            logger.exception("%s stopped with an error", self.name)
        finally:
            from newsroom.delivery import close_shared_client

            try:
                self.loop.run_until_complete(close_shared_client())
            except Exception:  # noqa: BLE001 - closing while stopping, best effort
                pass
            self.loop.close()

    def stop(self, timeout: float = 15.0) -> None:
        self._ready.wait(5)
        if self._task is not None and not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(self._task.cancel)
            except RuntimeError:
                pass
        self.join(timeout)


class WorkerThread(_LoopThread):
    """The Newsroom worker polling ``work_pool``, in a thread of this process.

    ``housekeeping``: keep the pool's housekeeping run alive (``newsroom up`` does; tests
    and benches leave it off unless they are about it, so no pass acts behind them)."""

    def __init__(self, work_pool: str, *, poll_seconds: float = 0.5,
                 prefetch_seconds: float = 90.0, limit: int | None = None,
                 housekeeping: bool = False):
        super().__init__(name=f"newsroom-worker-{work_pool}")
        self.work_pool, self.poll_seconds = work_pool, poll_seconds
        self.prefetch_seconds, self.limit = prefetch_seconds, limit
        self.housekeeping = housekeeping

    async def main(self) -> None:
        from newsroom.orchestration.worker import serve_worker

        await serve_worker(self.work_pool, poll_seconds=self.poll_seconds,
                           prefetch_seconds=self.prefetch_seconds, limit=self.limit,
                           housekeeping=self.housekeeping)


class WebServer(_LoopThread):
    """The approval page (and manual confirmations) on ``host:port``."""

    def __init__(self, runtime: Runtime | None = None, *, host: str = "127.0.0.1",
                 port: int = 8100, resume_runs: bool = True):
        super().__init__(name="newsroom-web")
        from newsroom.web.app import create_web_app

        self.runtime = runtime or get_runtime()
        on_settled = on_decided = None
        if resume_runs:
            from newsroom.orchestration.gate import resume_for_gate, show_decision

            async def on_settled(status: Any) -> None:
                await resume_for_gate(status, self.runtime)

            async def on_decided(status: Any) -> None:
                await show_decision(status, self.runtime)

        on_request = None
        if resume_runs:
            from newsroom.orchestration.request_runs import start_request_run

            async def on_request(request_id: int) -> None:
                await start_request_run(request_id, self.runtime)

        runtime = self.runtime
        app = create_web_app(runtime.engine, lambda: runtime.catalog,
                             self.runtime.settings, signer=self.runtime.signer,
                             on_gate_settled=on_settled, on_gate_decided=on_decided,
                             notifier=lambda: runtime.notifier,
                             on_request_submitted=on_request)
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port,
                                                    log_level="warning", lifespan="off"))
        self.url = f"http://{host}:{port}"

    async def main(self) -> None:
        await self.server.serve()

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.is_alive():
                raise RuntimeError(f"the web app did not start on {self.url}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.join(timeout)


@dataclass
class MailCatcher:
    """A local SMTP server that keeps every message (the embedded stack's outbox)."""

    host: str = "127.0.0.1"
    port: int = 8025
    messages: list[EmailMessage] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname=self.host, port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)
        logger.info("mail to %s: %s", ", ".join(envelope.rcpt_tos), message["subject"])
        return "250 OK"

    @property
    def smtp_url(self) -> str:
        return f"smtp://{self.host}:{self.port}?from=newsroom@darmstadt.example.org"

    def start(self) -> MailCatcher:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if address in str(m.get("to", ""))]

    def wait_for(self, address: str, *, count: int = 1, timeout: float = 60.0
                 ) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.1)
        raise TimeoutError(f"no {count} message(s) to {address} within {timeout:.0f} s; "
                           f"received: {[str(m.get('to')) for m in self.messages]}")


def text_of(message: EmailMessage) -> str:
    """The plain-text part of a message."""
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def run_async(coroutine: Any) -> Any:
    """Run ``coroutine`` to completion from sync code, also where a loop is running
    (in a fresh thread that carries this thread's context: Prefect's settings)."""
    from concurrent.futures import ThreadPoolExecutor

    context = contextvars.copy_context()
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(context.run, asyncio.run, coroutine).result()
