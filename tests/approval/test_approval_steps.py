"""Approval in steps on a real store: the chain is walked in order (nobody of a step is
asked or mailed before the step before is approved), a rejection or a request for changes
at any step closes the gate, an edit starts the chain again at its first step, a quorum
and a deputy inside a step, each step's deadline with each timeout rule, the admin
deciding the step the gate stands at, and the chain on the page, in the mails and in the
Prefect artifact."""

from __future__ import annotations

from datetime import timedelta

import pytest
from approval_testkit import (
    BEFORE,
    DAY,
    DEPUTY_DAY,
    STEP_DEADLINES,
    Outbox,
    actions,
    store_posts,
)

from newsroom import approval, store
from newsroom.approval import GateOutcome, StepState
from newsroom.rendering.render import render_occurrence

STEP_1, STEP_2, STEP_3 = STEP_DEADLINES


def _requests(engine, occurrence_id):
    """The occurrence's requests that are not void, by person (each person is in one step)."""
    with store.session_scope(engine) as session:
        rows = store.approval_requests(session, occurrence_id=occurrence_id)
    return {r.person_id: r for r in rows if r.status != "void"}


def _decide(engine, catalog, signer, occurrence_id, person, decision, at=BEFORE):
    request = _requests(engine, occurrence_id)[person]
    token = approval.approval_link(signer, request, "http://x").rsplit("/", 1)[1]
    return approval.decide(engine, catalog, token=token, decision=decision, comment="",
                           signer=signer, now=at)


def _mail(engine, catalog, signer, occurrence_id, outbox, at=BEFORE):
    return approval.notify_approvers(engine, catalog, occurrence_id=occurrence_id,
                                     notifier=outbox, signer=signer, base_url="http://x",
                                     now=at)


def _open(engine, catalog, campaign_id, day=DAY):
    occurrence_id = store_posts(engine, catalog, campaign_id, day)
    return occurrence_id, approval.open_gate(engine, catalog, occurrence_id=occurrence_id,
                                             now=BEFORE)


def _through_step_2(engine, catalog, signer, campaign_id="t-chain"):
    occurrence_id, _ = _open(engine, catalog, campaign_id)
    _decide(engine, catalog, signer, occurrence_id, "sportamt-leitung", "approve")
    _decide(engine, catalog, signer, occurrence_id, "benz", "approve")
    status = _decide(engine, catalog, signer, occurrence_id, "akdeniz", "approve")
    return occurrence_id, status


def test_three_steps_are_asked_in_order_and_settle_once(engine, catalog, signer):
    occurrence_id, status = _open(engine, catalog, "t-chain")
    assert [s.name for s in status.steps] == ["Fachamt", "Dezernate", "Schlussredaktion"]
    assert status.step == 0 and status.asked == ("sportamt-leitung",)
    assert [s.state for s in status.steps] == [StepState.CURRENT, StepState.TO_COME,
                                               StepState.TO_COME]
    assert status.steps[1].people == ("benz", "akdeniz", "okafor")  # to be asked
    assert [s.deadline for s in status.steps] == list(STEP_DEADLINES)
    outbox = Outbox()
    assert _mail(engine, catalog, signer, occurrence_id, outbox) == ["sportamt-leitung"]
    assert set(_requests(engine, occurrence_id)) == {"sportamt-leitung"}
    [first] = outbox.sent
    assert "(Stufe 1 von 3)" in first["subject"]
    assert "Ihre Stufe: Stufe 1 von 3: Fachamt" in first["text"]
    assert "Stufe 2 von 3 – Dezernate: folgt danach" in first["text"]

    status = _decide(engine, catalog, signer, occurrence_id, "sportamt-leitung", "approve")
    assert status.outcome == GateOutcome.PENDING and status.step == 1
    assert status.asked == ("benz", "akdeniz", "okafor") and status.needed == 2
    assert status.deadline == STEP_2
    assert {r.person_id: r.step for r in _requests(engine, occurrence_id).values()} == {
        "sportamt-leitung": 0, "benz": 1, "akdeniz": 1, "okafor": 1}
    assert sorted(_mail(engine, catalog, signer, occurrence_id, outbox)) == [
        "akdeniz", "benz", "okafor"]
    [to_benz] = outbox.to("benz")
    assert "(Stufe 2 von 3)" in to_benz["subject"]
    assert "Stufe 1 von 3 – Fachamt: freigegeben (Leiterin des Sportamts Petra Kühn" in (
        to_benz["text"])
    assert not outbox.to("hoffmann") and not outbox.to("demir")

    # A quorum of 2 inside the step: the second approval closes the step.
    assert _decide(engine, catalog, signer, occurrence_id, "benz", "approve").step == 1
    status = _decide(engine, catalog, signer, occurrence_id, "akdeniz", "approve")
    assert status.step == 2 and status.outcome == GateOutcome.PENDING
    assert status.asked == ("hoffmann", "demir") and status.deadline == STEP_3
    # The third Dezernentin's link no longer counts: her step is done.
    with pytest.raises(approval.StepDone):
        _decide(engine, catalog, signer, occurrence_id, "okafor", "reject")
    assert sorted(_mail(engine, catalog, signer, occurrence_id, outbox)) == ["demir", "hoffmann"]
    assert not outbox.to("okafor")[1:]  # no reminder or second mail for a done step

    status = _decide(engine, catalog, signer, occurrence_id, "hoffmann", "approve")
    assert status.outcome == GateOutcome.APPROVED and status.settled and status.step == 2
    assert [s.state for s in status.steps] == [StepState.DONE] * 3
    # Only the step whose approvals sign names the signatories.
    assert status.signatory_names(catalog) == ["Oberbürgermeister Hanno Benz",
                                               "Bürgermeisterin Barbara Akdeniz"]
    trail = actions(engine, "t-chain")
    assert trail.count("approval.step_approved") == 2
    assert trail.count("approval.settled") == 1
    assert [d.step for d in status.decisions] == [0, 1, 1, 2]
    with store.session_scope(engine) as session:
        events = store.audit_trail(session, campaign_id="t-chain")
    decided = [e for e in events if e.action == "approval.decided"]
    assert [(e.actor, e.content_hash) for e in decided] == [
        (p, status.bundle_hash) for p in ("sportamt-leitung", "benz", "akdeniz", "hoffmann")]
    requested = [e.detail["step"] for e in events if e.action == "approval.requested"]
    assert requested == [0, 1, 1, 1, 2, 2]


def test_a_rejection_at_step_two_closes_the_gate(engine, catalog, signer):
    occurrence_id, _ = _open(engine, catalog, "t-chain")
    _decide(engine, catalog, signer, occurrence_id, "sportamt-leitung", "approve")
    _decide(engine, catalog, signer, occurrence_id, "benz", "reject")
    # One rejection of three with a quorum of 2 leaves the quorum reachable.
    status = _decide(engine, catalog, signer, occurrence_id, "okafor", "reject")
    assert status.outcome == GateOutcome.REJECTED and status.settled and status.step == 1
    assert [s.state for s in status.steps] == [StepState.DONE, StepState.CLOSED,
                                               StepState.TO_COME]
    assert set(_requests(engine, occurrence_id)) == {"sportamt-leitung", "benz", "akdeniz",
                                                     "okafor"}
    with pytest.raises(approval.GateClosed):
        _decide(engine, catalog, signer, occurrence_id, "akdeniz", "approve")


def _edit(engine, catalog, occurrence_id, campaign_id="t-chain", extra="\nNeu."):
    posts = render_occurrence(catalog, campaign_id, DAY)
    changed = [type(p)(**{**p.__dict__, "text": p.text + extra}) for p in posts]
    with store.session_scope(engine) as session:
        store.store_rendered_posts(session, occurrence_id=occurrence_id, posts=changed)


def test_changes_requested_at_step_three_start_the_chain_again(engine, catalog, signer):
    occurrence_id, _ = _through_step_2(engine, catalog, signer)
    status = _decide(engine, catalog, signer, occurrence_id, "demir", "request_changes")
    assert status.outcome == GateOutcome.CHANGES_REQUESTED and status.settled
    assert status.step == 2
    old_bundle = status.bundle_hash

    _edit(engine, catalog, occurrence_id)
    status = approval.open_gate(engine, catalog, occurrence_id=occurrence_id, now=BEFORE)
    # The rule: every approval is bound to the exact content, so an edit is asked from
    # step 1 again, and nobody of a later step before the one before approves.
    assert status.bundle_hash != old_bundle and not status.settled
    assert status.step == 0 and status.asked == ("sportamt-leitung",)
    assert [s.state for s in status.steps] == [StepState.CURRENT, StepState.TO_COME,
                                               StepState.TO_COME]
    outbox = Outbox()
    assert _mail(engine, catalog, signer, occurrence_id, outbox) == ["sportamt-leitung"]
    [mail] = outbox.sent
    assert mail["subject"].startswith("Geänderte Fassung – Freigabe erbeten (Stufe 1 von 3)")
    # The earlier decisions stay in the store for the earlier bundle only.
    with store.session_scope(engine) as session:
        rows = store.approval_requests(session, occurrence_id=occurrence_id)
    assert {r.bundle_hash for r in rows if r.status == "approved"} == {old_bundle}


def test_an_edit_during_step_two_voids_its_links_and_asks_step_one_again(engine, catalog,
                                                                         signer):
    occurrence_id, _ = _open(engine, catalog, "t-chain")
    _decide(engine, catalog, signer, occurrence_id, "sportamt-leitung", "approve")
    benz = _requests(engine, occurrence_id)["benz"]
    token = approval.approval_link(signer, benz, "http://x").rsplit("/", 1)[1]
    _edit(engine, catalog, occurrence_id)
    with pytest.raises(approval.ContentChanged):
        approval.decide(engine, catalog, token=token, decision="approve", comment="",
                        signer=signer, now=BEFORE)
    status = approval.open_gate(engine, catalog, occurrence_id=occurrence_id, now=BEFORE)
    assert status.step == 0 and status.asked == ("sportamt-leitung",)
    with store.session_scope(engine) as session:
        rows = store.approval_requests(session, occurrence_id=occurrence_id)
    assert {(r.person_id, r.status) for r in rows if r.step == 1} == {
        ("benz", "void"), ("akdeniz", "void"), ("okafor", "void")}
    assert [r.step for r in rows if r.bundle_hash == status.bundle_hash] == [0]
    assert actions(engine, "t-chain").count("approval.voided") == 3


def test_a_deputy_stands_in_inside_a_step(engine, catalog, signer):
    occurrence_id, _ = _open(engine, catalog, "t-chain-deputy", DEPUTY_DAY)
    status = _decide(engine, catalog, signer, occurrence_id, "sportamt-leitung", "approve")
    # okafor is away on DEPUTY_DAY: bergmann is asked in her place, in her step.
    assert status.step == 1 and status.asked == ("benz", "akdeniz", "bergmann")
    assert status.steps[1].on_behalf_of == (("bergmann", "okafor"),)
    outbox = Outbox()
    _mail(engine, catalog, signer, occurrence_id, outbox)
    [message] = outbox.to("bergmann")
    assert "in Vertretung für Stadträtin Miriam Okafor" in message["text"]
    assert "(Stufe 2 von 3)" in message["subject"]


@pytest.mark.parametrize(("campaign", "approvers", "outcome", "step"), [
    ("t-chain", ["benz"], GateOutcome.CANCELLED, 1),
    ("t-chain-escalate", ["benz"], GateOutcome.ESCALATED, 1),
    ("t-chain-collect", ["benz"], GateOutcome.CANCELLED, 1),
    # publish_if_quorum: the met quorum collects until the step's deadline, then the
    # chain goes on to the next step.
    ("t-chain-collect", ["benz", "akdeniz"], GateOutcome.PENDING, 2),
])
def test_a_step_times_out_by_its_own_rule(engine, catalog, signer, campaign, approvers,
                                          outcome, step):
    occurrence_id, _ = _open(engine, catalog, campaign)
    _decide(engine, catalog, signer, occurrence_id, "sportamt-leitung", "approve")
    for person in approvers:
        assert _decide(engine, catalog, signer, occurrence_id, person, "approve").step == 1
    assert approval.evaluate_gate(engine, catalog, occurrence_id=occurrence_id,
                                  now=STEP_2 - timedelta(seconds=1)).step == 1
    outbox = Outbox()
    changed = approval.process_deadlines(engine, catalog, notifier=outbox, signer=signer,
                                         base_url="http://x", now=STEP_2)
    status = approval.evaluate_gate(engine, catalog, occurrence_id=occurrence_id, now=STEP_2)
    assert status.outcome == outcome and status.step == step
    assert [s.occurrence_id for s in changed] == ([] if outcome == GateOutcome.PENDING
                                                  else [occurrence_id])
    expired = {r.person_id for r in _requests(engine, occurrence_id).values()
               if r.status == "expired"}
    assert expired == {"benz", "akdeniz", "okafor"} - set(approvers)
    if outcome == GateOutcome.PENDING:
        # The step the sweep opened is mailed by the sweep, at once.
        assert sorted(m["tag"] for m in outbox.sent) == ["demir", "hoffmann"]
        assert status.deadline == STEP_3
    else:
        assert not outbox.to("hoffmann")
        notice = [m for m in outbox.sent if "Frist" in m["subject"]]
        assert notice and "(Stufe 2 von 3: Dezernate)" in notice[0]["subject"]
        if outcome == GateOutcome.ESCALATED:
            assert {m["tag"] for m in notice} == {"amt-kommunikation", "wolf"}


def test_an_admin_decides_the_step_the_gate_stands_at(engine, catalog, signer):
    occurrence_id, _ = _open(engine, catalog, "t-chain-escalate")
    _decide(engine, catalog, signer, occurrence_id, "sportamt-leitung", "approve")
    escalated = approval.evaluate_gate(engine, catalog, occurrence_id=occurrence_id, now=STEP_2)
    assert escalated.outcome == GateOutcome.ESCALATED and escalated.step == 1
    at = STEP_2 + timedelta(minutes=5)
    status = approval.admin_decision(engine, catalog, occurrence_id=occurrence_id,
                                     decision="approve", comment="telefonisch abgestimmt",
                                     admin="wolf", now=at, decision_key="input-1")
    # The escalated step is approved by the admin; the chain goes on to step 3.
    assert status.outcome == GateOutcome.PENDING and not status.settled and status.step == 2
    assert status.asked == ("hoffmann", "demir")
    # The same input again (a resumed run replays its inputs) decides nothing more.
    again = approval.admin_decision(engine, catalog, occurrence_id=occurrence_id,
                                    decision="approve", comment="telefonisch abgestimmt",
                                    admin="wolf", now=at, decision_key="input-1")
    assert again.step == 2 and not again.settled
    assert actions(engine, "t-chain-escalate").count("approval.admin_decided") == 1
    final = approval.admin_decision(engine, catalog, occurrence_id=occurrence_id,
                                    decision="approve", comment="Schlussredaktion",
                                    admin="demir", now=at, decision_key="input-2")
    assert final.outcome == GateOutcome.APPROVED and final.settled
    assert [(d.person_id, d.step, d.by_admin) for d in final.decisions] == [
        ("sportamt-leitung", 0, False), ("wolf", 1, True), ("demir", 2, True)]
    with store.session_scope(engine) as session:
        decided = [e.detail for e in store.audit_trail(session, campaign_id="t-chain-escalate")
                   if e.action == "approval.admin_decided"]
    assert [(d["step"], d["step_name"]) for d in decided] == [(1, "Dezernate"),
                                                              (2, "Schlussredaktion")]


def test_the_page_and_the_artifact_show_the_chain(engine, catalog, signer):
    occurrence_id, status = _through_step_2(engine, catalog, signer)
    summary = approval.gate_summary_markdown(status, catalog, []).replace("\\", "")
    assert "**Stufe / step:** 3 von / of 3 – Schlussredaktion" in summary
    assert "| Stufe 1 von 3: Fachamt | Leiterin des Sportamts Petra Kühn: freigegeben" in summary
    assert ("| Stufe 3 von 3: Schlussredaktion | Redakteurin im Amt für Kommunikation Ina "
            "Hoffmann; Stellvertretender Leiter des Amts für Kommunikation Tobias Demir | "
            "jetzt gefragt, bis Montag, 8. März 2027, 10:00 Uhr (MEZ) |") in summary
    assert summary.index("**Bundle:**") < summary.index("## Stufen") < summary.index(
        "## Entscheidungen")
    request = _requests(engine, occurrence_id)["hoffmann"]
    token = approval.approval_link(signer, request, "http://x").rsplit("/", 1)[1]
    target = approval.check_link(engine, signer, token, now=BEFORE)
    state = approval.link_state(engine, catalog, target, now=BEFORE)
    assert state.step is not None and state.step.number == 2 and not state.step_done
    view = approval.chain_view(catalog, state.gate, "hoffmann")
    assert [(s.state, s.mine) for s in view] == [("done", False), ("done", False),
                                                 ("current", True)]
    assert [p.decision for p in view[1].people] == ["freigegeben", "freigegeben", None]
    # A person of a done step sees that their decision is no longer needed.
    okafor = _requests(engine, occurrence_id)["okafor"]
    token = approval.approval_link(signer, okafor, "http://x").rsplit("/", 1)[1]
    with pytest.raises(approval.StepDone) as refused:
        approval.check_link(engine, signer, token, now=BEFORE)
    state = approval.link_state(engine, catalog, refused.value.target, now=BEFORE)
    assert state.step_done and state.step.number == 1


def test_the_one_step_form_is_a_chain_of_one(engine, catalog, signer):
    occurrence_id, status = _open(engine, catalog, "t-quorum")
    assert len(status.steps) == 1 and status.steps[0].name == "Stufe 1"
    assert approval.chain_view(catalog, status) == ()
    outbox = Outbox()
    _mail(engine, catalog, signer, occurrence_id, outbox)
    assert all("Stufe" not in m["subject"] and "Freigabe in Stufen" not in m["text"]
               for m in outbox.sent)


def test_a_chain_is_planned_to_open_before_its_first_step_is_due(catalog):
    from newsroom.planning import DEFAULT_LEAD, planned_run_for
    from newsroom.timeutil import before

    planned = planned_run_for(catalog, "t-chain", DAY, now=BEFORE - timedelta(days=60))
    assert planned is not None
    assert planned.deadline == STEP_3  # the chain's, its last step's
    assert planned.opens_at == before(STEP_1, DEFAULT_LEAD)
    one_step = planned_run_for(catalog, "t-quorum", DAY, now=BEFORE - timedelta(days=60))
    assert one_step is not None and one_step.opens_at == before(one_step.deadline, DEFAULT_LEAD)


def test_reminders_follow_the_current_step_and_its_deadline(engine, catalog, signer):
    occurrence_id, _ = _open(engine, catalog, "t-chain")
    outbox = Outbox()
    _mail(engine, catalog, signer, occurrence_id, outbox)
    _decide(engine, catalog, signer, occurrence_id, "sportamt-leitung", "approve")
    _mail(engine, catalog, signer, occurrence_id, outbox)
    outbox.sent.clear()
    # 23 hours before step 2 is due: its people get the 24 h reminder, by its deadline.
    at = STEP_2 - timedelta(hours=23)
    approval.process_deadlines(engine, catalog, notifier=outbox, signer=signer,
                               base_url="http://x", now=at)
    assert sorted(m["tag"] for m in outbox.sent) == ["akdeniz", "benz", "okafor"]
    assert all(m["subject"].startswith("Erinnerung – Freigabe erbeten (Stufe 2 von 3)")
               for m in outbox.sent)
    assert "Sonntag, 7. März 2027, 10:00 Uhr" in outbox.sent[0]["text"]
    # Once each; step 3 is not asked yet, so nobody of it is reminded.
    approval.process_deadlines(engine, catalog, notifier=outbox, signer=signer,
                               base_url="http://x", now=at + timedelta(minutes=5))
    assert len(outbox.sent) == 3 and not outbox.to("hoffmann")
    with store.session_scope(engine) as session:
        reminded = [e.detail for e in store.audit_trail(session, campaign_id="t-chain")
                    if e.action == "approval.reminded"]
    assert {d["step"] for d in reminded} == {1}


def test_a_step_that_resolves_to_nobody_stays_pending(engine, catalog, signer, monkeypatch):
    """A later step whose approvers resolve to nobody (the registry changed) is asked
    once and then waits — for the deadline, or an admin — instead of being asked again
    and again."""
    from newsroom.approval import gate

    real = gate.resolve_chain

    def without_step_two(policy, index, day=None):
        chain = real(policy, index, day)
        return [people if number != 1 else [] for number, people in enumerate(chain)]

    monkeypatch.setattr(gate, "resolve_chain", without_step_two)
    occurrence_id, _ = _open(engine, catalog, "t-chain")
    status = _decide(engine, catalog, signer, occurrence_id, "sportamt-leitung", "approve")
    assert status.outcome == GateOutcome.PENDING and status.step == 1
    assert status.asked == () and "nobody has been asked yet" in status.reason
    later = approval.evaluate_gate(engine, catalog, occurrence_id=occurrence_id,
                                   now=STEP_2 + timedelta(minutes=1))
    assert later.step == 1 and not later.settled
