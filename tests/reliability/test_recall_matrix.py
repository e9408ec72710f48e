"""The recall side of the fault matrix: every network of the stand-ins (and the press
e-mail over a real SMTP server) × every fault, injected on the request that takes the
post down. Each cell publishes one post through ``newsroom.publishing`` over real HTTP,
recalls it with ``newsroom.recall.recall_occurrence`` (a real store, the seed catalog
with the matrix's accounts) and asserts what the recall comes to, how often the stand-in
deleted the post (never twice), the audit trail (``recall.*`` once per channel), what
the office is told, and what a second recall and housekeeping's ``finish_recalls`` do.
The expectations are ``fault_table.py`` (``expected_recall``), which is also the recall
table in docs/RELIABILITY.md.

The recall's retry loop (``withdraw_with_retries``) is given a recording sleep, and the
press e-mail's publisher the HTTP client's timeout, so a cell waits for nothing but a
slow answer. At the end: a correction cut short is finished by housekeeping in another
process without mailing anyone twice (the failed try's progress is recorded and handed
back).
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
import yaml
from fault_table import FAULTS, RECALL_BEGIN, RECALL_END, recall_cells, recall_markdown
from pydantic import SecretStr
from reliability_kit import (
    HTTP_CHANNELS,
    POST_NETWORK,
    RECIPIENTS,
    STANDIN_NETWORK,
    Alerts,
    Sleeps,
    account,
    rendered,
    secret,
    store_occurrence,
)

import newsroom.channels
from newsroom import store
from newsroom.publishing import publish_post
from newsroom.publishing.publishers import shared_publisher
from newsroom.recall import finish_recalls, recall_occurrence
from newsroom.runtime import Runtime
from newsroom.settings import Settings, use_settings
from newsroom.signing import Signer

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "RELIABILITY.md"
SLOW_CLIENT_TIMEOUT = 0.7
REASON = "Falscher Termin genannt"
# The path fragment of the request that takes the post down; Graph deletes by the
# post's own id (DELETE /{id}), so there it is the remote id (see _delete_fragment).
DELETE = {"mastodon": "/api/v1/statuses/", "mastodon-compatible": "/api/v1/statuses/",
          "bluesky": "com.atproto.repo.deleteRecord", "linkedin": "/rest/posts/",
          "telegram": "/deleteMessage", "website": "/cms/posts/withdraw"}
GRAPH = ("facebook", "instagram", "threads")
# What of the seed catalog the recall needs: the registry (the matrix's accounts go into
# its channels.yaml) and the campaign the posts are of (its approver is told).
CATALOG_PARTS = ("registry/channels.yaml", "registry/people.yaml", "trikottag.yaml",
                 "images/trikottag.jpg")


def _env(channel: str) -> str:
    return "NEWSROOM_TEST_RECALL_" + channel.upper().replace("-", "_")


@pytest.fixture
def runtime(tmp_path: Path, standins, smtp, engine, monkeypatch):
    """A Runtime on (part of) the seed catalog whose registry holds the matrix's accounts
    (on the stand-ins and the SMTP server), their secrets in the environment; it records
    what the office and the approvers are told. Its settings are the process's, so the
    website's feed is in its data dir for publishing and recall alike."""
    _, port = smtp
    catalog = tmp_path / "campaigns"
    for part in CATALOG_PARTS:
        (catalog / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / "campaigns" / part, catalog / part)
    registry = catalog / "registry" / "channels.yaml"
    data = yaml.safe_load(registry.read_text(encoding="utf-8"))
    ours = {}
    for name in (*HTTP_CHANNELS, "presse"):
        entry = account(name, standins.base_url, port).model_dump(mode="json",
                                                                  exclude_defaults=True)
        entry["credential"] = {"env": _env(name)}
        ours[name] = entry
        monkeypatch.setenv(_env(name), secret(name))
    data["accounts"] = [ours.pop(a["name"], a) for a in data["accounts"]] + list(ours.values())
    registry.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                        encoding="utf-8")
    settled = time.time() - 60  # not "being written": the catalog keeper would wait
    os.utime(registry, (settled, settled))
    settings = Settings(catalog_dir=catalog, data_dir=tmp_path / "var",
                        secret_key="recall-matrix-secret-key-0123456789-abcdef")
    use_settings(settings)
    runtime = Runtime(settings=settings, engine=engine, signer=Signer(settings.secret_key))
    runtime.notifier_override = Alerts()
    yield runtime
    use_settings(None)


def _params():
    for channel, fault, code in recall_cells():
        if code is None:
            continue
        yield pytest.param(channel, fault, code, id=f"{channel}-{fault}")


def _delete_fragment(channel: str, remote_id: str) -> str:
    return remote_id if channel in GRAPH else DELETE[channel]


def _deletes(channel: str, standins, remote_id: str) -> list[dict]:
    """The requests that asked the stand-in to take the post down."""
    fragment = _delete_fragment(channel, remote_id)
    method = "POST" if channel in ("bluesky", "telegram", "website") else "DELETE"
    return [r for r in standins.requests(STANDIN_NETWORK[channel])
            if r["method"] == method and fragment in r["path"]]


def _the_post(channel: str, standins) -> dict:
    [post] = standins.posts(POST_NETWORK[channel])  # one post made, never a second
    return post


def _corrections(handler) -> dict[str, int]:
    """Corrections each original recipient holds (the release's mails are cleared)."""
    delivered = handler.delivered()
    return {r: delivered.count(r) for r in RECIPIENTS}


def _trail(runtime: Runtime, channel: str) -> list[str]:
    with store.session_scope(runtime.engine) as session:
        return [e.action for e in store.audit_trail(session, campaign_id="trikottag")
                if e.action.startswith("recall.") and e.channel == channel]


def _office(runtime: Runtime) -> list[dict]:
    return [m for m in runtime.notifier_override.sent if m["tag"] == "amt-kommunikation"]


async def _wait_for_the_slow_one(channel: str, standins, remote_id: str, smtp_since: float,
                                 delay: float) -> None:
    """Let the network finish what it was slow at (it deletes late, or finds it gone)."""
    if channel == "presse":
        await asyncio.sleep(max(0.0, smtp_since + delay + 0.3 - time.monotonic()))
        return
    for _ in range(100):
        slow = [r for r in _deletes(channel, standins, remote_id) if r.get("fault") == "slow"]
        if slow and all("status" in r for r in slow):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the slow request never got its answer")


@pytest.mark.parametrize(("channel", "fault", "code"), list(_params()))
async def test_recall_matrix(channel, fault, code, runtime, standins, smtp, monkeypatch
                             ) -> None:
    handler, _ = smtp
    spec = FAULTS[fault]
    occurrence_id, ids = store_occurrence(runtime.engine, [rendered(channel)])
    account_ = runtime.catalog.accounts[channel]
    credential = SecretStr(secret(channel))
    sleeps = Sleeps()
    monkeypatch.setattr(newsroom.channels, "withdraw_with_retries",
                        functools.partial(newsroom.channels.withdraw_with_retries,
                                          sleep=sleeps))
    timeout = SLOW_CLIENT_TIMEOUT if fault == "slow" else 10.0
    async with httpx.AsyncClient(timeout=timeout) as client:
        published = await publish_post(
            engine=runtime.engine, post_id=ids[channel], account=account_, client=client,
            credential=credential, notifier=Alerts(), sleep=Sleeps(),
            media_root=runtime.catalog.root)
        assert published.status == "published", published.error
        with store.session_scope(runtime.engine) as session:
            publication = store.get_publication(session, post_id=ids[channel],
                                                channel=channel)
            remote_id = publication.remote_id or ""

        if channel == "presse":
            assert sorted(handler.delivered()) == sorted(RECIPIENTS)
            handler.envelopes.clear()  # from now on: corrections only
            handler.set_fault(spec.smtp[0], times=spec.smtp[1],
                              delay=(spec.http or {}).get("delay", 0.0))
            # The publisher the recall gets (shared per client): the mail server's
            # answer is awaited as briefly as the HTTP client's.
            shared_publisher(account_, client=client, credential=credential,
                             media_root=runtime.catalog.root).smtp_timeout = timeout
        else:
            assert not _the_post(channel, standins).get("deleted_at")
            standins.set_faults([{"network": STANDIN_NETWORK[channel],
                                  "path_contains": _delete_fragment(channel, remote_id),
                                  **spec.http}])
        started = time.monotonic()
        report = await recall_occurrence(runtime, occurrence_id=occurrence_id,
                                         reason=REASON, by="wolf", client=client)
        if fault == "slow":
            await _wait_for_the_slow_one(channel, standins, remote_id, started,
                                         spec.http["delay"])
        if channel == "presse":
            assert handler.times < spec.smtp[1] or handler.fault is None, "fault not hit"
        else:
            assert any(r.get("fault") for r in _deletes(channel, standins, remote_id)), (
                "fault not hit on the delete")
        standins.set_faults([])
        handler.set_fault(None)

    [result] = report.channels
    with store.session_scope(runtime.engine) as session:
        [row] = store.recalls_of(session, occurrence_id=occurrence_id)
    assert row.status == result.status
    assert row.requested_by == "wolf" and row.reason == REASON
    trail = _trail(runtime, channel)
    office = _office(runtime)
    assert len(office) == 1 and office[0]["subject"].startswith("Zurückgezogen:")
    assert secret(channel) not in office[0]["text"] + result.detail
    count_after_recall = (_corrections(handler) if channel == "presse"
                          else _the_post(channel, standins).get("deletions", 0))

    if code == "gone":
        assert result.status == "gone", result.detail
        post = _the_post(channel, standins)
        assert post.get("deleted_at") and post.get("deletions") == 1  # deleted, once
        assert trail == ["recall.requested", "recall.gone"]
        # The faulted request and one repeat reached the network; it deleted once.
        assert len(_deletes(channel, standins, remote_id)) == 2
        if fault == "drop":  # no answer on the connection: sent again at once, on a new one
            assert sleeps == [], sleeps
        else:  # tried again after a pause
            assert len(sleeps) == 1, sleeps
        if fault == "429" and channel in GRAPH:
            assert sleeps == [0.5]  # Graph's code 4 names no wait: the backoff's first step
        elif fault == "429":  # waited as the network said: 3 s (Bluesky's reset moment
            # and the CMS's HTTP-date name a whole second, so up to a second either way)
            assert abs(sleeps[0] - spec.http["retry_after"]) <= 1.0, sleeps
        assert "gelöscht" in office[0]["text"]
    elif code == "corrected":
        assert result.status == "corrected", result.detail
        assert _corrections(handler) == dict.fromkeys(RECIPIENTS, 1)  # each once
        assert len(sleeps) == 1  # the passing refusal was retried, to the one left out
        assert all(m["Subject"].startswith("Zurückgezogen: ") and REASON in m.get_content()
                   for m in handler.messages())
        assert trail == ["recall.requested", "recall.corrected"]
        assert "Korrektur verschickt" in office[0]["text"]
    elif code == "unknown":
        assert result.status == "unknown", result.detail
        assert sleeps == []  # never repeated: that could mail someone twice
        assert _corrections(handler) == dict.fromkeys(RECIPIENTS, 1)  # handed over, once
        assert "may have arrived" in result.detail and RECIPIENTS[0] in result.detail
        assert trail == ["recall.requested", "recall.unknown"]
        assert "unklar, bitte prüfen" in office[0]["text"]
        async with httpx.AsyncClient(timeout=10) as fresh:  # left to a person
            assert await finish_recalls(runtime, client=fresh) == []
        assert _corrections(handler) == dict.fromkeys(RECIPIENTS, 1)
    elif code in ("next", "refused"):
        assert result.status == "failed", result.detail
        assert count_after_recall == (dict.fromkeys(RECIPIENTS, 0) if channel == "presse"
                                      else 0)  # nothing taken down, nobody mailed
        if channel != "presse":
            assert not _the_post(channel, standins).get("deleted_at")
        assert trail == ["recall.requested", "recall.failed"]
        assert "Löschen fehlgeschlagen" in office[0]["text"]
        assert result.detail in office[0]["text"]  # the network's words
        if code == "next":
            assert len(sleeps) == 4, sleeps  # 5 attempts in the recall's run
            if channel != "presse":
                assert len(_deletes(channel, standins, remote_id)) == 5
        else:
            assert sleeps == []  # a refusal is not retried
            assert any(w in result.detail.lower() for w in (
                "credential", "access token", "login", "refused")), result.detail
            if channel != "presse":
                assert len(_deletes(channel, standins, remote_id)) == 1
        # Housekeeping, in another process (another client, so another publisher), the
        # fault gone (the credential renewed): takes it down once.
        async with httpx.AsyncClient(timeout=10) as fresh:
            done = await finish_recalls(runtime, client=fresh)
            final = "corrected" if channel == "presse" else "gone"
            assert [(c.channel, c.status) for c in done] == [(channel, final)], done
            assert await finish_recalls(runtime, client=fresh) == []
        if channel == "presse":
            assert _corrections(handler) == dict.fromkeys(RECIPIENTS, 1)
        else:
            assert _the_post(channel, standins).get("deletions") == 1
        assert _trail(runtime, channel) == ["recall.requested", "recall.failed",
                                            f"recall.{final}"]
    else:
        raise AssertionError(f"no assertions for outcome {code!r}")

    # Recalling again (another person, the same channel): nothing is sent, nothing more
    # deleted or mailed, the first recall's who and why stay.
    settled = _trail(runtime, channel)
    requests_now, mails_now = len(standins.requests()), handler.delivered()
    async with httpx.AsyncClient(timeout=10) as client:
        again = await recall_occurrence(runtime, occurrence_id=occurrence_id,
                                        reason="noch einmal", by="demir", client=client)
    with store.session_scope(runtime.engine) as session:
        [row] = store.recalls_of(session, occurrence_id=occurrence_id)
    assert [c.status for c in again.channels] == [row.status]
    assert row.requested_by == "wolf" and row.reason == REASON
    assert len(standins.requests()) == requests_now and handler.delivered() == mails_now
    assert _trail(runtime, channel) == settled
    if channel != "presse":
        assert _the_post(channel, standins).get("deletions", 0) <= 1  # never twice


# --- the documentation shows this table ------------------------------------------------------


def test_the_document_shows_the_tested_recall_matrix() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert RECALL_BEGIN in text and RECALL_END in text, (
        "run: python bench/fault_matrix.py --write")
    shown = text[text.index(RECALL_BEGIN):text.index(RECALL_END) + len(RECALL_END)]
    assert shown == recall_markdown(), (
        "docs/RELIABILITY.md is stale: python bench/fault_matrix.py --write")



# --- the press e-mail's correction cut short, finished by housekeeping ------------------------


async def test_a_correction_cut_short_is_finished_without_mailing_anyone_twice(
        runtime, standins, smtp, monkeypatch) -> None:
    """The mail server refuses the correction to the first recipient in all five attempts
    (451 to DATA), the others get it in the last: failed. Housekeeping's sweep, in another
    process (another client, so another publisher), must write to the first recipient
    only — as the failure says ("a retry writes only to those who did not get it") and
    as publishing does with a press release (``restore_progress``)."""
    handler, _ = smtp
    occurrence_id, ids = store_occurrence(runtime.engine, [rendered("presse")])
    account_ = runtime.catalog.accounts["presse"]
    sleeps = Sleeps()
    monkeypatch.setattr(newsroom.channels, "withdraw_with_retries",
                        functools.partial(newsroom.channels.withdraw_with_retries,
                                          sleep=sleeps))
    async with httpx.AsyncClient() as client:
        published = await publish_post(
            engine=runtime.engine, post_id=ids["presse"], account=account_, client=client,
            credential=SecretStr(secret("presse")), notifier=Alerts(), sleep=Sleeps(),
            media_root=runtime.catalog.root)
        assert published.status == "published", published.error
        handler.envelopes.clear()
        # 4 attempts × 3 recipients, then the first recipient of the fifth attempt.
        handler.set_fault("451-data", times=4 * len(RECIPIENTS) + 1)
        report = await recall_occurrence(runtime, occurrence_id=occurrence_id,
                                         reason=REASON, by="wolf", client=client)
    [result] = report.channels
    assert result.status == "failed" and len(sleeps) == 4, result.detail
    assert "a retry writes only to those who did not get it" in result.detail
    assert _corrections(handler) == {RECIPIENTS[0]: 0, RECIPIENTS[1]: 1, RECIPIENTS[2]: 1}
    handler.set_fault(None)
    async with httpx.AsyncClient() as fresh:
        done = await finish_recalls(runtime, client=fresh)
    assert [(c.channel, c.status) for c in done] == [("presse", "corrected")]
    assert _corrections(handler) == dict.fromkeys(RECIPIENTS, 1)  # nobody twice
