"""The campaign's approval rule and the people and channels it names, read from the
catalog: when approvals are due, the rule in German, how a person, a requester or a
channel is called. Reads the catalog only; no store, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

from newsroom.catalog.catalog import Catalog
from newsroom.catalog.models import ApprovalMode, ApprovalPolicy, ApprovalStep, Campaign
from newsroom.timeutil import before, localize, parse_duration, parse_local_datetime

from .errors import ApprovalError

# Who the audit trail names for what the gate does by itself.
ACTOR = "newsroom"
# An admin's decision is recorded as a request of "admin:<person id>".
ADMIN_PREFIX = "admin:"


def campaign_of(catalog: Catalog, campaign_id: str) -> Campaign:
    """The campaign, or an :class:`ApprovalError` when it left the catalog."""
    try:
        return catalog.campaign(campaign_id).campaign
    except LookupError as exc:
        raise ApprovalError(str(exc)) from None


def _deadline(rules: ApprovalPolicy | ApprovalStep, first_publish_at: datetime
              ) -> datetime | None:
    if rules.deadline:
        return localize(parse_local_datetime(rules.deadline)).astimezone(UTC)
    if rules.deadline_before:
        return before(first_publish_at, parse_duration(rules.deadline_before))
    return None


def step_deadline(catalog: Catalog, campaign_id: str, number: int,
                  first_publish_at: datetime) -> datetime:
    """When step ``number`` of the approval chain is due (UTC): the step's own
    ``deadline``/``deadline_before``, else the chain's (:func:`gate_deadline`'s rule)."""
    policy = campaign_of(catalog, campaign_id).approval
    chain = policy.chain
    if not 0 <= number < len(chain):
        raise ApprovalError(f"{campaign_id} has no approval step {number + 1}")
    own = _deadline(chain[number], first_publish_at) if policy.steps else None
    return own or _chain_deadline(policy, first_publish_at)


def _chain_deadline(policy: ApprovalPolicy, first_publish_at: datetime) -> datetime:
    return _deadline(policy, first_publish_at) or first_publish_at.astimezone(UTC)


def gate_deadline(catalog: Catalog, campaign_id: str, first_publish_at: datetime) -> datetime:
    """When approvals are due (UTC): the policy's absolute deadline, or ``deadline_before``
    the first publication (:func:`newsroom.timeutil.before`: days on the wall clock, so
    ``1d`` before 10:00 is 10:00 the day before across DST, whatever zone
    ``first_publish_at`` is given in); a pre-approved campaign's gate closes at publication.
    For an approval chain: its last step's deadline."""
    policy = campaign_of(catalog, campaign_id).approval
    return step_deadline(catalog, campaign_id, len(policy.chain) - 1, first_publish_at)


def step_name(catalog: Catalog, step: ApprovalStep, number: int) -> str:
    """The step as people know it: its ``name``; else whom it asks when that is one
    portfolio, person or the Magistrat; else ``Stufe n``."""
    if step.name:
        return step.name
    if len(step.approvers) == 1:
        ref = step.approvers[0]
        if ref.portfolio and ref.portfolio in catalog.index.portfolios:
            return catalog.index.portfolios[ref.portfolio].name
        if ref.person and ref.person in catalog.index.people:
            return catalog.index.people[ref.person].display
        if ref.group == "magistrat":
            return "Magistrat"
    return f"Stufe {number + 1}"


def rule_german(policy: ApprovalPolicy | ApprovalStep, asked: int) -> str:
    """The rule (of a step) as the mails and the approval page state it."""
    if isinstance(policy, ApprovalPolicy) and policy.pre_approved:
        return "vorab freigegeben"
    if policy.mode == ApprovalMode.ONE:
        return "eine Freigabe genügt"
    if policy.mode == ApprovalMode.ALL:
        return f"alle {asked} Angefragten müssen freigeben"
    return f"mindestens {policy.quorum} von {asked} Angefragten müssen freigeben"


def requested_by(catalog: Catalog, campaign: Campaign) -> str:
    """The portfolio or office that asked for the campaign, by its name."""
    requester = campaign.requested_by
    if requester.portfolio:
        portfolio = catalog.index.portfolios.get(requester.portfolio)
        return portfolio.name if portfolio else requester.portfolio
    office = catalog.index.offices.get(requester.office or "")
    return office.name if office else (requester.office or "")


def display_name(catalog: Catalog, person_id: str) -> str:
    """The person's display name; the id itself when the registry no longer has them."""
    person = catalog.index.people.get(person_id)
    return person.display if person else person_id


def salutation(catalog: Catalog, person_id: str) -> str:
    """How the mails and the approval page greet the person: the registry's
    :attr:`Person.salutation_line` (``Sehr geehrte Frau Bürgermeisterin Akdeniz,``)."""
    person = catalog.index.people.get(person_id)
    return person.salutation_line if person else "Guten Tag,"


def channel_label(catalog: Catalog, channel: str) -> str:
    """The channel as people know it (:attr:`ChannelAccount.label`): ``Mastodon
    (@darmstadt@social.example.org)``, ``Darmstadt informiert (Telegram)``."""
    account = catalog.accounts.get(channel)
    return account.label if account is not None else channel


def utc_now(now: datetime | None) -> datetime:
    """``now`` (the clock when None) in UTC; a naive ``now`` is refused."""
    now = now or datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)
