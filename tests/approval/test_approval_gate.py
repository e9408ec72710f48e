"""The gate's rules on a real store: one/all/quorum, rejections, changes, deadlines,
deputies, admin decisions, and the 8-signer quorum with signatory names."""

from __future__ import annotations

from datetime import timedelta

import pytest
from approval_testkit import (
    AFTER,
    BEFORE,
    DAY,
    DEADLINE,
    DEPUTY_DAY,
    Outbox,
    actions,
    requests_by_person,
    store_posts,
)

from newsroom import approval, store
from newsroom.approval import GateOutcome
from newsroom.rendering.render import render_occurrence


def _link_decide(engine, catalog, signer, occurrence_id, person, decision, at=BEFORE,
                 comment=""):
    request = requests_by_person(engine, occurrence_id)[person]
    link = approval.approval_link(signer, request, "http://x")
    token = link.rsplit("/", 1)[1]
    return approval.decide(engine, catalog, token=token, decision=decision, comment=comment,
                           signer=signer, now=at)


def _open(engine, catalog, campaign_id, day=None):
    occurrence_id = store_posts(engine, catalog, campaign_id, *(day and [day] or []))
    return occurrence_id, approval.open_gate(engine, catalog, occurrence_id=occurrence_id,
                                             now=BEFORE)


def test_open_gate_is_idempotent_and_sends_nothing(engine, catalog):
    occurrence_id, status = _open(engine, catalog, "t-one")
    again = approval.open_gate(engine, catalog, occurrence_id=occurrence_id, now=BEFORE)
    assert status.asked == again.asked == ("benz", "akdeniz", "feldmann")
    assert status.outcome == GateOutcome.PENDING and not status.settled
    assert status.deadline == DEADLINE and status.needed == 1
    assert actions(engine, "t-one").count("approval.requested") == 3
    assert len(requests_by_person(engine, occurrence_id)) == 3


def test_mode_one_first_approval_wins(engine, catalog, signer):
    occurrence_id, _ = _open(engine, catalog, "t-one")
    status = _link_decide(engine, catalog, signer, occurrence_id, "akdeniz", "approve")
    assert status.outcome == GateOutcome.APPROVED and status.settled
    assert status.approved == ("akdeniz",) and status.signatory_names(catalog) == [
        "Bürgermeisterin Barbara Akdeniz"]
    with pytest.raises(approval.GateClosed):
        _link_decide(engine, catalog, signer, occurrence_id, "benz", "reject")
    with store.session_scope(engine) as session:
        occurrence = session.get(store.Occurrence, occurrence_id)
    assert occurrence.gate_outcome == "approved" and occurrence.status == "approved"
    assert actions(engine, "t-one").count("approval.settled") == 1


@pytest.mark.parametrize(("decision", "outcome"), [
    ("reject", GateOutcome.REJECTED), ("request_changes", GateOutcome.CHANGES_REQUESTED)])
def test_mode_one_rejection_or_changes_settle(engine, catalog, signer, decision, outcome):
    occurrence_id, _ = _open(engine, catalog, "t-one")
    status = _link_decide(engine, catalog, signer, occurrence_id, "benz", decision,
                          comment="Bitte anders formulieren")
    assert status.outcome == outcome


def test_mode_all_needs_everyone_and_any_rejection_rejects(engine, catalog, signer):
    occurrence_id, _ = _open(engine, catalog, "t-all")
    assert _link_decide(engine, catalog, signer, occurrence_id, "benz", "approve"
                        ).outcome == GateOutcome.PENDING
    status = _link_decide(engine, catalog, signer, occurrence_id, "feldmann", "approve")
    assert status.outcome == GateOutcome.PENDING and status.pending == ("akdeniz",)
    status = _link_decide(engine, catalog, signer, occurrence_id, "akdeniz", "approve")
    assert status.outcome == GateOutcome.APPROVED and status.needed == 3

    other = store_posts(engine, catalog, "t-all-escalate")
    approval.open_gate(engine, catalog, occurrence_id=other, now=BEFORE)
    _link_decide(engine, catalog, signer, other, "benz", "approve")
    status = _link_decide(engine, catalog, signer, other, "akdeniz", "request_changes")
    assert status.outcome == GateOutcome.CHANGES_REQUESTED


def test_quorum_rejects_only_when_it_can_no_longer_be_reached(engine, catalog, signer):
    occurrence_id, _ = _open(engine, catalog, "t-quorum")
    status = _link_decide(engine, catalog, signer, occurrence_id, "benz", "reject")
    assert status.outcome == GateOutcome.PENDING  # 2 of 3 can still approve
    status = _link_decide(engine, catalog, signer, occurrence_id, "akdeniz", "approve")
    assert status.outcome == GateOutcome.PENDING
    status = _link_decide(engine, catalog, signer, occurrence_id, "feldmann", "approve")
    assert status.outcome == GateOutcome.APPROVED


def test_quorum_unreachable_is_rejected(engine, catalog, signer):
    occurrence_id, _ = _open(engine, catalog, "t-quorum")
    _link_decide(engine, catalog, signer, occurrence_id, "benz", "reject")
    status = _link_decide(engine, catalog, signer, occurrence_id, "akdeniz", "request_changes")
    assert status.outcome == GateOutcome.REJECTED
    assert status.rejected == ("benz",) and status.changes_requested == ("akdeniz",)


@pytest.mark.parametrize(("campaign", "approvers", "outcome"), [
    ("t-one", [], GateOutcome.CANCELLED),
    ("t-all", ["benz", "akdeniz"], GateOutcome.CANCELLED),
    ("t-quorum-collect", ["benz"], GateOutcome.CANCELLED),
    ("t-quorum-collect", ["benz", "feldmann"], GateOutcome.APPROVED),
    ("t-all-escalate", ["benz"], GateOutcome.ESCALATED),
])
def test_deadline_applies_on_timeout(engine, catalog, signer, campaign, approvers, outcome):
    occurrence_id, _ = _open(engine, catalog, campaign)
    for person in approvers:
        assert _link_decide(engine, catalog, signer, occurrence_id, person, "approve"
                            ).outcome == GateOutcome.PENDING
    just_before = DEADLINE - timedelta(seconds=1)
    assert approval.evaluate_gate(engine, catalog, occurrence_id=occurrence_id,
                                  now=just_before).outcome == GateOutcome.PENDING
    status = approval.evaluate_gate(engine, catalog, occurrence_id=occurrence_id, now=AFTER)
    assert status.outcome == outcome and status.pending == ()
    statuses = {r.person_id: r.status for r in requests_by_person(engine, occurrence_id).values()}
    assert sorted(p for p, s in statuses.items() if s == "expired") == sorted(
        set(statuses) - set(approvers))
    # Settled (or escalated) once: evaluating again changes nothing.
    later = approval.evaluate_gate(engine, catalog, occurrence_id=occurrence_id,
                                   now=AFTER + timedelta(days=1))
    assert later.outcome == outcome
    assert status.settled == (outcome != GateOutcome.ESCALATED)


def test_escalated_gate_waits_for_an_admin(engine, catalog, signer):
    occurrence_id, _ = _open(engine, catalog, "t-all-escalate")
    approval.evaluate_gate(engine, catalog, occurrence_id=occurrence_id, now=AFTER)
    with store.session_scope(engine) as session:
        assert session.get(store.Occurrence, occurrence_id).escalated_at == AFTER
    status = approval.admin_decision(engine, catalog, occurrence_id=occurrence_id,
                                     decision="approve", comment="OB hat telefonisch zugestimmt",
                                     admin="wolf", now=AFTER + timedelta(minutes=5))
    assert status.outcome == GateOutcome.APPROVED and status.settled
    assert status.decided_by_admin == "wolf"
    assert "admin:wolf" not in status.asked
    with pytest.raises(approval.ApprovalError, match="settled already"):
        approval.admin_decision(engine, catalog, occurrence_id=occurrence_id, decision="reject",
                                comment="", admin="demir", now=AFTER)


def test_deputy_is_asked_for_the_absent_person(engine, catalog):
    occurrence_id, status = _open(engine, catalog, "t-deputy", DEPUTY_DAY)
    assert status.asked == ("bergmann",)
    outbox = Outbox()
    from newsroom.signing import Signer
    approval.notify_approvers(engine, catalog, occurrence_id=occurrence_id, notifier=outbox,
                              signer=Signer("x" * 40), base_url="http://x", now=BEFORE)
    [message] = outbox.to("bergmann")
    assert "in Vertretung für Stadträtin Miriam Okafor" in message["text"]


def test_eight_signers_six_approve_by_the_deadline(engine, catalog, signer):
    occurrence_id, status = _open(engine, catalog, "t-magistrat")
    assert len(status.asked) == 8 and status.needed == 5
    signing = [p for p in status.asked if p not in ("feldmann", "neumann")]
    for person in signing:
        outcome = _link_decide(engine, catalog, signer, occurrence_id, person, "approve").outcome
        assert outcome == GateOutcome.PENDING  # collecting signatures until the deadline
    status = approval.evaluate_gate(engine, catalog, occurrence_id=occurrence_id, now=AFTER)
    assert status.outcome == GateOutcome.APPROVED
    assert status.approved == tuple(signing) and len(signing) == 6
    names = status.signatory_names(catalog)
    assert len(names) == 6 and "Stadtkämmerer Jonas Feldmann" not in names
    assert "Stadträtin Paula Neumann" not in names
    posts = render_occurrence(catalog, "t-magistrat", status.occurrence_date, signatories=names)
    assert all("Feldmann" not in p.text and "Akdeniz" in p.text for p in posts)
    summary = approval.gate_summary_markdown(status, catalog, posts)
    assert "Stadtkämmerer Jonas Feldmann" in summary.split("Not signed")[1]


def test_changed_content_voids_old_requests_and_reopens(engine, catalog, signer):
    occurrence_id, _ = _open(engine, catalog, "t-one")
    old = requests_by_person(engine, occurrence_id)["benz"]
    posts = render_occurrence(catalog, "t-one", DAY)
    changed = [type(p)(**{**p.__dict__, "text": p.text + "\nNeu."}) for p in posts]
    with store.session_scope(engine) as session:
        store.store_rendered_posts(session, occurrence_id=occurrence_id, posts=changed)
    pending = approval.evaluate_gate(engine, catalog, occurrence_id=occurrence_id, now=BEFORE)
    assert pending.outcome == GateOutcome.PENDING and "changed" in pending.reason
    status = approval.open_gate(engine, catalog, occurrence_id=occurrence_id, now=BEFORE)
    assert status.bundle_hash != old.bundle_hash and len(status.asked) == 3
    with store.session_scope(engine) as session:
        assert store.get_approval_request(session, request_id=old.id).status == "void"
    assert "approval.voided" in actions(engine, "t-one")
