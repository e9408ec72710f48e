"""The send journal: a worker killed while its burst goes out leaves the posts whose
request never left to be sent by the next run, not checked by a person — and only those.
A journal says "never sent" only for a process that is gone, on this boot, with the
journal file there and no line for the publication; every doubt keeps "possibly sent".
Real processes, a real store, real stand-ins over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from publishing_testkit import delivery_runtime, received, write_service_campaign

from newsroom import send_journal, store
from newsroom.channels import base as channels_base
from newsroom.delivery import deliver_occurrence, prepare_occurrence
from newsroom.processes import process_start_ticks
from newsroom.publishing import arm_occurrence
from newsroom.publishing.burst import mark_for_sending
from newsroom.runtime import Runtime
from newsroom.send_journal import Sender
from newsroom.timeutil import BERLIN

# A process that opens its journal, notes a request for publication argv[2] (unless 0)
# and ends: what a worker killed after (or before) that request began leaves behind.
SENDER = """
import sys
from pathlib import Path
from newsroom import send_journal
who = send_journal.sender(Path(sys.argv[1]))
for noted in sys.argv[2:]:
    with send_journal.sending(int(noted), "claim-token"):
        send_journal.note_request()
print(who.token())
"""


def gone_sender(directory: Path, *noted: int) -> str:
    done = subprocess.run([sys.executable, "-c", SENDER, str(directory), *map(str, noted)],
                          capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip()  # the process is reaped: gone


def test_never_sent_only_for_a_gone_process_whose_journal_has_no_line(tmp_path: Path):
    token = gone_sender(tmp_path, 7, 12)
    who = Sender.parse(token)
    assert who is not None and who.path.is_file() and who.pid != os.getpid()
    assert who.path.read_text() == "7 claim-token\n12 claim-token\n"
    assert send_journal.never_sent(token, 8)
    assert send_journal.never_sent(token, 70)  # "7 " is not "70 "
    assert send_journal.never_sent(token, 1)
    assert not send_journal.never_sent(token, 7)
    assert not send_journal.never_sent(token, 12)


def test_every_doubt_means_possibly_sent(tmp_path: Path):
    token = gone_sender(tmp_path)
    who = Sender.parse(token)
    assert who is not None and send_journal.never_sent(token, 5)
    # Written on another boot of the machine: the page cache it relied on is gone.
    assert not send_journal.never_sent(replace(who, boot_id="0" * 36).token(), 5)
    # In another PID namespace (another container): its pids say nothing here.
    assert not send_journal.never_sent(replace(who, pid_namespace="pid:[1]").token(), 5)
    # Still running (this process): its result will come.
    me = replace(who, pid=os.getpid(), start_ticks=process_start_ticks(os.getpid()) or 0)
    assert not send_journal.never_sent(me.token(), 5)
    # The same pid, reused by another process: the journal's process is gone.
    assert send_journal.never_sent(replace(me, start_ticks=me.start_ticks + 1).token(), 5)
    # No token, another format, a journal file removed.
    assert not send_journal.never_sent(None, 5)
    assert not send_journal.never_sent("journal-v0|x", 5)
    who.path.unlink()
    assert not send_journal.never_sent(token, 5)


# --- through the state machine --------------------------------------------------------


@pytest.fixture
def runtime(tmp_path: Path, standins_url: str, engine, monkeypatch) -> Runtime:
    return delivery_runtime(tmp_path, standins_url, engine, monkeypatch,
                            secret_key="journal-test-secret-key-0123456789-abcdef")


async def marked_by_a_gone_worker(runtime: Runtime, campaign_id: str, journal: Path, *,
                                  noted: tuple[str, ...] = ()):
    """An occurrence armed and marked for sending by a worker that was then killed, its
    journal holding lines for the ``noted`` channels' publications."""
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    write_service_campaign(runtime, campaign_id, slot)
    ready = prepare_occurrence(runtime, campaign_id, slot.astimezone(BERLIN).date())
    armed, _ = arm_occurrence(runtime.engine, occurrence_id=ready.occurrence_id)
    assert await mark_for_sending(runtime.engine, armed) == {p.id for p in armed.values()}
    token = gone_sender(journal, *(armed[channel].id for channel in noted))
    with store.session_scope(runtime.engine) as session:
        for publication in armed.values():
            row = session.get(store.Publication, publication.id)
            assert row.send_started_at is not None and row.sent_by  # marked by this process
            row.sent_by = token  # ... as the killed worker's process had
            session.add(row)
        session.commit()
    return ready, armed


def audit(runtime: Runtime, campaign_id: str) -> list[tuple[str, str | None, dict]]:
    with store.session_scope(runtime.engine) as session:
        return [(e.action, e.channel, e.detail)
                for e in store.audit_trail(session, campaign_id=campaign_id)]


@pytest.mark.anyio
async def test_marked_by_a_killed_worker_that_never_sent_is_sent_once(runtime, standins,
                                                                      tmp_path):
    ready, armed = await marked_by_a_gone_worker(runtime, "journal-nie-gesendet",
                                                 tmp_path / "killed")
    report = await deliver_occurrence(runtime, ready, None)
    assert sorted(report.published) == ["mastodon", "telegram"], report
    assert report.unknown == {}
    # Telegram does not recognise a repeat: without the journal this was "unknown".
    assert len(received(standins, "telegram", "journal-nie-gesendet")) == 1
    assert len(received(standins, "mastodon", "journal-nie-gesendet")) == 1
    taken = sorted(channel for action, channel, detail in audit(runtime, "journal-nie-gesendet")
                   if action == "publication.attempt" and detail.get("never_sent_by_journal"))
    assert taken == ["mastodon", "telegram"]


@pytest.mark.anyio
async def test_a_request_the_journal_saw_begin_is_not_sent_again(runtime, standins, tmp_path):
    ready, armed = await marked_by_a_gone_worker(
        runtime, "journal-begonnen", tmp_path / "killed", noted=("telegram",))
    report = await deliver_occurrence(runtime, ready, None)
    assert sorted(report.unknown) == ["telegram"], report  # a person checks, as before
    assert received(standins, "telegram", "journal-begonnen") == []
    assert sorted(report.published) == ["mastodon"]


@pytest.mark.anyio
async def test_the_line_is_written_before_the_request_and_without_it_nothing_leaves(
        runtime, standins, monkeypatch):
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    write_service_campaign(runtime, "journal-zeile", slot)
    ready = prepare_occurrence(runtime, "journal-zeile", slot.astimezone(BERLIN).date())
    report = await deliver_occurrence(runtime, ready, None)
    assert sorted(report.published) == ["mastodon", "telegram"], report
    who = Sender.parse(send_journal.sent_by())
    assert who is not None
    with store.session_scope(runtime.engine) as session:
        publications = {p.channel: p for p, _ in store.occurrence_publications(
            session, occurrence_id=ready.occurrence_id)}
    lines = who.path.read_text().splitlines()
    for publication in publications.values():
        assert publication.sent_by == who.token()
        assert any(line.startswith(f"{publication.id} ") for line in lines)

    # The journal cannot be written (here: its descriptor read-only): nothing is sent,
    # the publication fails as transient (a later run may try) — never "unknown".
    read_only = os.open(os.devnull, os.O_RDONLY)
    opened = send_journal._open
    assert opened is not None
    monkeypatch.setattr(send_journal, "_open", replace(opened, fd=read_only))
    monkeypatch.setattr(channels_base, "backoff_delay", lambda *args, **kwargs: 0.0)
    try:
        write_service_campaign(runtime, "journal-voll", slot)
        ready = prepare_occurrence(runtime, "journal-voll", slot.astimezone(BERLIN).date())
        report = await deliver_occurrence(runtime, ready, None)
    finally:
        os.close(read_only)
    assert sorted(report.failed) == ["mastodon", "telegram"], report
    assert received(standins, "telegram", "journal-voll") == []
    assert received(standins, "mastodon", "journal-voll") == []
    with store.session_scope(runtime.engine) as session:
        errors = {p.last_error for p, _ in store.occurrence_publications(
            session, occurrence_id=ready.occurrence_id)}
    assert all("send journal" in (error or "") for error in errors), errors


@pytest.mark.anyio
async def test_without_the_trace_event_every_later_request_is_noted_before_the_call(
        runtime, standins, monkeypatch):
    """An httpcore that stops sending ``send_request_headers.started`` must not leave posts
    un-noted: the first answered create without its line switches to noting before the
    call, so the next posts have their lines."""
    monkeypatch.setitem(channels_base._TRACE_EVENTS, "missing", False)
    real = channels_base.RequestTrace.__call__

    async def without_headers_event(self, name, info):
        if not name.endswith(".send_request_headers.started"):
            await real(self, name, info)

    monkeypatch.setattr(channels_base.RequestTrace, "__call__", without_headers_event)
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    for campaign_id in ("journal-ohne-ereignis-1", "journal-ohne-ereignis-2"):
        write_service_campaign(runtime, campaign_id, slot)
        ready = prepare_occurrence(runtime, campaign_id, slot.astimezone(BERLIN).date())
        report = await deliver_occurrence(runtime, ready, None)
        assert sorted(report.published) == ["mastodon", "telegram"], report
        assert channels_base._TRACE_EVENTS["missing"]
    who = Sender.parse(send_journal.sent_by())
    assert who is not None
    with store.session_scope(runtime.engine) as session:
        later = [p.id for p, _ in store.occurrence_publications(
            session, occurrence_id=ready.occurrence_id)]
    lines = who.path.read_text().splitlines()
    assert all(any(line.startswith(f"{pid} ") for line in lines) for pid in later)
