"""Chaos: the Newsroom worker SIGKILLed during publication, round after round.

    .venv/bin/python bench/chaos.py [--campaigns 100] [--rounds 10] [--seed S]

The real stack: a Prefect server (subprocess, SQLite), the stand-in channels (their own
process), and the Newsroom worker in **its own process** (``newsroom worker --pool P``),
which is killed with SIGKILL once per round and started again. The campaigns are
pre-approved (this tests publishing, not people), 6 channels each (Mastodon, Bluesky,
LinkedIn, Telegram, the website, and ``mastodon-compatible``: a Mastodon account on the
stand-in profile of a server that ignores Idempotency-Key and closes every connection
after its answer, as GoToSocial does), split over the rounds: round r's campaigns are
all due at one second T_r, a few seconds after the worker (re)started; the kill lands at a
random moment between the arming of the publications (T_r - 3 s: reserved and claimed)
and shortly after T_r (requests under way, answers being recorded). Each kill is logged with
its offset from T_r and how many of the round's posts the stand-ins had at that moment.
The restarted worker finds the dead worker's runs (newsroom/orchestration/recovery.py) and runs
them again; the next round begins once those runs are final (``--settle``, at most 120 s;
``--settle 0``: at once, so that a worker is killed again before it has caught up and the
backlog grows round by round — kills in a loop).

Before the first round the bench checks its instrument: two creates with one
Idempotency-Key make two statuses on the compatible server (one on Mastodon), so a
repeat there would be counted. Newsroom is not told what that server is (the registry
says ``idempotency: auto``, keep-alive on): it learns from nodeinfo that repeats are not
recognised, and settles a post a killed worker left "publishing" by looking among the
account's statuses (``found_by_lookup``), else "unknown".

At the end, when no run is left Scheduled/Pending/Running, the stand-ins are counted, per
account (each account's posts are recorded under its own label at the stand-ins):

- ``duplicates``: a post that arrived twice (or more) at a network;
- ``lost``: an approved post that is neither at its network nor reported "unknown";
- ``unknown``: publications Newsroom reports "unknown" (may have gone out, a person checks:
  ``newsroom channels unknown``), each of which must have alerted the office by e-mail
  (by its run, or — a kill between "unknown" and the alert — by the owed-alerts sweep the
  housekeeping run does every minute, which the bench runs once at the end);
  ``unknown_never_sent``: of those, the ones whose request never reached the network —
  the goal is 0: a worker killed between arming and the burst's mark ("a request may
  leave now", a moment before the second) leaves its posts provably unsent, and one
  killed while the burst goes out leaves those whose request had not begun with no line
  in its send journal (newsroom/send_journal.py): the next run sends them;
- per kill (``kills``): the round's ``never_sent`` and how long after the worker's restart
  the last of the round's posts that were still owed arrived
  (``killed_rounds_published_after_restart_max_s``: the slowest round; goal <= 30 s);
- ``confirmed``: at the network and recorded "published" in Newsroom's store.

Prints one JSON line at the end, with these counts also per account (``accounts``: posts,
confirmed, unknown, unknown_at_network, found_by_lookup, duplicates, lost).
``run_chaos`` is also what the CI variant (tests/reliability/test_chaos_short.py) runs,
smaller. 2026-12-07, 2-core machine, ``--campaigns 100 --rounds 10 --seed 2026``: 600
posts, 0 duplicates, 0 lost, 140 unknown and every one of them at its network
(``unknown_never_sent`` 0), the rest of each killed round out 9.7-12.0 s after the restart,
318 s (docs/RELIABILITY.md, run 7).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import (  # noqa: E402
    WorkerProcess,
    add_profile_account,
    copy_catalog,
    free_port,
    newsroom_env,
    service_campaign_yaml,
    start_prefect,
    start_standins,
    stop,
    wait_worker_ready,
)

logger = logging.getLogger("newsroom.chaos")

# A server of Mastodon's API that is not Mastodon (GoToSocial, as issue 15 met one): a
# repeated Idempotency-Key makes a second status, and it closes every connection after its
# answer without saying so. Its registry entry says neither (idempotency auto, keep-alive
# on): Newsroom has to learn both from the server.
COMPATIBLE = "mastodon-compatible"
COMPATIBLE_PROFILE = "ignores-idempotency+closes-connections"
CHANNELS = ["mastodon", "bluesky", "linkedin", "telegram", "website", COMPATIBLE]
# The request that makes a post, per stand-in network, and how many of CHANNELS post
# there (both Mastodon accounts are the Mastodon stand-in's): for ``hold_answers_s``.
CREATE_REQUESTS = [("mastodon", "/api/v1/statuses", 2), ("bluesky", "createRecord", 1),
                   ("linkedin", "/rest/posts", 1), ("telegram", "/sendMessage", 1),
                   ("cms", "/posts", 1)]
# Where the stand-ins record each account's posts: one label per account, so each
# account's posts are counted apart (the two Mastodon accounts post the same text).
NETWORK_OF = {"mastodon": "mastodon", "bluesky": "bluesky", "linkedin": "linkedin",
              "telegram": "telegram", "website": "cms",
              COMPATIBLE: f"mastodon~{COMPATIBLE_PROFILE}"}
CAMPAIGN_IN_TEXT = re.compile(r"Servicehinweis (chaos-\d+-\d+):")
UNKNOWN_ALERT = "Veröffentlichung unklar"
PREROLL_S = 3.0  # publications are armed this long before their second (delivery.ARM_AHEAD)


def campaign_yaml(campaign_id: str, slot_local: str) -> str:
    return service_campaign_yaml(campaign_id, slot_local, CHANNELS, title="Chaos")


@dataclass
class Kill:
    round: int
    due: str
    offset_s: float  # kill moment minus the round's due second
    posts_at_kill: int  # of the round's posts, at the stand-ins right after the kill
    expected: int
    worker_pid: int
    mode: str = "armed"  # armed: after arming, before sending; sending: posts arriving
    recorded_at_kill: int = 0  # of the round's publications, "published" in the store then
    restarted_at: datetime | None = None  # when the next worker was started
    # From that restart to the last of the round's posts that arrived after the kill
    # (None: none did); the goal is <= 30 s.
    published_after_restart_s: float | None = None
    never_sent: int = 0  # of the round's posts: unknown, and no request reached a network

    @property
    def during_publication(self) -> bool:
        """After the arming, before every answer was recorded (the store as the killed
        worker left it)."""
        return self.offset_s >= -PREROLL_S and self.recorded_at_kill < self.expected


@dataclass
class ChaosResult:
    rounds: int
    posts: int
    duplicates: int
    lost: int
    unknown: int
    confirmed: int
    unknown_alerted: int  # in the end, after the owed alerts were sent
    unknown_alerted_by_runs: int  # by the publishing runs themselves
    owed_alerts_sent: int  # by send_owed_alerts (a kill came between "unknown" and alert)
    unknown_at_network: int  # of the unknown ones, those that had in fact gone out
    recorded_but_absent: int  # store says published, the network has nothing: a bug
    runs: dict[str, int]
    # channel account -> posts, confirmed, unknown, unknown_at_network, found_by_lookup,
    # duplicates, lost
    accounts: dict[str, dict[str, int]] = field(default_factory=dict)
    # kill mode of the round (armed, sending) -> unknown publications of which no request
    # reached the network
    unknown_never_sent_by_mode: dict[str, int] = field(default_factory=dict)
    kills: list[Kill] = field(default_factory=list)
    lost_posts: list[str] = field(default_factory=list)
    duplicate_posts: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "posts": self.posts, "duplicates": self.duplicates,
                "lost": self.lost, "unknown": self.unknown, "confirmed": self.confirmed,
                "unknown_alerted": self.unknown_alerted,
                "unknown_alerted_by_runs": self.unknown_alerted_by_runs,
                "owed_alerts_sent": self.owed_alerts_sent,
                "unknown_at_network": self.unknown_at_network,
                # unknown although no request had reached the network: the goal is 0 (a
                # worker killed before its second leaves posts to be sent, not checked)
                "unknown_never_sent": self.unknown - self.unknown_at_network,
                # by the round's kill mode (armed: before the send mark; sending: while
                # the burst went out, told apart by the send journal)
                "unknown_never_sent_by_mode": self.unknown_never_sent_by_mode,
                # the slowest killed round: its worker's restart -> its last post out
                "killed_rounds_published_after_restart_max_s": max(
                    (k.published_after_restart_s for k in self.kills
                     if k.published_after_restart_s is not None), default=None),
                "recorded_but_absent": self.recorded_but_absent,
                "kills_during_publication": sum(k.during_publication for k in self.kills),
                "kills": [f"{k.mode} {k.offset_s:+.2f}s sent {k.posts_at_kill}/{k.expected} "
                          f"recorded {k.recorded_at_kill} never_sent {k.never_sent} "
                          "rest out " + (f"{k.published_after_restart_s:.1f}s after restart"
                                         if k.published_after_restart_s is not None else "-")
                          for k in self.kills],
                "accounts": self.accounts, "runs": self.runs,
                "seconds": round(self.seconds, 1)}


async def _create_runs(deployment_id: str, campaigns: list[str], day: str) -> list[UUID]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        ids = []
        for campaign_id in campaigns:
            run = await client.create_flow_run_from_deployment(
                UUID(deployment_id), parameters={"campaign_id": campaign_id,
                                                 "occurrence_date": day})
            ids.append(run.id)
        return ids


async def _run_states(ids: list[UUID]) -> dict[UUID, Any]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return {run_id: (await client.read_flow_run(run_id)).state for run_id in ids}


def wait_runs_final(ids: list[UUID], timeout: float) -> dict[UUID, Any]:
    from newsroom.orchestration.stack import run_async

    deadline = time.monotonic() + timeout
    while True:
        states = run_async(_run_states(ids))
        if all(s is not None and s.is_final() for s in states.values()):
            return states
        if time.monotonic() > deadline:
            return states
        time.sleep(1.0)


def _sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))


def _wait_until(condition: Any, due: datetime, limit_s: float, step: float = 0.1) -> None:
    """Until ``condition()`` holds, or ``limit_s`` after ``due``."""
    while not condition() and datetime.now(UTC) < due + timedelta(seconds=limit_s):
        time.sleep(step)


def _round_posts(control: Any, campaigns: list[str]) -> int:
    wanted = set(campaigns)
    return sum(n for (c, _), n in count_at_standins(control).items() if c in wanted)


def _round_armed(engine: Any, campaigns: list[str]) -> bool:
    """Some of the round's publications are claimed ("publishing") or further."""
    wanted = set(campaigns)
    return any(c in wanted and status != "reserved"
               for (c, _), status in store_statuses(engine).items())


def _campaign_of(post: dict[str, Any]) -> str | None:
    match = CAMPAIGN_IN_TEXT.search(post.get("text") or "")
    return match.group(1) if match else None


def count_at_standins(control: Any) -> Counter[tuple[str, str]]:
    """(campaign, channel) -> how many posts the stand-ins received."""
    seen: Counter[tuple[str, str]] = Counter()
    for channel, network in NETWORK_OF.items():
        for post in control.posts(network):
            campaign = _campaign_of(post)
            if campaign:
                seen[(campaign, channel)] += 1
    return seen


def arrivals_at_standins(control: Any) -> list[tuple[int, datetime]]:
    """(round, when it arrived) of every post of the bench at the stand-ins."""
    arrived = []
    for network in set(NETWORK_OF.values()):
        for post in control.posts(network):
            campaign = _campaign_of(post)
            if campaign:
                arrived.append((int(campaign.split("-")[1]),
                                datetime.fromisoformat(post["created_at"]["wall"])))
    return arrived


def store_statuses(engine: Any) -> dict[tuple[str, str], str]:
    """(campaign, channel) -> the publication's status in Newsroom's store."""
    from sqlmodel import select

    from newsroom import store
    from newsroom.store import PostRecord, Publication

    with store.session_scope(engine) as session:
        rows = session.exec(select(Publication, PostRecord).join(
            PostRecord, PostRecord.id == Publication.post_id))  # type: ignore[arg-type]
        return {(post.to_rendered().campaign_id, publication.channel): publication.status
                for publication, post in rows}


def found_by_lookup(engine: Any) -> set[tuple[str, str]]:
    """(campaign, channel) recorded "published" because a lookup found the post an
    interrupted attempt had made (publishing/state_machine.py ``_interrupted``: the network
    does not recognise a repeat, so the post was looked for instead of sent again)."""
    from sqlmodel import select

    from newsroom import store
    from newsroom.store.models import AuditEvent

    with store.session_scope(engine) as session:
        events = session.exec(select(AuditEvent).where(
            AuditEvent.action == "publication.published"))
        return {(e.campaign_id, e.channel or "") for e in events
                if e.detail.get("found_by_lookup")}


def check_repeats_are_counted(control: Any, standins_url: str) -> None:
    """The instrument itself: on the compatible server a repeated Idempotency-Key makes a
    second status (so a repeat by Newsroom would be counted as a duplicate); on the
    Mastodon stand-in it does not."""
    import httpx

    from newsroom.standins.config import MASTODON_TOKEN

    marker = f"Messprobe {time.time_ns()}"
    bases = {"mastodon": f"{standins_url}/mastodon",
             COMPATIBLE: f"{standins_url}/mastodon/~{COMPATIBLE_PROFILE}"}
    for base in bases.values():
        for _ in range(2):
            httpx.post(f"{base}/api/v1/statuses", data={"status": marker}, timeout=10,
                       headers={"Authorization": f"Bearer {MASTODON_TOKEN}",
                                "Idempotency-Key": marker}).raise_for_status()
    made = {channel: sum(marker == p.get("text") for p in control.posts(NETWORK_OF[channel]))
            for channel in bases}
    if made != {"mastodon": 1, COMPATIBLE: 2}:
        raise RuntimeError(f"two creates with one Idempotency-Key made {made} statuses; "
                           f"expected 1 on Mastodon, 2 on {COMPATIBLE_PROFILE}")


def run_chaos(work: Path, *, api_url: str, campaigns: int, rounds: int, seed: int | None = None,
              lead_s: float = 15.0, kill_window: tuple[float, float] = (-2.5, -0.3),
              modes: list[str] | None = None,
              final_timeout: float = 240.0, settle_s: float = 120.0,
              hold_answers_s: float = 0.0, echo: Any = print) -> ChaosResult:
    """The chaos run against the Prefect server at ``api_url`` (PREFECT_API_URL must
    point there in this process too); ``work`` is an empty folder.

    ``settle_s``: after each restart, wait (up to this long) until the killed round's runs
    are final before the next round begins, so that each restart is seen to finish what
    its predecessor left (0: the next round begins at once, and a worker is killed again
    before it has caught up — kills in a loop, the backlog growing).

    ``hold_answers_s``: in a "sending" round the stand-ins make each post at once and hold
    its answer back this long (a fault rule ``slow_answer`` on the round's creates), so the
    kill after the k-th post lands while answers are still missing — however fast this
    machine records a burst. 0: the networks answer at once (the kill may then come after
    the last answer was recorded: not "during publication")."""
    from newsroom.orchestration.stack import MailCatcher, apply_deployments, run_async
    from newsroom.publishing import send_owed_alerts, unknown_publications
    from newsroom.runtime import get_runtime, reset_runtimes
    from newsroom.standins import StandinControl
    from newsroom.timeutil import BERLIN

    rng = random.Random(seed)
    started = time.monotonic()
    pool = f"chaos-{os.getpid()}-{int(time.time())}"
    standins, standins_url = start_standins()
    mail = MailCatcher(port=free_port()).start()
    worker: WorkerProcess | None = None
    saved_env = dict(os.environ)
    try:
        with StandinControl(standins_url) as control:
            catalog = copy_catalog(work / "campaigns", standins_url)
            add_profile_account(catalog, name=COMPATIBLE, like="mastodon",
                                profile=COMPATIBLE_PROFILE,
                                display_name="@darmstadt@gts.example.org")
            check_repeats_are_counted(control, standins_url)
            settings_env = newsroom_env(
                work, catalog, smtp_url=mail.smtp_url,
                secret_key="chaos-secret-key-that-is-long-enough-0123456789")
            os.environ.update(settings_env)
            reset_runtimes()
            runtime = get_runtime()  # migrates the store before the worker starts
            deployments = run_async(apply_deployments(pool, schedules=False))
            env = {**os.environ, **settings_env, "PREFECT_API_URL": api_url,
                   "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                   "PREFECT_LOGGING_LEVEL": "WARNING"}
            worker = WorkerProcess(pool, env, work)
            per_round = [campaigns // rounds + (1 if r < campaigns % rounds else 0)
                         for r in range(rounds)]
            all_runs: list[UUID] = []
            expected: list[tuple[str, str]] = []
            kills: list[Kill] = []
            round_runs: list[UUID] = []
            for round_, count in enumerate(per_round):
                pid = worker.start()
                if kills:
                    kills[-1].restarted_at = datetime.now(UTC)
                ready = wait_worker_ready(pool, pid)
                if kills and settle_s > 0:
                    wait_runs_final(round_runs, settle_s)
                ids_ = [f"chaos-{round_:02d}-{i:03d}" for i in range(count)]
                due = (datetime.now(UTC) + timedelta(seconds=lead_s)).replace(microsecond=0)
                local = due.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M:%S")
                for campaign_id in ids_:
                    (catalog / f"{campaign_id}.yaml").write_text(
                        campaign_yaml(campaign_id, local), encoding="utf-8")
                expected += [(c, ch) for c in ids_ for ch in CHANNELS]
                round_runs = run_async(_create_runs(
                    deployments["campaign"], ids_, due.astimezone(BERLIN).date().isoformat()))
                all_runs += round_runs
                mode = modes[round_ % len(modes)] if modes else rng.choice(
                    ["armed", "sending", "sending"])
                # The k-th post: early enough that answers are still being recorded.
                wanted_posts = rng.randint(1, max(1, count * len(CHANNELS) // 2))
                if mode == "armed":
                    # After the arming (reserved and claimed, nothing sent yet), before T.
                    offset = rng.uniform(*kill_window)
                    _sleep_until(due + timedelta(seconds=offset))
                    _wait_until(lambda ids=ids_: _round_armed(runtime.engine, ids), due, 30)
                else:
                    # While the round's posts arrive: after the k-th of them.
                    if hold_answers_s > 0:
                        control.set_faults([
                            {"network": network, "path_contains": path, "kind": "slow_answer",
                             "delay": hold_answers_s, "times": count * copies}
                            for network, path, copies in CREATE_REQUESTS])
                    _sleep_until(due - timedelta(seconds=0.5))
                    _wait_until(lambda ids=ids_, k=wanted_posts: _round_posts(control, ids) >= k,
                                due, 40, step=0.05)
                worker.kill()
                actual = (datetime.now(UTC) - due).total_seconds()
                if hold_answers_s > 0:
                    control.set_faults([])
                at_kill = _round_posts(control, ids_)
                recorded = sum(1 for (c, _), status in store_statuses(runtime.engine).items()
                               if c in set(ids_) and status == "published")
                kill = Kill(round_, due.isoformat(), actual, at_kill, count * len(CHANNELS), pid,
                            mode, recorded)
                kills.append(kill)
                echo(f"round {round_ + 1}/{rounds}: worker pid {pid} ready after {ready:.1f} s; "
                     f"{count} campaigns due {due:%H:%M:%S}; SIGKILL ({mode}) at {actual:+.2f} s "
                     f"from the due second; {at_kill}/{kill.expected} posts at the "
                     f"stand-ins, {recorded} recorded as published")
            # The last restart: recovers the last round's runs and finishes everything.
            pid = worker.start()
            if kills:
                kills[-1].restarted_at = datetime.now(UTC)
            wait_worker_ready(pool, pid)
            states = wait_runs_final(all_runs, final_timeout)
            time.sleep(2)
            worker.stop()
            seen = count_at_standins(control)
            arrivals = arrivals_at_standins(control)
            statuses = store_statuses(runtime.engine)
            looked_up = found_by_lookup(runtime.engine)
            unknown = {(u.campaign_id, u.publication.channel)
                       for u in unknown_publications(runtime.engine)}
            alerts_by_runs = [m for m in list(mail.messages)
                              if UNKNOWN_ALERT in str(m["subject"])]
            # What housekeeping does every minute: alert the office about
            # each unknown publication whose alert a kill lost (no settle time: the
            # worker is stopped).
            swept = send_owed_alerts(runtime.engine, runtime.catalog.accounts,
                                     runtime.notifier, settle=timedelta(0))
            alerts = [m for m in list(mail.messages) if UNKNOWN_ALERT in str(m["subject"])]
    finally:
        if worker is not None:
            worker.kill()
        mail.stop()
        stop(standins)
        os.environ.clear()
        os.environ.update(saved_env)
        reset_runtimes()

    wanted = set(expected)
    duplicates = sorted(f"{c} {ch} ×{n}" for (c, ch), n in seen.items()
                        if n > 1 and (c, ch) in wanted)
    lost = sorted(f"{c} {ch} ({statuses.get((c, ch), 'no publication')})"
                  for (c, ch) in expected if not seen.get((c, ch)) and (c, ch) not in unknown)
    confirmed = sum(1 for key in expected
                    if seen.get(key) and statuses.get(key) == "published")
    absent = sum(1 for key in expected
                 if statuses.get(key) == "published" and not seen.get(key))
    def alerted_in(messages: list) -> int:
        subjects = [str(m["subject"]) for m in messages]
        return sum(1 for c, ch in unknown
                   if any(c in subject and f"({ch})" in subject for subject in subjects))

    def account_counts(channel: str) -> dict[str, int]:
        mine = [key for key in expected if key[1] == channel]
        return {
            "posts": len(mine),
            "confirmed": sum(1 for key in mine
                             if seen.get(key) and statuses.get(key) == "published"),
            "unknown": sum(1 for key in mine if key in unknown),
            "unknown_at_network": sum(1 for key in mine if key in unknown and seen.get(key)),
            "found_by_lookup": sum(1 for key in mine if key in looked_up),
            "duplicates": sum(seen[key] - 1 for key in mine if seen.get(key, 0) > 1),
            "lost": sum(1 for key in mine if not seen.get(key) and key not in unknown),
        }

    run_counts = Counter(s.name if s is not None else "none" for s in states.values())
    mode_of_round = {kill.round: kill.mode for kill in kills}  # chaos-<round>-<i>
    never_sent_by_mode = Counter(mode_of_round.get(int(c.split("-")[1]), "last worker")
                                 for c, ch in unknown & wanted if not seen.get((c, ch)))
    never_sent_by_round = Counter(int(c.split("-")[1]) for c, ch in unknown & wanted
                                  if not seen.get((c, ch)))
    for kill in kills:
        kill.never_sent = never_sent_by_round.get(kill.round, 0)
        killed_at = datetime.fromisoformat(kill.due) + timedelta(seconds=kill.offset_s)
        later = [at for (round_, at) in arrivals if round_ == kill.round and at > killed_at]
        if later and kill.restarted_at is not None:
            kill.published_after_restart_s = round(
                (max(later) - kill.restarted_at).total_seconds(), 2)
    return ChaosResult(
        rounds=rounds, posts=len(expected),
        duplicates=sum(seen[(c, ch)] - 1 for (c, ch) in wanted if seen.get((c, ch), 0) > 1),
        lost=len(lost), unknown=len(unknown & wanted), confirmed=confirmed,
        unknown_alerted=alerted_in(alerts), unknown_alerted_by_runs=alerted_in(alerts_by_runs),
        owed_alerts_sent=len(swept), recorded_but_absent=absent, runs=dict(run_counts),
        unknown_at_network=sum(1 for key in unknown & wanted if seen.get(key)),
        accounts={channel: account_counts(channel) for channel in CHANNELS},
        unknown_never_sent_by_mode=dict(never_sent_by_mode), kills=kills, lost_posts=lost,
        duplicate_posts=duplicates,
        seconds=time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--lead", type=float, default=15.0,
                        help="seconds from a round's start to its due second")
    parser.add_argument("--settle", type=float, default=120.0,
                        help="after a restart, wait up to this long for the killed round's "
                             "runs to end before the next round (0: kills in a loop)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="newsroom-chaos-"))
    server, api_url = start_prefect(work / "prefect")
    os.environ.update({"PREFECT_API_URL": api_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                       "PREFECT_LOGGING_LEVEL": "WARNING"})
    try:
        result = run_chaos(work, api_url=api_url, campaigns=args.campaigns,
                           rounds=args.rounds, seed=args.seed, lead_s=args.lead,
                           settle_s=args.settle)
    finally:
        stop(server)
    for post in result.lost_posts:
        print(f"lost: {post}")
    for post in result.duplicate_posts:
        print(f"duplicate: {post}")
    print(f"work folder (worker logs, store): {work}")
    print(json.dumps(result.summary()))


if __name__ == "__main__":
    main()
