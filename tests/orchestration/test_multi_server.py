"""Beyond one machine (issue 5): several Prefect server processes on one PostgreSQL
database with Redis messaging, and the stock ``process`` work pool — what
docs/DEPLOYMENT.md describes, run for real.

The cluster (module scope): two API servers (``prefect server start --no-services`` on
two free ports, "A" and "B") and one ``prefect server services start`` process, all on a
fresh PostgreSQL database (127.0.0.1:5432) and on Redis at 127.0.0.1:6379, database
:data:`REDIS_DB` (flushed before and after; nothing else in Redis is touched), configured
with exactly the environment of docs/DEPLOYMENT.md (:func:`cluster_environment`).

- :func:`test_two_api_servers_and_a_services_process_work_as_one`: Newsroom's
  deployments applied through A, one Newsroom worker polling A and one polling B; runs
  created through B: a pre-approved campaign is published exactly once; a campaign
  suspended for approval is resumed by the approval page (which talks to A); a run that
  fails raises the office alert — the automation is evaluated in the services process,
  which sees the failure event only through Redis (the API servers run no services).
- :func:`test_the_stock_process_pool_publishes_every_campaign_once`: the deployments on a
  ``prefect work-pool create --type process`` pool, two ``prefect worker start --type
  process --limit 2`` subprocesses (one per API server), four pre-approved campaigns due
  at the same time: each run its own process, both workers busy, each campaign published
  exactly once, none lost. Entrypoints as module paths (:func:`use_module_entrypoints`).

They run only in CI's PostgreSQL pass (``make test-postgres``, ``NEWSROOM_TEST_PREFECT=
postgres``): they need PostgreSQL anyway and start their own servers, so the default pass
skips them rather than run them twice. Redis must be reachable and ``prefect-redis``
installed (the ``test`` extra): either missing fails them, it does not skip them.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from uuid import UUID

import httpx
import pytest
from flow_testkit import (
    ON_POSTGRES,
    ROOT,
    create_run,
    flow_stack,
    run_state,
    wait_done,
    wait_for,
    wait_for_state,
    write_campaign,
)
from pgkit import fresh_database

from newsroom import store
from newsroom.orchestration.stack import (
    DEPLOYMENTS,
    MailCatcher,
    WorkerThread,
    apply_deployments,
    free_port,
    run_async,
)
from newsroom.runtime import get_runtime, reset_runtimes
from newsroom.standins import StandinControl, running_standins
from newsroom.standins.config import STANDIN_CREDENTIAL_ENV
from newsroom.timeutil import BERLIN

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(not ON_POSTGRES, reason="runs in the PostgreSQL pass only "
                       "(make test-postgres / NEWSROOM_TEST_PREFECT=postgres)"),
]

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_DB = 11  # this module's own Redis database: flushed before and after
POOL = "newsroom-multi"
PROCESS_POOL = "newsroom-multi-process"
LINK = re.compile(r"http://127\.0\.0\.1:\d+/freigabe/[A-Za-z0-9_\-\.]+")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
APPROVER_MAIL = "buergermeisterin@example.org"  # kinder-jugend
OFFICE_MAIL = "kommunikation@example.org"
PREFECT = str(Path(sys.executable).with_name("prefect"))
CLUSTER_AUTH = f"newsroom:{secrets.token_urlsafe(24)}"


def cluster_environment(database_url: str, home: Path) -> dict[str, str]:
    """The environment of every server process: docs/DEPLOYMENT.md, "Several Prefect
    server processes (Redis)"."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_HOST": REDIS_HOST,
        "PREFECT_REDIS_MESSAGING_PORT": str(REDIS_PORT),
        "PREFECT_REDIS_MESSAGING_DB": str(REDIS_DB),
        "PREFECT_SERVER_DOCKET_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
        # Basic auth on every API server; the services process is a client of A.
        "PREFECT_SERVER_API_AUTH_STRING": CLUSTER_AUTH,
        "PREFECT_API_AUTH_STRING": CLUSTER_AUTH,
    })
    return env


class Proc:
    """A subprocess in its own process group, its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path,
                 cwd: Path | None = None):
        self.name, self.log = name, log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(command, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def tail(self, lines: int = 25) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            pytest.fail(f"{self.name} ended with exit code {self.process.returncode}; its "
                        f"log ends with:\n{self.tail()}", pytrace=False)

    def stop(self, timeout: float = 15.0) -> None:
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            if self.process.poll() is not None:
                return
            try:
                os.killpg(self.process.pid, sig)
                self.process.wait(wait)
            except ProcessLookupError:
                return
            except subprocess.TimeoutExpired:
                continue


def wait_healthy(proc: Proc, api_url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            proc.check_alive()
            try:
                if client.get(f"{api_url}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
    pytest.fail(f"{proc.name} did not answer on {api_url} within {timeout:.0f} s:\n"
                f"{proc.tail()}", pytrace=False)


def _redis():
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_HOST}:{REDIS_PORT}: {exc}",
                    pytrace=False)
    return client


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[SimpleNamespace]:
    try:
        import prefect_redis  # noqa: F401
    except ImportError:
        pytest.fail("prefect-redis is missing: pip install -e '.[test]'", pytrace=False)
    redis_client = _redis()
    redis_client.flushdb()
    home = tmp_path_factory.mktemp("multi-server")
    procs: list[Proc] = []
    with fresh_database("prefect_multi", driver="postgresql+asyncpg") as database_url:
        env = cluster_environment(database_url, home / "prefect")
        try:
            urls = {}
            for name in ("a", "b"):
                port = free_port()
                urls[name] = f"http://127.0.0.1:{port}/api"
                proc = Proc(f"API server {name.upper()}",
                            [PREFECT, "server", "start", "--no-services", "--host", "127.0.0.1",
                             "--port", str(port)],
                            {**env, "PREFECT_API_URL": urls[name],
                             "PREFECT_UI_API_URL": urls[name]},
                            home / f"server-{name}.log")
                procs.append(proc)
                # A migrates the fresh database; B starts when it is done.
                wait_healthy(proc, urls[name])
            services = Proc("services", [PREFECT, "server", "services", "start"],
                            {**env, "PREFECT_API_URL": urls["a"]}, home / "services.log")
            procs.append(services)
            time.sleep(3)
            services.check_alive()
            yield SimpleNamespace(a=urls["a"], b=urls["b"], services=services, procs=procs,
                                  redis=redis_client, home=home)
        finally:
            for proc in reversed(procs):
                proc.stop()
            redis_client.flushdb()
            redis_client.close()


@contextmanager
def api(url: str) -> Iterator[None]:
    """Prefect's client (and threads started meanwhile) talk to ``url``."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: url, PREFECT_API_AUTH_STRING: CLUSTER_AUTH}):
        yield


def campaign_run(deployment_id: str, campaign_id: str, slot: datetime) -> UUID:
    return create_run(deployment_id, {
        "campaign_id": campaign_id,
        "occurrence_date": slot.astimezone(BERLIN).date().isoformat()})


def published(campaign_id: str) -> list[str]:
    """The channels of the ``publication.published`` audit events of a campaign."""
    with store.session_scope(get_runtime().engine) as session:
        return [str(e.detail) for e in store.audit_trail(session, campaign_id=campaign_id)
                if e.action == "publication.published"]


def test_two_api_servers_and_a_services_process_work_as_one(cluster, postgres_url, tmp_path):
    for url in (cluster.a, cluster.b):  # basic auth on both, as docs/DEPLOYMENT.md sets it
        assert httpx.post(f"{url}/flow_runs/filter", json={}, timeout=10).status_code == 401
    slot_pre = (datetime.now(UTC) + timedelta(seconds=35)).replace(microsecond=0)
    slot_appr = (datetime.now(UTC) + timedelta(seconds=75)).replace(microsecond=0)
    with api(cluster.a), flow_stack(tmp_path, POOL, database_url=postgres_url,
                                    web=True) as stack:
        with api(cluster.b):
            worker_b = WorkerThread(POOL, poll_seconds=0.5)  # carries B's settings
        worker_b.start()
        try:
            write_campaign(stack.catalog, "multi-vorab", slot_pre, pre_approved=True)
            write_campaign(stack.catalog, "multi-freigabe", slot_appr, deadline_before="15s")
            with api(cluster.b):
                pre_run = campaign_run(stack.deployments["campaign"], "multi-vorab", slot_pre)
                appr_run = campaign_run(stack.deployments["campaign"], "multi-freigabe",
                                        slot_appr)
                failing = create_run(stack.deployments["campaign"],
                                     {"campaign_id": "gibt-es-nicht",
                                      "occurrence_date": "2027-03-01"})

            # Created through B, suspended (a Newsroom worker on A or B ran it): the
            # approval page, whose Prefect client talks to A, resumes it.
            with api(cluster.a):
                assert wait_for_state(appr_run, {"Suspended"}, 60) == "Suspended"
            link = LINK.search(str(stack.mail.wait_for(APPROVER_MAIL, timeout=30)[0]
                                   .get_body(preferencelist=("plain",)).get_content()))
            assert link, "no approval link in the e-mail"
            with httpx.Client(timeout=15) as browser:
                page = browser.get(link.group(0))
                assert page.status_code == 200
                csrf = CSRF.search(page.text).group(1)
                answer = browser.post(link.group(0),
                                      data={"csrf": csrf, "decision": "approve",
                                            "comment": ""})
                assert answer.status_code == 200, answer.text[:500]

            # A failed run (unknown campaign) alerts the office: the failure event reaches
            # an API server; only through Redis does the services process (triggers,
            # actions) see it and call the web app's alert hook.
            with api(cluster.b):
                wait_for(lambda: (state := run_state(failing)) is not None
                         and state.is_failed(), timeout=60)
            try:
                alerts = wait_for(lambda: [m for m in stack.mail.to(OFFICE_MAIL)
                                           if "gibt-es-nicht" in str(m["subject"])], 90)
            except AssertionError:
                raise AssertionError("no alert for the failed run within 90 s: did the "
                                     "failure event reach the services process through "
                                     "Redis? " + cluster.services.tail(10)) from None
            assert len(alerts) == 1 and "Failed" in str(alerts[0]["subject"])

            with api(cluster.a):
                wait_done(pre_run, timeout=90)
                wait_done(appr_run, timeout=120)
            with api(cluster.b):  # and B sees the same final states
                assert run_state(pre_run).is_completed()
                assert run_state(appr_run).is_completed()
        finally:
            worker_b.stop()

        for network in ("mastodon", "bluesky"):
            posts = stack.standins.posts(network)
            assert len(posts) == 2, (network, posts)  # one per campaign, nothing twice
        assert len(published("multi-vorab")) == 2
        assert len(published("multi-freigabe")) == 2
        assert len(stack.mail.to(APPROVER_MAIL)) == 1
    # The messaging really went through this module's Redis database.
    assert cluster.redis.dbsize() > 0
    assert any(key.startswith(b"events") or b"event" in key
               for key in cluster.redis.scan_iter(count=1000)), \
        list(cluster.redis.scan_iter(count=50))


async def use_module_entrypoints(deployments: dict[str, str]) -> None:
    """Point the deployments at ``flows.campaign.campaign`` instead of
    ``flows/campaign.py:campaign``. A stock worker resolves a file-path entrypoint
    against the run's working directory, which only prefect.yaml's pull step sets; a
    module path is imported like any module (the package is installed)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentUpdate

    entrypoints = {name: f"{path[:-3].replace('/', '.')}.{attribute}"
                   for path, attribute, name, _ in DEPLOYMENTS}
    async with get_client() as client:
        for name, deployment_id in deployments.items():
            await client.update_deployment(UUID(deployment_id),
                                           DeploymentUpdate(entrypoint=entrypoints[name]))


def test_the_stock_process_pool_publishes_every_campaign_once(cluster, postgres_url,
                                                              tmp_path):
    campaigns = [f"multi-prozess-{n}" for n in range(4)]
    with running_standins() as standins_url, StandinControl(standins_url) as standins, \
            pytest.MonkeyPatch.context() as env, api(cluster.a):
        catalog = tmp_path / "campaigns"
        shutil.copytree(ROOT / "campaigns", catalog)
        registry = catalog / "registry" / "channels.yaml"
        registry.write_text(registry.read_text(encoding="utf-8").replace(
            "http://127.0.0.1:8900", standins_url), encoding="utf-8")
        mail = MailCatcher(port=free_port()).start()
        # Newsroom's settings reach the workers (and so each run's process) through their
        # environment.
        env.setenv("NEWSROOM_CATALOG_DIR", str(catalog))
        env.setenv("NEWSROOM_DATA_DIR", str(tmp_path / "var"))
        env.setenv("NEWSROOM_DATABASE_URL", postgres_url)
        env.setenv("NEWSROOM_SMTP_URL", mail.smtp_url)
        env.setenv("NEWSROOM_WEB_BASE_URL", f"http://127.0.0.1:{free_port()}")
        env.setenv("NEWSROOM_SECRET_KEY", "multi-process-secret-key-that-is-long-enough-0123")
        for name, value in STANDIN_CREDENTIAL_ENV.items():
            env.setenv(name, value)
        reset_runtimes()
        workers: list[Proc] = []
        try:
            base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
            base |= {"PREFECT_HOME": str(tmp_path / "prefect"),
                     "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_API_AUTH_STRING": CLUSTER_AUTH}
            subprocess.run([PREFECT, "work-pool", "create", PROCESS_POOL, "--type", "process"],
                           env=base | {"PREFECT_API_URL": cluster.a}, check=True,
                           capture_output=True)
            deployments = run_async(apply_deployments(PROCESS_POOL, schedules=False))
            run_async(use_module_entrypoints(deployments))
            for name, url in (("a", cluster.a), ("b", cluster.b)):
                workers.append(Proc(
                    f"process worker {name.upper()}",
                    [PREFECT, "worker", "start", "--pool", PROCESS_POOL, "--type", "process",
                     "--name", f"multi-process-{name}", "--limit", "2"],
                    base | {"PREFECT_API_URL": url}, tmp_path / f"worker-{name}.log",
                    cwd=ROOT))
            for worker in workers:  # both poll before the runs exist, so both may get some
                wait_for(lambda w=worker: w.check_alive() or "started!" in w.tail(), 60)
            slot = (datetime.now(UTC) + timedelta(seconds=50)).replace(microsecond=0)
            runs = {}
            for number, campaign_id in enumerate(campaigns):
                write_campaign(catalog, campaign_id, slot, channels="[mastodon]",
                               pre_approved=True)
                with api(cluster.a if number % 2 else cluster.b):
                    runs[campaign_id] = campaign_run(deployments["campaign"], campaign_id,
                                                     slot)
            for campaign_id, run_id in runs.items():
                for worker in workers:
                    worker.check_alive()
                try:
                    wait_done(run_id, timeout=150)
                except AssertionError as exc:
                    raise AssertionError(f"{campaign_id}: {exc}\n"
                                         + "\n".join(w.tail(15) for w in workers)) from exc
            for campaign_id in campaigns:
                assert len(published(campaign_id)) == 1, (campaign_id,
                                                          published(campaign_id))
            posts = standins.posts("mastodon")
            assert len(posts) == len(campaigns), posts
            # Each run was its own process, started by one of the stock workers.
            starts = "".join(w.log.read_text(encoding="utf-8", errors="replace")
                             for w in workers)
            for run_id in runs.values():
                assert str(run_id) in starts, f"no process worker logged run {run_id}"
            for worker in workers:  # --limit 2 each: both workers took runs
                assert "submitting flow run" in worker.tail(200), worker.tail()
        finally:
            for worker in workers:
                worker.stop()
            mail.stop()
            reset_runtimes()
