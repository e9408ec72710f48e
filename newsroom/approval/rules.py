"""The gate's rule: what the requests and decisions of one step of the approval chain
amount to under the step's rule (mode one, all or quorum), before and after its deadline.

Pure: a :class:`Tally` in, an outcome and its reason out; nothing is read or written.
How many approvals a policy needs is :func:`newsroom.catalog.approvers.required_approvals`,
the one definition the catalog and the gate share.
"""

from __future__ import annotations

from dataclasses import dataclass

from newsroom.catalog.approvers import required_approvals
from newsroom.catalog.models import ApprovalMode, ApprovalStep, TimeoutAction
from newsroom.store import ApprovalDecision, ApprovalRequest, ApprovalStatus

from .status import DECISION_OUTCOMES, GateOutcome


@dataclass
class Tally:
    """One step's requests (people only, in order), their decisions and the last admin
    decision on the step, as read from the store."""

    asked: list[ApprovalRequest]
    decisions: dict[int, ApprovalDecision]
    admin: ApprovalDecision | None
    # Read as if the deadline had expired the pending requests (what the sweeper will
    # store), without writing: what a page shows between the deadline and the sweep.
    pending_expired: bool = False

    def _status_of(self, request: ApprovalRequest) -> str:
        if self.pending_expired and request.status == ApprovalStatus.PENDING.value:
            return ApprovalStatus.EXPIRED.value
        return request.status

    def ids(self, status: ApprovalStatus) -> tuple[str, ...]:
        return tuple(r.person_id for r in self.asked if self._status_of(r) == status.value)


def rule_outcome(policy: ApprovalStep, tally: Tally) -> tuple[GateOutcome, str]:
    """What the step's decisions say before any deadline is applied; an admin's decision
    on the step decides it."""
    if tally.admin is not None:
        admin = tally.admin
        return (DECISION_OUTCOMES[admin.decision],
                f"admin {admin.decided_by.removeprefix('admin:')} decided {admin.decision} "
                f"via {admin.via}")
    asked = len(tally.asked)
    if not asked:
        return GateOutcome.PENDING, "nobody has been asked yet"
    approved = len(tally.ids(ApprovalStatus.APPROVED))
    rejected = len(tally.ids(ApprovalStatus.REJECTED))
    changes = len(tally.ids(ApprovalStatus.CHANGES_REQUESTED))
    pending = len(tally.ids(ApprovalStatus.PENDING))
    needed = required_approvals(policy, asked)
    if policy.mode == ApprovalMode.ONE:
        decided = sorted((d for d in tally.decisions.values()
                          if d.request_id in {r.id for r in tally.asked}),
                         key=lambda d: (d.decided_at, d.id))
        if decided:
            first = decided[0]
            outcome = DECISION_OUTCOMES[first.decision]
            return outcome, f"{first.decided_by} decided {first.decision} (mode one)"
        return GateOutcome.PENDING, f"waiting for one of {asked} approvers"
    if policy.mode == ApprovalMode.ALL:
        if rejected:
            return GateOutcome.REJECTED, f"{rejected} of {asked} rejected (mode all)"
        if changes:
            return (GateOutcome.CHANGES_REQUESTED,
                    f"{changes} of {asked} requested changes (mode all)")
        if approved == asked:
            return GateOutcome.APPROVED, f"all {asked} approved"
        return GateOutcome.PENDING, f"{approved} of {asked} approved, all needed"
    # quorum
    collecting = policy.on_timeout == TimeoutAction.PUBLISH_IF_QUORUM and pending > 0
    if approved >= needed and not collecting:
        return GateOutcome.APPROVED, (f"quorum reached: {approved} of {asked} approved "
                                      f"(needed {needed})")
    if approved + pending < needed and (rejected or changes):
        outcome = GateOutcome.REJECTED if rejected else GateOutcome.CHANGES_REQUESTED
        return outcome, (f"quorum of {needed} can no longer be reached: {approved} approved, "
                         f"{rejected} rejected, {changes} requested changes, {pending} pending")
    if approved >= needed:
        return GateOutcome.PENDING, (f"quorum reached ({approved} of {needed}); collecting "
                                     "signatures until the deadline")
    return GateOutcome.PENDING, f"{approved} of {needed} needed approvals, {pending} pending"


def _timeout_outcome(policy: ApprovalStep, tally: Tally) -> tuple[GateOutcome, str]:
    approved = len(tally.ids(ApprovalStatus.APPROVED))
    needed = required_approvals(policy, len(tally.asked))
    if policy.on_timeout == TimeoutAction.ESCALATE:
        return GateOutcome.ESCALATED, (f"deadline passed with {approved} of {needed} needed "
                                       "approvals; escalated to the communications office")
    if policy.on_timeout == TimeoutAction.PUBLISH_IF_QUORUM and approved >= needed:
        return GateOutcome.APPROVED, (f"deadline passed; quorum met with {approved} approvals "
                                      f"(needed {needed})")
    action = policy.on_timeout or TimeoutAction.CANCEL
    return GateOutcome.CANCELLED, (f"deadline passed with {approved} of {needed} needed "
                                   f"approvals (on_timeout {action.value})")


def outcome_after_deadline(policy: ApprovalStep, tally: Tally) -> tuple[GateOutcome, str]:
    """What the step comes to once its deadline expired the pending requests."""
    outcome, reason = rule_outcome(policy, tally)
    if outcome == GateOutcome.PENDING:
        outcome, reason = _timeout_outcome(policy, tally)
    return outcome, reason


def collects_until_deadline(policy: ApprovalStep) -> bool:
    """A quorum that publishes at the deadline keeps taking signatures once met."""
    return (policy.mode == ApprovalMode.QUORUM
            and policy.on_timeout == TimeoutAction.PUBLISH_IF_QUORUM)
