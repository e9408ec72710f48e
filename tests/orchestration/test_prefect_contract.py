"""The contract of the Prefect internals Newsroom relies on.

Every private Prefect symbol Newsroom uses is wrapped in
newsroom/orchestration/prefect_internals.py (known to work: Prefect 3.9.1). One test per
symbol here checks, against the installed Prefect and without a server, that it exists,
takes the arguments and has the attributes the adapter uses and, where that is cheap,
still behaves so. A failure names the symbol and what Newsroom needs from it: after a
Prefect upgrade, that is the list of what to adapt — in the adapter only.

The last tests read the project (newsroom/, flows/, tasks/) and fail when a private Prefect
name is used anywhere but in the adapter.
"""

from __future__ import annotations

import ast
import asyncio
import contextvars
import inspect
import logging
import re
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import prefect
import pytest

from newsroom.orchestration import prefect_internals

ROOT = Path(__file__).resolve().parents[2]
ADAPTER = Path("newsroom/orchestration/prefect_internals.py")
VERSION = prefect.__version__


def changed(symbol: str, need: str) -> str:
    return f"Prefect {VERSION} changed {symbol}: {need}; see {ADAPTER}"


def parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


def class_source(klass: type) -> str:
    """A top-level class's source text, as ``inspect.getsource(klass)`` gives it but
    without ``ast``: for a class, inspect parses the whole module, and CPython 3.11.7's
    parser can fail there with "SystemError: AST constructor recursion depth mismatch"
    (python/cpython#106905, fixed in later releases), which made these checks flaky. The
    class runs from its ``class`` line to the next line at the left margin."""
    source = inspect.getsourcefile(klass)
    if source is None:
        raise OSError(f"no source file for {klass!r}")
    lines = Path(source).read_text(encoding="utf-8").splitlines(keepends=True)
    header = re.compile(rf"class {re.escape(klass.__name__)}\b")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        raise OSError(f"class {klass.__name__} is not at the top level of {source}")
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].strip() and not lines[i][0].isspace()
                and not lines[i].startswith((")", "]", "#"))), len(lines))
    return "".join(lines[start:end])


@prefect.flow(name="newsroom-contract-probe")
async def probe() -> None:
    return None


def a_deployment_run() -> Any:
    from prefect.client.schemas.objects import FlowRun

    return FlowRun(flow_id=uuid4(), deployment_id=uuid4())


def test_the_adapter_imports_no_prefect() -> None:
    """newsroom/channels/credentials.py (the domain core) imports the adapter."""
    tree = ast.parse((ROOT / ADAPTER).read_text(encoding="utf-8"))
    top_level = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    names = [alias.name for node in top_level for alias in node.names] + [
        node.module or "" for node in top_level if isinstance(node, ast.ImportFrom)]
    assert not [name for name in names if name.split(".")[0] == "prefect"], (
        f"{ADAPTER} imports Prefect at module level; the domain core imports it, so each "
        "Prefect import belongs inside the function that needs it")


# --- Secret.load(_sync=True) -------------------------------------------------------------

def test_secret_load_runs_synchronously_with_sync_true_inside_an_event_loop(monkeypatch):
    from prefect.blocks.system import Secret

    symbol = "prefect.blocks.system.Secret.load (async_dispatch's _sync keyword)"
    assert callable(getattr(Secret.load, "aio", None)), changed(
        symbol, "load is no longer dispatched between a sync and an async implementation "
        "(no .aio); load_secret_block may call it plainly")

    class SyncPathTaken(Exception):
        pass

    def no_api(*args: Any, **kwargs: Any) -> Any:
        raise SyncPathTaken(kwargs)

    monkeypatch.setattr("prefect.client.orchestration.get_client", no_api)

    async def in_a_loop() -> tuple[Any, Any]:
        with pytest.raises(SyncPathTaken) as sync:
            prefect_internals.load_secret_block("newsroom-contract-block")
        dispatched = Secret.load("newsroom-contract-block")
        is_coroutine = inspect.iscoroutine(dispatched)
        if is_coroutine:
            dispatched.close()  # never started: nothing to await
        return sync.value, is_coroutine

    sync_error, plain_is_coroutine = asyncio.run(in_a_loop())
    assert sync_error.args[0].get("sync_client") is True, changed(
        symbol, "load(name, _sync=True) inside a running event loop must load the block "
        "synchronously (with the sync client)")
    assert plain_is_coroutine, changed(
        symbol, "plain load() inside an event loop no longer returns a coroutine — check "
        "whether _sync=True is still needed")


# --- The suspension observer --------------------------------------------------------------

def test_flow_run_suspending_observer() -> None:
    from prefect._internal.observers import FlowRunSuspendingObserver

    symbol = "prefect._internal.observers.FlowRunSuspendingObserver"
    assert {"on_suspended", "polling_interval"} <= set(
        parameters(FlowRunSuspendingObserver.__init__)), changed(
        symbol, "__init__(on_suspended, polling_interval=…) builds the shared observer")
    assert hasattr(FlowRunSuspendingObserver, "__aenter__") and hasattr(
        FlowRunSuspendingObserver, "__aexit__"), changed(
        symbol, "an async context manager that starts and stops the observer")
    watch = getattr(FlowRunSuspendingObserver, "watch_flow_run_id", None)
    assert inspect.iscoroutinefunction(watch) and parameters(watch)[1:] == [
        "flow_run_id"], changed(symbol, "async watch_flow_run_id(flow_run_id) watches a run")
    unwatch = getattr(FlowRunSuspendingObserver, "remove_in_flight_flow_run_id", None)
    assert callable(unwatch) and not inspect.iscoroutinefunction(unwatch) and parameters(
        unwatch)[1:] == ["flow_run_id"], changed(
        symbol, "remove_in_flight_flow_run_id(flow_run_id) (sync) stops watching a run")
    enter = inspect.getsource(FlowRunSuspendingObserver.__aenter__)
    assert "return self" in enter, changed(
        symbol, "__aenter__ returns the observer whose watch_flow_run_id is called")


def test_mark_flow_run_suspension_requested_marks_the_registered_request() -> None:
    from prefect._flow_run_suspension import (
        FlowRunSuspensionRequest,
        mark_flow_run_suspension_requested,
        register_flow_run_suspension_request,
    )
    from prefect.states import Suspended

    symbol = "prefect._flow_run_suspension.mark_flow_run_suspension_requested"
    assert parameters(mark_flow_run_suspension_requested) == ["flow_run_id", "state"], changed(
        symbol, "the observer's on_suspended callback, called as (flow_run_id, state)")
    run_id, request = uuid4(), FlowRunSuspensionRequest()
    assert mark_flow_run_suspension_requested(uuid4(), Suspended()) is False, changed(
        symbol, "a run nobody registered is not marked (False)")
    with register_flow_run_suspension_request(run_id, request):
        assert mark_flow_run_suspension_requested(run_id, Suspended()) is True, changed(
            symbol, "marks the suspension request the engine registered for the run")
    assert request.is_requested(), changed(
        symbol, "the engine's request is marked, so it raises Pause at its next boundary")


def test_the_engine_calls_its_suspension_observer_through_the_replaceable_global(
        monkeypatch) -> None:
    import prefect.flow_engine as engine_module
    from prefect._flow_run_suspension import mark_flow_run_suspension_requested
    from prefect.states import Suspended

    name = prefect_internals.ENGINE_SUSPENSION_OBSERVER
    symbol = f"prefect.flow_engine.{name}"
    original = getattr(engine_module, name, None)
    assert original is not None, changed(symbol, "the per-run suspension observer the worker "
                                         "replaces with one shared observer")
    assert parameters(original) == ["flow_run_id", "suspension_request",
                                    "polling_interval"], changed(
        symbol, "called as (flow_run_id, suspension_request); "
        "newsroom/orchestration/suspension.py's SharedSuspensionObserver.observe takes the "
        "same arguments")
    monkeypatch.setattr(engine_module, name, original)  # restored after the test
    calls: list[tuple[Any, Any]] = []

    from contextlib import contextmanager

    @contextmanager
    def recording(flow_run_id: Any, suspension_request: Any, polling_interval: float = 10):
        calls.append((flow_run_id, suspension_request))
        yield

    assert prefect_internals.replace_engine_suspension_observer(recording) is True
    engine: Any = engine_module.AsyncFlowRunEngine(flow=probe)
    engine.flow_run = a_deployment_run()
    with engine.setup_flow_run_suspension_request() as request:
        assert calls and calls[0] == (engine.flow_run.id, request), changed(
            symbol, "the engine looks the observer up in prefect.flow_engine when a "
                    "deployment run starts (setup_flow_run_suspension_request), so "
                    "replacing the module global replaces it")
        mark_flow_run_suspension_requested(engine.flow_run.id, Suspended())
        assert request.is_requested(), changed(
            symbol, "the request passed to the observer is the one the engine registered")


# --- The flow engine ----------------------------------------------------------------------

def test_async_flow_run_engine_interface() -> None:
    from prefect.flow_engine import AsyncFlowRunEngine

    symbol = "prefect.flow_engine.AsyncFlowRunEngine"
    fields = set(getattr(AsyncFlowRunEngine, "__dataclass_fields__", {}))
    assert {"flow", "parameters", "flow_run", "logger", "_raised"} <= fields, changed(
        symbol, "a dataclass taking flow, parameters, flow_run, with logger and _raised")
    for method in ("start", "run_context"):
        assert inspect.isasyncgenfunction(
            inspect.unwrap(getattr(AsyncFlowRunEngine, method))), changed(
            symbol, f"{method}() is an async context manager")
    assert inspect.iscoroutinefunction(AsyncFlowRunEngine.call_flow_fn), changed(
        symbol, "async call_flow_fn() runs the flow function")
    assert callable(AsyncFlowRunEngine.is_running), changed(symbol, "is_running()")
    assert isinstance(inspect.getattr_static(AsyncFlowRunEngine, "state"), property), changed(
        symbol, "state is the run's state")
    assert inspect.iscoroutinefunction(AsyncFlowRunEngine.handle_crash) and parameters(
        AsyncFlowRunEngine.handle_crash)[1:] == ["exc"], changed(
        symbol, "async handle_crash(exc), which the hand-back engine overrides")


def test_run_flow_async_is_still_the_loop_the_adapter_copies() -> None:
    from prefect.flow_engine import run_flow_async

    source = " ".join(inspect.getsource(run_flow_async).split())
    for step in ("AsyncFlowRunEngine", "async with engine.start()",
                 "while engine.is_running()", "async with engine.run_context()",
                 "await engine.call_flow_fn()"):
        assert step in source, changed(
            "prefect.flow_engine.run_flow_async",
            f"no longer `{step}`; run_async_flow_handing_back repeats its loop with the "
            "hand-back engine and must follow")


def test_the_engine_ends_through_self_logger_and_handle_crash() -> None:
    from prefect.flow_engine import AsyncFlowRunEngine

    # start() enters initialize_run(), where a run's end is handled and logged (3.9.1).
    source = class_source(AsyncFlowRunEngine)
    symbol = "prefect.flow_engine.AsyncFlowRunEngine.start (its initialize_run)"
    assert "await self.handle_crash(exc)" in source, changed(
        symbol, "a cancelled run goes through self.handle_crash(exc), where the hand-back "
        "engine keeps a stopping worker's run from ending Crashed")
    assert "self.logger.log(" in source and 'msg=f"Finished in state {display_state}"' in (
        source), changed(symbol, "the run's last line, 'Finished in state …' through "
                         "self.logger, which HandedBackLog and "
                         "newsroom/orchestration/suspension.py's WaitIsNotAnError lower "
                         "from ERROR to INFO")
    assert "logging.ERROR" in source, changed(
        symbol, "an unfinished run's last line is at ERROR (else nothing to lower)")


def test_the_hand_back_engine_takes_a_cancellation_quietly() -> None:
    from prefect.flow_engine import AsyncFlowRunEngine

    engine_class = prefect_internals.handing_back_engine()
    assert issubclass(engine_class, AsyncFlowRunEngine)
    engine = engine_class(flow=probe, parameters={}, flow_run=a_deployment_run())
    records: list[logging.LogRecord] = []
    log = logging.getLogger("newsroom.test.contract.engine")

    class Recording(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Recording()
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    engine.logger = log
    stop = asyncio.CancelledError()
    try:
        asyncio.run(engine.handle_crash(stop))
        engine.logger.log(level=logging.ERROR, msg="Finished in state Running()")
    finally:
        log.removeHandler(handler)
    symbol = "prefect.flow_engine.AsyncFlowRunEngine"
    assert engine._raised is stop, changed(
        symbol, "_raised holds what ended the run (set instead of a Crashed state)")
    assert [(r.levelno, r.getMessage()) for r in records][-1] == (
        logging.INFO, "Finished here: handed back to Scheduled"), changed(
        symbol, "logger is replaceable after handle_crash; the end line becomes INFO")


def test_run_flow_sync() -> None:
    from prefect.flow_engine import run_flow_sync

    assert {"flow", "flow_run", "parameters", "return_type"} <= set(
        parameters(run_flow_sync)), changed(
        "prefect.flow_engine.run_flow_sync",
        "run_flow_sync(flow, flow_run=…, parameters=…, return_type='state') runs a sync "
        "deployment run in the worker's process")


# --- The worker ---------------------------------------------------------------------------

WORKER_HOOK_PARAMETERS = {
    "_sync_and_initialize": [],
    "_give_worker_labels_to_flow_run": ["flow_run_id"],
    "_propose_pending_state": ["flow_run"],
    "_propose_submitting_state": ["flow_run"],
    "_get_scheduled_flow_runs": [],
}


@pytest.mark.parametrize("hook", prefect_internals.WORKER_HOOKS)
def test_the_worker_hook_exists_and_is_called(hook: str) -> None:
    from prefect.workers.base import BaseWorker

    symbol = f"prefect.workers.base.BaseWorker.{hook}"
    method = getattr(BaseWorker, hook, None)
    assert inspect.iscoroutinefunction(method), changed(
        symbol, "an async method WorkerHooks overrides")
    assert parameters(method)[1:] == WORKER_HOOK_PARAMETERS[hook], changed(
        symbol, f"takes ({', '.join(WORKER_HOOK_PARAMETERS[hook])})")
    callers = class_source(BaseWorker).replace(f"def {hook}(", "")
    assert f"self.{hook}" in callers, changed(
        symbol, "BaseWorker itself calls it (sync at start and every heartbeat; labelling "
        "and claiming a run); an override nobody calls would silently do nothing")


def test_the_worker_private_attributes() -> None:
    from prefect.workers.base import BaseWorker

    from newsroom.orchestration.worker import NewsroomWorker

    worker = NewsroomWorker(work_pool_name="newsroom-contract-pool", housekeeping=False)
    symbol = "prefect.workers.base.BaseWorker"
    assert getattr(worker, "_work_pool_name", None) == "newsroom-contract-pool", changed(
        symbol + "._work_pool_name", "the pool name the worker was started with")
    assert "_client" in vars(worker) and worker._client is None, changed(
        symbol + "._client", "None until setup(); WorkerHooks.has_client reads it")
    assert worker.work_pool_name == "newsroom-contract-pool" and not worker.has_client
    assert BaseWorker.get_description.__func__(NewsroomWorker) == (  # type: ignore[attr-defined]
        NewsroomWorker.worker_description) and "_description" in vars(BaseWorker), changed(
        symbol + "._description", "get_description() returns the class's _description")


def test_the_worker_attributes_of_the_limited_poll() -> None:
    from newsroom.orchestration.worker import NewsroomWorker

    worker = NewsroomWorker(work_pool_name="newsroom-contract-pool", housekeeping=False,
                            prefetch_seconds=42, limit=3)
    symbol = "prefect.workers.base.BaseWorker"
    assert getattr(worker, "_prefetch_seconds", None) == 42, changed(
        symbol + "._prefetch_seconds", "the prefetch the worker polls with")
    assert getattr(worker, "_work_queues", None) == set(), changed(
        symbol + "._work_queues", "the set of queue names the worker polls (empty: all)")
    assert getattr(worker, "_submitting_flow_run_ids", None) == set(), changed(
        symbol + "._submitting_flow_run_ids", "the runs being submitted (skipped by a poll)")
    assert "_limiter" in vars(worker) and worker.run_limiter is None, changed(
        symbol + "._limiter", "None until setup(), then a CapacityLimiter of the limit")


def test_a_poll_fetches_no_more_runs_than_free_slots() -> None:
    import anyio

    from newsroom.orchestration.worker import NewsroomWorker

    bodies: list[dict[str, Any]] = []

    class Response:
        def json(self) -> list[Any]:
            return []

    class Client:
        async def request(self, method: str, path: str, **kwargs: Any) -> Response:
            assert (method, path) == ("POST", "/work_pools/{name}/get_scheduled_flow_runs")
            assert kwargs["path_params"] == {"name": "newsroom-contract-pool"}
            bodies.append(kwargs["json"])
            return Response()

    async def scenario() -> list[list[Any]]:
        worker = NewsroomWorker(work_pool_name="newsroom-contract-pool", housekeeping=False,
                                prefetch_seconds=30, limit=2)
        worker._client = Client()  # type: ignore[assignment]
        worker._limiter = anyio.CapacityLimiter(2)
        fetched = [await worker._get_scheduled_flow_runs()]
        worker._limiter.acquire_on_behalf_of_nowait("a")
        worker._submitting_flow_run_ids.add(uuid4())
        fetched.append(await worker._get_scheduled_flow_runs())
        worker._limiter.acquire_on_behalf_of_nowait("b")
        fetched.append(await worker._get_scheduled_flow_runs())  # full: no request
        return fetched

    assert asyncio.run(scenario()) == [[], [], []]
    assert [body["limit"] for body in bodies] == [2, 2]  # free slots (+ one being submitted)
    assert all("scheduled_before" in body and "work_queue_names" not in body
               for body in bodies)


def test_the_worker_mixin_shadows_nothing_of_prefect() -> None:
    from prefect.workers.base import BaseWorker

    source = class_source(BaseWorker)
    mine = [name for name in vars(prefect_internals.WorkerHooks)
            if not name.startswith("_") and (
                hasattr(BaseWorker, name) or re.search(rf"self\.{name}\b", source))]
    assert not mine, changed("prefect.workers.base.BaseWorker",
                             f"it now has {mine}, which WorkerHooks defines for Newsroom; "
                             "rename them in WorkerHooks")


def test_the_worker_mixin_forwards_each_hook() -> None:
    calls: list[tuple[str, Any]] = []

    class Prefects:
        async def _sync_and_initialize(self) -> None:
            calls.append(("prefect sync", None))

        async def _give_worker_labels_to_flow_run(self, flow_run_id: Any) -> None:
            calls.append(("prefect labels", flow_run_id))

        async def _propose_pending_state(self, flow_run: Any) -> bool:
            calls.append(("prefect claim", flow_run))
            return True

        async def _propose_submitting_state(self, flow_run: Any) -> None:
            calls.append(("prefect submitting", flow_run))

        async def _get_scheduled_flow_runs(self) -> list[Any]:
            calls.append(("prefect poll", None))
            return []

    class Worker(prefect_internals.WorkerHooks, Prefects):
        async def on_synced(self) -> None:
            calls.append(("synced", None))

        async def label_flow_run(self, flow_run_id: Any) -> None:
            calls.append(("label", flow_run_id))
            await self.prefect_label_flow_run(flow_run_id)

        async def claim_flow_run(self, flow_run: Any) -> bool:
            calls.append(("claim", flow_run))
            return await self.prefect_claim_flow_run(flow_run)

    run_id, flow_run = uuid4(), a_deployment_run()

    async def scenario() -> bool:
        worker = Worker()
        await worker._sync_and_initialize()
        await worker._give_worker_labels_to_flow_run(run_id)
        claimed = await worker._propose_pending_state(flow_run)
        await worker._propose_submitting_state(flow_run)
        assert await worker._get_scheduled_flow_runs() == []  # poll_limit None: Prefect's
        return claimed

    assert asyncio.run(scenario()) is True
    assert calls == [("prefect sync", None), ("synced", None), ("label", run_id),
                     ("prefect labels", run_id), ("claim", flow_run),
                     ("prefect claim", flow_run), ("prefect submitting", flow_run),
                     ("prefect poll", None)]


# --- The Prefect server's SQLite transactions ---------------------------------------------

def test_sqlite_begin_transaction_and_begin_mode() -> None:
    from prefect.server.database import configurations
    from prefect.server.database.configurations import AioSqliteConfiguration

    symbol = "prefect.server.database.configurations.AioSqliteConfiguration"
    assert parameters(AioSqliteConfiguration.begin_transaction) == [
        "self", "session", "with_for_update"], changed(
        symbol + ".begin_transaction", "(self, session, with_for_update=False), replaced by "
        "make_sqlite_transactions_immediate")
    assert parameters(prefect_internals.immediate_begin_transaction()) == parameters(
        AioSqliteConfiguration.begin_transaction)
    mode = getattr(configurations, "SQLITE_BEGIN_MODE", None)
    assert isinstance(mode, contextvars.ContextVar), changed(
        "prefect.server.database.configurations.SQLITE_BEGIN_MODE",
        "the context variable whose value becomes the BEGIN statement")
    assert "begin_sqlite_stmt" in inspect.getsource(AioSqliteConfiguration.engine), changed(
        symbol + ".engine", "emits its own BEGIN (begin_sqlite_stmt) on each transaction")

    statements: list[str] = []

    class Connection:
        def exec_driver_sql(self, statement: str) -> None:
            statements.append(statement)

    token = mode.set("IMMEDIATE")
    try:
        AioSqliteConfiguration.begin_sqlite_stmt(None, Connection())  # type: ignore[arg-type]
    finally:
        mode.reset(token)
    assert statements == ["BEGIN IMMEDIATE"], changed(
        symbol + ".begin_sqlite_stmt", "SQLITE_BEGIN_MODE='IMMEDIATE' makes it BEGIN IMMEDIATE")


def test_the_replacement_transaction_is_always_immediate() -> None:
    from prefect.server.database.configurations import SQLITE_BEGIN_MODE

    seen: list[Any] = []

    class Session:
        @asynccontextmanager
        async def begin(self):  # noqa: ANN202 - a stand-in for AsyncSession.begin
            seen.append(SQLITE_BEGIN_MODE.get())
            yield "transaction"

    async def scenario() -> Any:
        async with prefect_internals.immediate_begin_transaction()(
                None, Session(), with_for_update=False) as transaction:
            return transaction

    assert asyncio.run(scenario()) == "transaction"
    assert seen == ["IMMEDIATE"] and SQLITE_BEGIN_MODE.get() is None


# --- No private Prefect name outside the adapter ------------------------------------------

PRIVATE_TEXT = [
    r"prefect\._", r"\._internal\b", r"\b_sync\s*=\s*(True|False|None)\b",
    *(rf"\b{name}\b" for name in (
        *prefect_internals.WORKER_HOOKS, "_work_pool_name",
        prefect_internals.ENGINE_SUSPENSION_OBSERVER, "mark_flow_run_suspension_requested",
        "register_flow_run_suspension_request", "FlowRunSuspendingObserver",
        "FlowRunSuspensionRequest", "AsyncFlowRunEngine", "FlowRunEngine", "run_flow_async",
        "run_flow_sync", "handle_crash", "AioSqliteConfiguration", "SQLITE_BEGIN_MODE",
        "async_dispatch")),
]


def _project_files() -> list[Path]:
    return sorted(path for package in ("newsroom", "flows", "tasks")
                  for path in (ROOT / package).rglob("*.py")
                  if path.relative_to(ROOT) != ADAPTER)


def test_no_private_prefect_name_outside_the_adapter() -> None:
    found = [f"  {path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in _project_files()
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if any(re.search(pattern, line) for pattern in PRIVATE_TEXT)]
    assert not found, (f"private Prefect names outside {ADAPTER} (wrap them there, with a "
                       "contract test here):\n" + "\n".join(found))


def _prefect_names(tree: ast.Module) -> dict[str, Any]:
    """Local name -> the Prefect object it is bound to (imports anywhere in the module)."""
    import importlib

    bound: dict[str, Any] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "prefect":
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                if hasattr(module, alias.name):
                    bound[alias.asname or alias.name] = getattr(module, alias.name)
    return bound


def _private_names_of(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("prefect"):
            continue
        names |= {name for name in vars(klass) if name.startswith("_")
                  and not name.startswith("__")}
        try:
            names |= set(re.findall(r"self\.(_[A-Za-z]\w*)", class_source(klass)))
        except (OSError, TypeError):
            pass
    return names


def _base_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _private_uses(tree: ast.Module) -> list[tuple[int, str, str]]:
    """(line, class, name) where a class deriving from a Prefect class defines, overrides,
    reads or sets one of that class's private names."""
    prefect_names = _prefect_names(tree)
    uses = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        private: set[str] = set()
        for base in node.bases:
            target = prefect_names.get(_base_name(base) or "")
            if isinstance(target, type):
                private |= _private_names_of(target)
        for inner in ast.walk(node) if private else ():
            name = None
            if isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef):
                name = inner.name
            elif isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store):
                name = inner.id
            elif isinstance(inner, ast.Attribute) and (
                    isinstance(inner.value, ast.Call)  # super()._name
                    or isinstance(inner.value, ast.Name) and inner.value.id in ("self", "cls")):
                name = inner.attr
            if name in private:
                uses.append((getattr(inner, "lineno", 0), node.name, name))
    return uses


def test_no_subclass_of_a_prefect_class_touches_its_private_names() -> None:
    """Any other underscore attribute of a Prefect object, in a class deriving from one."""
    found = [f"  {path.relative_to(ROOT)}:{line}: {cls} uses Prefect's {name}"
             for path in _project_files()
             for line, cls, name in _private_uses(ast.parse(path.read_text(encoding="utf-8")))]
    assert not found, (f"private names of Prefect classes outside {ADAPTER} (give them a "
                       "public name there, e.g. in WorkerHooks):\n" + "\n".join(found))


def test_the_subclass_check_sees_a_private_use() -> None:
    """The check above finds what it looks for (here: the worker as it was)."""
    source = ("from prefect.workers.base import BaseWorker\n"
              "class Worker(BaseWorker[int, int, int]):\n"
              "    _description = 'x'\n"
              "    _mine = 1\n"
              "    async def _sync_and_initialize(self):\n"
              "        await super()._sync_and_initialize()\n"
              "        return self._work_pool_name, self._client, self._mine\n")
    assert sorted(name for _, _, name in _private_uses(ast.parse(source))) == [
        "_client", "_description", "_sync_and_initialize", "_sync_and_initialize",
        "_work_pool_name"]
