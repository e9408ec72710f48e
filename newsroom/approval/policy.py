"""The campaign's approval rule and the people and channels it names, read from the
catalog: when approvals are due, the rule in German, how a person, a requester or a
channel is called. Reads the catalog only; no store, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime

from newsroom.catalog.catalog import Catalog
from newsroom.catalog.models import ApprovalMode, ApprovalPolicy, Campaign
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


def gate_deadline(catalog: Catalog, campaign_id: str, first_publish_at: datetime) -> datetime:
    """When approvals are due (UTC): the policy's absolute deadline, or ``deadline_before``
    the first publication (:func:`newsroom.timeutil.before`: days on the wall clock, so
    ``1d`` before 10:00 is 10:00 the day before across DST, whatever zone
    ``first_publish_at`` is given in); a pre-approved campaign's gate closes at publication."""
    policy = campaign_of(catalog, campaign_id).approval
    if policy.deadline:
        return localize(parse_local_datetime(policy.deadline)).astimezone(UTC)
    if policy.deadline_before:
        return before(first_publish_at, parse_duration(policy.deadline_before))
    return first_publish_at.astimezone(UTC)


def rule_german(policy: ApprovalPolicy, asked: int) -> str:
    """The rule as the mails and the approval page state it."""
    if policy.pre_approved:
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
