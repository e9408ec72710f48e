"""The persistence layer, on SQLite and PostgreSQL (see conftest.py)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlmodel import Session, SQLModel, select

from newsroom.errors import AlreadyReserved, StoreError
from newsroom.posts import RenderedPost, bundle_hash
from newsroom.settings import reread_settings
from newsroom.store import (
    ApprovalDecision,
    AuditEvent,
    CampaignRecord,
    Occurrence,
    PostRecord,
    Publication,
    alembic_config,
    approval_requests,
    audit_trail,
    claim_new_armed,
    create_approval_request,
    current_posts,
    get_decision,
    get_or_create_occurrence,
    get_publication,
    get_request_by_nonce,
    make_engine,
    mark_campaign_removed,
    mark_failed,
    mark_published,
    mark_publishing,
    mark_sending,
    mark_unknown,
    normalize_url,
    post_history,
    record_audit,
    record_decision,
    reserve_publication,
    session_scope,
    skip_unsent,
    store_rendered_posts,
    take_over_unsent,
    unmark_publishing,
    upgrade_database,
    upsert_campaign,
    void_requests_for_bundle,
    void_stale_requests,
)
from newsroom.timeutil import BERLIN

TABLES = {
    "campaign",
    "occurrence",
    "post",
    "approval_request",
    "approval_decision",
    "publication",
    "audit_event",
    "crisis",
    "recall",
    "campaign_request",
    "campaign_request_image",
    "request_invitation",
    "request_invitation_cutoff",
}
DAY = date(2027, 1, 27)
NINE_AM = datetime(2027, 1, 27, 9, 0, tzinfo=BERLIN)
DEFINITION = {"id": "gedenktag", "schedule": {"yearly": "01-27 09:00"}, "channels": ["mastodon"]}


def make_post(channel: str = "mastodon", text: str = "Wir gedenken der Opfer.") -> RenderedPost:
    return RenderedPost(
        campaign_id="gedenktag",
        occurrence=DAY,
        channel=channel,
        channel_type=channel,
        publish_at=NINE_AM,
        text=text,
        hashtags=("Darmstadt",),
        title="Gedenktag",
    )


def add_campaign(session: Session, campaign_id: str = "gedenktag") -> CampaignRecord:
    record, _ = upsert_campaign(
        session,
        campaign_id=campaign_id,
        title="Gedenktag",
        kind="yearly",
        topic="erinnerung",
        source_file=f"campaigns/{campaign_id}.yaml",
        definition={**DEFINITION, "id": campaign_id},
    )
    return record


def add_occurrence(session: Session) -> Occurrence:
    add_campaign(session)
    return get_or_create_occurrence(
        session, campaign_id="gedenktag", occurrence_date=DAY, first_publish_at=NINE_AM
    )


def add_post(session: Session) -> PostRecord:
    occurrence = add_occurrence(session)
    (post,) = store_rendered_posts(session, occurrence_id=occurrence.id, posts=[make_post()])
    return post


def run_in_thread(target, *args):
    """Run ``target(*args)`` in a thread; returns (thread, outcome dict)."""
    outcome: dict = {}

    def wrapper():
        try:
            outcome["result"] = target(*args)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome["error"] = exc

    thread = threading.Thread(target=wrapper, daemon=True)
    thread.start()
    return thread, outcome


# --- schema and migrations ---------------------------------------------------------------


def test_upgrade_head_from_nothing_matches_the_models(
    empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no alembic.ini around: the packaged migrations suffice
    engine = make_engine(empty_database_url)
    try:
        assert inspect(engine).get_table_names() == []
        upgrade_database(empty_database_url)
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, SQLModel.metadata) == []
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert context.get_current_revision() == head == "0010"
    finally:
        engine.dispose()


def test_downgrade_to_base_removes_everything_and_upgrade_is_repeatable(
    database_url: str,
) -> None:
    command.downgrade(alembic_config(database_url), "base")
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade_database(database_url)
        upgrade_database(database_url)  # already at head: nothing to do, no error
        assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_without_url_uses_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSROOM_DATABASE_URL", f"sqlite:///{tmp_path / 'from-settings.db'}")
    reread_settings()
    try:
        upgrade_database()
    finally:
        reread_settings()
    engine = make_engine(f"sqlite:///{tmp_path / 'from-settings.db'}")
    try:
        assert TABLES <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        engine.dispose()


def test_postgres_urls_use_psycopg3() -> None:
    assert normalize_url("postgresql://news:p%40ss@db:5432/newsroom") == (
        "postgresql+psycopg://news:p%40ss@db:5432/newsroom"
    )
    assert normalize_url("sqlite:///var/newsroom.db") == "sqlite:///var/newsroom.db"


# --- time zones --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "utc_hour"),
    [
        (datetime(2027, 1, 27, 9, 0, tzinfo=BERLIN), 8),  # CET, UTC+1
        (datetime(2027, 7, 1, 9, 0, tzinfo=BERLIN), 7),  # CEST, UTC+2
    ],
)
def test_datetimes_round_trip_as_aware_utc(
    engine: Engine, database_url: str, local: datetime, utc_hour: int
) -> None:
    with Session(engine) as session:
        add_campaign(session)
        occurrence = get_or_create_occurrence(
            session, campaign_id="gedenktag", occurrence_date=local.date(), first_publish_at=local
        )
        occurrence_id = occurrence.id

    # Read back through a connection whose session time zone is neither UTC nor Berlin.
    connect_args = (
        {"options": "-c timezone=America/New_York"} if "postgresql" in database_url else {}
    )
    other = make_engine(database_url, connect_args=connect_args)
    try:
        with Session(other) as session:
            loaded = session.get(Occurrence, occurrence_id)
            assert loaded.first_publish_at == local
            assert loaded.first_publish_at.tzinfo is UTC
            assert loaded.first_publish_at.hour == utc_hour
            assert loaded.created_at.tzinfo is UTC
            assert abs(datetime.now(UTC) - loaded.created_at) < timedelta(minutes=5)
        with other.connect() as connection:  # what is stored is UTC
            if other.dialect.name == "sqlite":
                raw = connection.execute(text("SELECT first_publish_at FROM occurrence")).scalar()
                assert raw.startswith(f"{local.date().isoformat()} {utc_hour:02d}:00:00")
            else:
                hour = connection.execute(
                    text(
                        "SELECT extract(hour FROM first_publish_at AT TIME ZONE 'UTC')"
                        " FROM occurrence"
                    )
                ).scalar()
                assert int(hour) == utc_hour
    finally:
        other.dispose()


def test_naive_datetimes_are_refused(session: Session) -> None:
    add_campaign(session)
    with pytest.raises(StoreError, match="timezone-aware"):
        get_or_create_occurrence(
            session,
            campaign_id="gedenktag",
            occurrence_date=DAY,
            first_publish_at=datetime(2027, 1, 27, 9, 0),
        )
    session.add(
        Occurrence(
            campaign_id="gedenktag",
            occurrence_date=DAY,
            first_publish_at=datetime(2027, 1, 27, 9, 0),
        )
    )
    with pytest.raises(StatementError, match="naive datetime"):
        session.flush()
    session.rollback()
    assert session.exec(select(func.count()).select_from(Occurrence)).one() == 0


# --- campaigns and occurrences -----------------------------------------------------------


def test_upsert_campaign_reports_changes(session: Session) -> None:
    kwargs = dict(
        campaign_id="gedenktag",
        title="Gedenktag",
        kind="yearly",
        topic="erinnerung",
        source_file="campaigns/gedenktag.yaml",
    )
    record, changed = upsert_campaign(session, **kwargs, definition=DEFINITION)
    assert changed
    first_hash = record.definition_hash
    assert len(first_hash) == 64

    reordered = dict(reversed(list(DEFINITION.items())))  # key order does not matter
    record, changed = upsert_campaign(session, **kwargs, definition=reordered)
    assert not changed
    assert record.definition_hash == first_hash

    record, changed = upsert_campaign(
        session, **kwargs, definition={**DEFINITION, "channels": ["mastodon", "bluesky"]}
    )
    assert changed
    assert record.definition_hash != first_hash
    assert record.definition["channels"] == ["mastodon", "bluesky"]

    mark_campaign_removed(session, campaign_id="gedenktag")
    assert session.get(CampaignRecord, "gedenktag").removed_at is not None
    record, changed = upsert_campaign(
        session, **kwargs, definition={**DEFINITION, "channels": ["mastodon", "bluesky"]}
    )
    assert changed and record.removed_at is None

    with pytest.raises(StoreError, match="not plain JSON"):
        upsert_campaign(session, **kwargs, definition={"start": DAY})


def test_occurrence_is_unique_per_campaign_and_date(session: Session) -> None:
    first = add_occurrence(session)
    again = get_or_create_occurrence(
        session, campaign_id="gedenktag", occurrence_date=DAY, first_publish_at=NINE_AM
    )
    assert again.id == first.id
    assert first.status == "planned"

    session.add(Occurrence(campaign_id="gedenktag", occurrence_date=DAY, first_publish_at=NINE_AM))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()

    session.add(
        Occurrence(campaign_id="no-such-campaign", occurrence_date=DAY, first_publish_at=NINE_AM)
    )
    with pytest.raises(IntegrityError):  # foreign keys are enforced (also on SQLite)
        session.commit()
    session.rollback()


# --- rendered posts ----------------------------------------------------------------------


def test_rerender_with_identical_content_is_a_no_op(session: Session) -> None:
    occurrence = add_occurrence(session)
    posts = [make_post("mastodon"), make_post("bluesky")]
    stored = store_rendered_posts(session, occurrence_id=occurrence.id, posts=posts)
    assert [p.channel for p in stored] == ["bluesky", "mastodon"]
    assert session.get(Occurrence, occurrence.id).bundle_hash == bundle_hash(posts)
    assert stored[1].to_rendered() == posts[0]
    assert stored[1].payload == posts[0].canonical()
    assert stored[1].content_hash == posts[0].content_hash

    again = store_rendered_posts(session, occurrence_id=occurrence.id, posts=list(reversed(posts)))
    assert [(p.id, p.content_hash) for p in again] == [(p.id, p.content_hash) for p in stored]
    assert len(post_history(session, occurrence_id=occurrence.id)) == 2
    assert session.get(Occurrence, occurrence.id).bundle_hash == bundle_hash(posts)


def test_rerender_with_changed_text_supersedes_and_changes_the_bundle(session: Session) -> None:
    occurrence = add_occurrence(session)
    original = [make_post("mastodon"), make_post("bluesky")]
    before = {
        p.channel: p
        for p in store_rendered_posts(session, occurrence_id=occurrence.id, posts=original)
    }
    old_bundle = session.get(Occurrence, occurrence.id).bundle_hash

    changed = [make_post("mastodon", "Neuer Text."), make_post("bluesky")]
    after = {
        p.channel: p
        for p in store_rendered_posts(session, occurrence_id=occurrence.id, posts=changed)
    }
    assert after["bluesky"].id == before["bluesky"].id  # unchanged channel keeps its row
    assert after["mastodon"].id != before["mastodon"].id
    assert after["mastodon"].text == "Neuer Text."
    assert session.get(PostRecord, before["mastodon"].id).superseded_at is not None
    new_bundle = session.get(Occurrence, occurrence.id).bundle_hash
    assert new_bundle == bundle_hash(changed) != old_bundle
    assert len(post_history(session, occurrence_id=occurrence.id)) == 3

    # Back to the first text: the old row is current again, no duplicate is inserted.
    reverted = store_rendered_posts(session, occurrence_id=occurrence.id, posts=original)
    assert {p.id for p in reverted} == {p.id for p in before.values()}
    assert session.get(Occurrence, occurrence.id).bundle_hash == old_bundle
    assert len(post_history(session, occurrence_id=occurrence.id)) == 3

    # A channel that is no longer rendered is superseded.
    only_bluesky = store_rendered_posts(
        session, occurrence_id=occurrence.id, posts=[make_post("bluesky")]
    )
    assert [p.channel for p in only_bluesky] == ["bluesky"]
    assert [p.channel for p in current_posts(session, occurrence_id=occurrence.id)] == ["bluesky"]


def test_posts_must_belong_to_the_occurrence(session: Session) -> None:
    occurrence = add_occurrence(session)
    stranger = RenderedPost(
        campaign_id="other",
        occurrence=DAY,
        channel="mastodon",
        channel_type="mastodon",
        publish_at=NINE_AM,
        text="x",
    )
    with pytest.raises(StoreError, match="does not belong"):
        store_rendered_posts(session, occurrence_id=occurrence.id, posts=[stranger])
    with pytest.raises(StoreError, match="two posts"):
        store_rendered_posts(
            session, occurrence_id=occurrence.id, posts=[make_post(), make_post(text="b")]
        )
    assert current_posts(session, occurrence_id=occurrence.id) == []


# --- publications ------------------------------------------------------------------------


def test_second_reservation_raises_already_reserved(session: Session) -> None:
    post = add_post(session)
    publication = reserve_publication(
        session, post_id=post.id, channel="mastodon", idempotency_key="gedenktag/2027-01-27/m"
    )
    assert publication.status == "reserved" and publication.attempts == 0
    with pytest.raises(AlreadyReserved):
        reserve_publication(session, post_id=post.id, channel="mastodon", idempotency_key="other")
    with pytest.raises(AlreadyReserved):  # same idempotency key: also a duplicate
        reserve_publication(
            session, post_id=post.id, channel="mastodon-2", idempotency_key="gedenktag/2027-01-27/m"
        )
    # The session is still usable, and exactly one publication exists.
    assert get_publication(session, post_id=post.id, channel="mastodon").id == publication.id
    assert session.exec(select(func.count()).select_from(Publication)).one() == 1

    with pytest.raises(StoreError) as excinfo:  # a missing post is no "already reserved"
        reserve_publication(session, post_id=999_999, channel="mastodon", idempotency_key="k")
    assert not isinstance(excinfo.value, AlreadyReserved)


@pytest.mark.parametrize("holder_outcome", ["commit", "rollback"])
def test_reservation_race_is_decided_by_the_database(engine: Engine, holder_outcome: str) -> None:
    with Session(engine) as setup:
        post_id = add_post(setup).id

    # The holder has inserted its reservation but not yet committed when the other
    # process tries: the other must wait and then lose (or win, if the holder rolls back).
    holder = Session(engine)
    try:
        holder.add(Publication(post_id=post_id, channel="mastodon", idempotency_key="holder"))
        holder.flush()

        def contender():
            with Session(engine) as session:
                return reserve_publication(
                    session, post_id=post_id, channel="mastodon", idempotency_key="contender"
                ).idempotency_key

        thread, outcome = run_in_thread(contender)
        time.sleep(0.5)
        assert thread.is_alive(), f"contender did not wait for the holder: {outcome}"
        getattr(holder, holder_outcome)()
        thread.join(timeout=30)
        assert not thread.is_alive()
    finally:
        holder.close()

    if holder_outcome == "commit":
        assert isinstance(outcome.get("error"), AlreadyReserved), outcome
        expected = "holder"
    else:
        assert outcome == {"result": "contender"}
        expected = "contender"
    with Session(engine) as session:
        keys = session.exec(select(Publication.idempotency_key)).all()
    assert keys == [expected]


def test_many_concurrent_reservations_one_winner(engine: Engine) -> None:
    with Session(engine) as setup:
        post_id = add_post(setup).id
    barrier = threading.Barrier(4)

    def reserve(n: int) -> str:
        with Session(engine) as session:
            barrier.wait(timeout=10)
            return reserve_publication(
                session, post_id=post_id, channel="mastodon", idempotency_key=f"key-{n}"
            ).idempotency_key

    runs = [run_in_thread(reserve, n) for n in range(4)]
    for thread, _ in runs:
        thread.join(timeout=60)
    outcomes = [outcome for _, outcome in runs]
    winners = [o["result"] for o in outcomes if "result" in o]
    losers = [o["error"] for o in outcomes if "error" in o]
    assert len(winners) == 1, outcomes
    assert len(losers) == 3 and all(isinstance(e, AlreadyReserved) for e in losers), outcomes


def test_publication_states(session: Session) -> None:
    post = add_post(session)
    publication = reserve_publication(
        session, post_id=post.id, channel="mastodon", idempotency_key="k1"
    )
    publication = mark_publishing(session, publication_id=publication.id)
    assert (publication.status, publication.attempts) == ("publishing", 1)
    mark_failed(session, publication_id=publication.id, error="HTTP 503")
    publication = mark_publishing(session, publication_id=publication.id)  # retry
    assert publication.attempts == 2
    publication = mark_unknown(session, publication_id=publication.id, error="timeout")
    assert (publication.status, publication.last_error) == ("unknown", "timeout")
    with pytest.raises(StoreError, match="unknown"):  # never repeat blindly
        mark_publishing(session, publication_id=publication.id)

    publication = mark_published(
        session, publication_id=publication.id, remote_id="113", remote_url="https://x/113"
    )
    session.expire_all()
    stored = session.get(Publication, publication.id)
    assert (stored.status, stored.remote_id, stored.last_error) == ("published", "113", None)
    assert stored.published_at.tzinfo is UTC
    with pytest.raises(StoreError, match="published"):
        mark_failed(session, publication_id=publication.id, error="late error")


def test_an_armed_claim_is_unsent_until_marked_and_taken_over_by_compare_and_set(
        session: Session) -> None:
    post = add_post(session)
    publication = reserve_publication(session, post_id=post.id, channel="telegram",
                                      idempotency_key="k-armed")
    armed = mark_publishing(session, publication_id=publication.id, armed=True)
    first_claim = armed.claim_token
    assert armed.send_started_at is None and first_claim  # provably unsent
    assert mark_sending(session, claims={armed.id: "not-the-claim"}) == set()
    assert session.get(Publication, armed.id).send_started_at is None

    # The next run takes the dead claimant's post over; the claimant, should it wake,
    # neither sends it nor hands it back.
    taken = take_over_unsent(session, publication_id=armed.id, claim_token=first_claim)
    assert taken is not None and taken.claim_token != first_claim
    assert (taken.attempts, taken.send_started_at is not None) == (2, True)
    assert take_over_unsent(session, publication_id=armed.id, claim_token=first_claim) is None
    assert mark_sending(session, claims={armed.id: first_claim}) == set()
    with pytest.raises(StoreError, match="no longer this run's unsent claim"):
        unmark_publishing(session, publication_id=armed.id, claim_token=first_claim)
    # Sent meanwhile as far as anyone knows: not skipped, not taken over again.
    assert skip_unsent(session, publication_id=armed.id, reason="too late") is None
    assert take_over_unsent(session, publication_id=armed.id,
                            claim_token=taken.claim_token) is None
    assert session.get(Publication, armed.id).status == "publishing"


def test_channels_armed_in_one_transaction_keep_theirs_when_one_was_reserved_elsewhere(
        session: Session) -> None:
    post = add_post(session)
    taken = reserve_publication(session, post_id=post.id, channel="mastodon",
                                idempotency_key="k-elsewhere")
    assert claim_new_armed(session, post_id=post.id, channel="mastodon",
                           idempotency_key="k-mastodon") is None  # reserved by another
    armed = claim_new_armed(session, post_id=post.id, channel="bluesky",
                            idempotency_key="k-bluesky")
    assert claim_new_armed(session, post_id=post.id, channel="telegram",
                           idempotency_key="k-bluesky") is None  # the key is taken
    session.commit()
    session.expire_all()
    stored = session.get(Publication, armed.id)
    assert (stored.status, stored.attempts, stored.send_started_at) == ("publishing", 1, None)
    assert stored.claim_token == armed.claim_token and stored.claim_token
    assert session.get(Publication, taken.id).status == "reserved"
    assert session.exec(select(func.count()).select_from(Publication)).one() == 2
    assert mark_sending(session, claims={armed.id: armed.claim_token}) == {armed.id}
    with pytest.raises(StoreError) as excinfo:  # a missing post is no "reserved elsewhere"
        claim_new_armed(session, post_id=999_999, channel="bluesky", idempotency_key="k-x")
    assert not isinstance(excinfo.value, AlreadyReserved)


def test_a_burst_is_marked_in_one_call_and_an_unsent_claim_can_be_handed_back_or_skipped(
        session: Session) -> None:
    claims = {}
    post = add_post(session)
    for channel in ("mastodon", "bluesky", "telegram"):
        publication = reserve_publication(session, post_id=post.id, channel=channel,
                                          idempotency_key=f"k-{channel}")
        armed = mark_publishing(session, publication_id=publication.id, armed=True)
        claims[armed.id] = armed.claim_token
    mastodon, bluesky, telegram = claims
    assert mark_sending(session, claims={mastodon: claims[mastodon],
                                         bluesky: claims[bluesky]}) == {mastodon, bluesky}
    session.expire_all()
    marked = [session.get(Publication, i).send_started_at for i in (mastodon, bluesky)]
    assert marked[0] is not None and marked[0] == marked[1]  # one transaction, one instant
    assert skip_unsent(session, publication_id=mastodon, reason="too late") is None

    back = unmark_publishing(session, publication_id=telegram, claim_token=claims[telegram])
    assert (back.status, back.attempts, back.claim_token) == ("reserved", 0, None)
    assert mark_publishing(session, publication_id=telegram, armed=True).claim_token
    skipped = skip_unsent(session, publication_id=telegram, reason="zu spät")
    assert skipped is not None and (skipped.status, skipped.last_error) == ("skipped", "zu spät")
    assert skipped.claim_token is None


# --- approvals ---------------------------------------------------------------------------


def test_a_decision_is_single_use(session: Session) -> None:
    post = add_post(session)
    occurrence = session.get(Occurrence, post.occurrence_id)
    deadline = NINE_AM - timedelta(days=1)
    request = create_approval_request(
        session,
        occurrence_id=occurrence.id,
        person_id="ob",
        bundle_hash=occurrence.bundle_hash,
        deadline=deadline,
    )
    assert request.status == "pending" and len(request.token_nonce) >= 32
    same = create_approval_request(
        session,
        occurrence_id=occurrence.id,
        person_id="ob",
        bundle_hash=occurrence.bundle_hash,
        deadline=deadline,
    )
    assert (same.id, same.token_nonce) == (request.id, request.token_nonce)
    assert get_request_by_nonce(session, token_nonce=request.token_nonce).id == request.id

    with pytest.raises(StoreError, match="bundle"):
        record_decision(
            session, request_id=request.id, decision="approve", decided_by="ob",
            via="link", bundle_hash="0" * 64,
        )  # fmt: skip
    decision = record_decision(
        session,
        request_id=request.id,
        decision="approve",
        decided_by="ob",
        via="link",
        bundle_hash=occurrence.bundle_hash,
        comment="Passt.",
    )
    assert get_decision(session, request_id=request.id).id == decision.id
    session.expire_all()
    assert session.get(type(request), request.id).status == "approved"
    assert session.get(type(request), request.id).decided_at is not None

    with pytest.raises(StoreError, match="decided once"):
        record_decision(
            session,
            request_id=request.id,
            decision="reject",
            decided_by="admin:mueller",
            via="cli",
            bundle_hash=occurrence.bundle_hash,
        )
    # The database itself refuses a second decision row for the request.
    session.add(
        ApprovalDecision(
            request_id=request.id,
            decision="reject",
            decided_by="x",
            via="cli",
            bundle_hash=occurrence.bundle_hash,
        )
    )
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    assert session.exec(select(func.count()).select_from(ApprovalDecision)).one() == 1


def test_concurrent_decisions_only_one_counts(engine: Engine) -> None:
    with Session(engine) as setup:
        occurrence = setup.get(Occurrence, add_post(setup).occurrence_id)
        request_id = create_approval_request(
            setup,
            occurrence_id=occurrence.id,
            person_id="ob",
            bundle_hash=occurrence.bundle_hash,
            deadline=NINE_AM,
        ).id
        bundle = occurrence.bundle_hash
    barrier = threading.Barrier(3)

    def decide(decision: str) -> str:
        with Session(engine) as session:
            barrier.wait(timeout=10)
            return record_decision(
                session,
                request_id=request_id,
                decision=decision,
                decided_by="ob",
                via="link",
                bundle_hash=bundle,
            ).decision

    runs = [run_in_thread(decide, d) for d in ("approve", "reject", "request_changes")]
    for thread, _ in runs:
        thread.join(timeout=60)
    outcomes = [outcome for _, outcome in runs]
    winners = [o["result"] for o in outcomes if "result" in o]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o.get("error"), StoreError) for o in outcomes if "error" in o)
    with Session(engine) as session:
        assert get_decision(session, request_id=request_id).decision == winners[0]


def test_changed_content_voids_pending_requests(session: Session) -> None:
    occurrence = add_occurrence(session)
    store_rendered_posts(session, occurrence_id=occurrence.id, posts=[make_post()])
    old_bundle = session.get(Occurrence, occurrence.id).bundle_hash
    for person in ("ob", "buergermeisterin"):
        create_approval_request(
            session,
            occurrence_id=occurrence.id,
            person_id=person,
            bundle_hash=old_bundle,
            deadline=NINE_AM,
        )

    store_rendered_posts(session, occurrence_id=occurrence.id, posts=[make_post(text="Neu.")])
    new_bundle = session.get(Occurrence, occurrence.id).bundle_hash
    with pytest.raises(StoreError, match="not the current content"):
        create_approval_request(
            session, occurrence_id=occurrence.id, person_id="ob", bundle_hash=old_bundle,
            deadline=NINE_AM,
        )  # fmt: skip
    (ob_request, other) = approval_requests(session, occurrence_id=occurrence.id)
    with pytest.raises(StoreError, match="content changed"):  # stale, even before voiding
        record_decision(
            session, request_id=ob_request.id, decision="approve", decided_by="ob",
            via="link", bundle_hash=old_bundle,
        )  # fmt: skip

    voided = void_stale_requests(session, occurrence_id=occurrence.id)
    assert {r.id for r in voided} == {ob_request.id, other.id}
    assert {r.status for r in approval_requests(session, occurrence_id=occurrence.id)} == {"void"}
    assert (
        void_requests_for_bundle(session, occurrence_id=occurrence.id, bundle_hash=old_bundle) == []
    )

    fresh = create_approval_request(
        session, occurrence_id=occurrence.id, person_id="ob", bundle_hash=new_bundle,
        deadline=NINE_AM,
    )  # fmt: skip
    assert fresh.id != ob_request.id
    (voided,) = void_requests_for_bundle(
        session, occurrence_id=occurrence.id, bundle_hash=new_bundle
    )
    assert voided.id == fresh.id and voided.status == "void"
    with pytest.raises(StoreError, match="void, not pending"):
        record_decision(
            session, request_id=fresh.id, decision="approve", decided_by="ob",
            via="link", bundle_hash=new_bundle,
        )  # fmt: skip


# --- audit trail -------------------------------------------------------------------------


def test_audit_trail_is_ordered_by_time_then_insertion(session: Session) -> None:
    t0 = datetime(2027, 1, 20, 8, 0, tzinfo=UTC)
    record_audit(session, campaign_id="gedenktag", actor="flow", action="c", at=t0 + timedelta(2))
    record_audit(session, campaign_id="gedenktag", actor="flow", action="a", at=t0)
    record_audit(session, campaign_id="other", actor="flow", action="x", at=t0)
    record_audit(
        session,
        campaign_id="gedenktag",
        actor="ob",
        action="b1",
        at=t0 + timedelta(1),
        occurrence_date=DAY,
        content_hash="abc",
        channel="mastodon",
        detail={"comment": "Passt.", "via": "link"},
    )
    record_audit(
        session,
        campaign_id="gedenktag",
        actor="ob",
        action="b2",
        at=(t0 + timedelta(1)).astimezone(BERLIN),
    )
    session.expire_all()
    trail = audit_trail(session, campaign_id="gedenktag")
    assert [e.action for e in trail] == ["a", "b1", "b2", "c"]
    assert trail[1].detail == {"comment": "Passt.", "via": "link"}
    assert trail[1].occurrence_date == DAY
    assert all(e.at.tzinfo is UTC for e in trail)


def test_audit_trail_is_append_only(session: Session, engine: Engine) -> None:
    event = record_audit(session, campaign_id="gedenktag", actor="flow", action="planned")
    event.action = "rewritten"
    with pytest.raises(StoreError, match="append-only"):
        session.commit()
    session.rollback()
    session.delete(session.get(AuditEvent, event.id))
    with pytest.raises(StoreError, match="append-only"):
        session.commit()
    session.rollback()

    # Also outside the ORM: the database refuses.
    for statement in ("UPDATE audit_event SET action = 'x'", "DELETE FROM audit_event"):
        with engine.connect() as connection, pytest.raises(DBAPIError, match="append-only"):
            connection.execute(text(statement))
    session.expire_all()
    assert [e.action for e in audit_trail(session, campaign_id="gedenktag")] == ["planned"]


# --- sessions ----------------------------------------------------------------------------


def test_session_scope_commits_or_rolls_back(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(AuditEvent(campaign_id="c", actor="a", action="kept"))
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        session.add(AuditEvent(campaign_id="c", actor="a", action="dropped"))
        session.flush()
        raise RuntimeError("boom")
    with session_scope(engine) as session:
        assert [e.action for e in audit_trail(session, campaign_id="c")] == ["kept"]
