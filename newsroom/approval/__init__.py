"""The approval gate: who must approve an occurrence's posts, and whether they have.

One gate per occurrence asks about exactly one bundle of posts (``gate_bundle_hash``),
step by step along the campaign's approval chain (``approval.steps``; the one-step form
is a chain of one): a step's people are asked once the step before is approved, and the
gate settles once, at the end (the last step approved) or at the step that closes it:

    open_gate          ask the first step (deputies for the absent) about the current bundle
    notify_approvers   e-mail each person asked in the current step their link, once
    decide             a person's decision from the approval page (signed link)
    admin_decision     an admin decides the current step (Prefect UI form or CLI)
    evaluate_gate      what the decisions amount to, step by step, deadlines included
                       (asks the next step once one is approved)
    process_deadlines  reminders before, expiry and escalation at each step's deadline

A changed bundle is a new question: ``open_gate`` voids the pending requests of the old
one and the chain starts again at its first step. Once settled, an outcome never changes
(an admin may decide the step of an open or escalated gate). Nothing here sends unless
told to, and nothing imports Prefect.

The modules, one concern each:

    errors     what a genuine link points at (LinkTarget); the refused link's errors
    policy     the campaign's rule and the people and channels it names (catalog only)
    status     GateOutcome, GateDecision, StepStatus, GateStatus
    rules      the rule and the quorum: what a step's tally of decisions amounts to (pure)
    gate       the gate in the store: read, walk the chain, settle (evaluate_gate), open
    chain      the chain in German for the mails, the page and the artifact (chain_view)
    links      the personal link: issue it (approval_link), check it (check_link)
    decisions  a person's decision (decide), an admin's (admin_decision)
    versions   the earlier version decided on (previous_version), word_diff
    mail       the approval mails' data, sending, the first mail (notify_approvers)
    deadlines  reminders, expiry and escalation (process_deadlines)
    page       what a link's holder is told (link_state)
    summary    the gate as Markdown for the Prefect UI (gate_summary_markdown)

Imports point one way: a module imports only modules below it in this list, read from
the bottom (and never this package module, which only re-exports)::

    summary, page, deadlines, decisions
    mail
    gate, chain, links, versions
    rules
    status
    policy
    errors
"""

from .chain import DECISION_GERMAN, ChainPerson, ChainStep, chain_view
from .deadlines import process_deadlines, reminder_times
from .decisions import MAX_COMMENT, admin_decision, decide
from .errors import (
    ApprovalError,
    ApprovalLinkError,
    ContentChanged,
    GateClosed,
    InvalidDecision,
    LinkAlreadyUsed,
    LinkExpired,
    LinkForged,
    LinkNotFound,
    LinkTarget,
    StepDone,
    WrongPerson,
)
from .gate import evaluate_gate, open_gate
from .links import approval_link, check_link
from .mail import notify_approvers
from .page import LinkState, link_state, read_link_state
from .policy import (
    ADMIN_PREFIX,
    campaign_of,
    channel_label,
    display_name,
    gate_deadline,
    requested_by,
    rule_german,
    salutation,
    step_deadline,
    step_name,
)
from .status import GateDecision, GateOutcome, GateStatus, StepState, StepStatus
from .summary import gate_summary_markdown, gate_summary_of
from .versions import previous_version, word_diff

__all__ = [
    "ADMIN_PREFIX",
    "ChainPerson",
    "DECISION_GERMAN",
    "ChainStep",
    "StepDone",
    "StepState",
    "StepStatus",
    "chain_view",
    "step_deadline",
    "step_name",
    "campaign_of",
    "display_name",
    "requested_by",
    "rule_german",
    "MAX_COMMENT",
    "ApprovalError",
    "ApprovalLinkError",
    "ContentChanged",
    "GateClosed",
    "GateDecision",
    "GateOutcome",
    "GateStatus",
    "InvalidDecision",
    "LinkAlreadyUsed",
    "LinkExpired",
    "LinkForged",
    "LinkNotFound",
    "LinkState",
    "LinkTarget",
    "WrongPerson",
    "admin_decision",
    "approval_link",
    "channel_label",
    "check_link",
    "decide",
    "evaluate_gate",
    "gate_deadline",
    "gate_summary_markdown",
    "gate_summary_of",
    "link_state",
    "read_link_state",
    "notify_approvers",
    "open_gate",
    "previous_version",
    "process_deadlines",
    "reminder_times",
    "salutation",
    "word_diff",
]
