"""The shapes of the catalog files: campaigns, the directory of people, channel accounts.

These are pydantic models with ``extra="forbid"`` so a misspelt key is an error, not a
silently ignored line. Checks that need more than one file (does this person exist? is
this post too long for Bluesky?) live in :mod:`newsroom.catalog.validation`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

ID_PATTERN = r"^[a-z0-9][a-z0-9-]*$"


# An API's address, or an e-mail account's SMTP server (newsroom/channels/email.py).
_URL_SCHEMES = ("http", "https", "smtp", "smtp+starttls", "smtps")


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in _URL_SCHEMES or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host, e.g. "
                         "https://social.example.org (an e-mail account's: smtp://, "
                         "smtp+starttls:// or smtps://)")
    return value


# Where an account's API (or an e-mail account's SMTP server) is reached.
BaseUrl = Annotated[str, AfterValidator(_http_url)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- directory of people -------------------------------------------------------------


class Portfolio(StrictModel):
    """A Zuständigkeitsbereich (area of responsibility) of a Dezernat."""

    id: str = Field(pattern=ID_PATTERN)
    name: str


class Absence(StrictModel):
    start: str = Field(alias="from")
    until: str = Field(alias="to")
    note: str = ""


class Person(StrictModel):
    id: str = Field(pattern=ID_PATTERN)
    name: str
    title: str  # e.g. "Oberbürgermeister", "Bürgermeisterin", "Stadtrat"
    # How a letter addresses the person, as the city writes it: "Sehr geehrte Frau
    # Bürgermeisterin Akdeniz" (the mails add the comma). Without it: "Guten Tag <name>,".
    salutation: str | None = Field(default=None, max_length=120)
    email: str
    magistrat: bool = True  # member of the (full-time) Magistrat
    portfolios: list[str] = []
    deputy: str | None = None  # Vertretung when absent
    absences: list[Absence] = []
    notify_tag: str | None = None  # apprise tag; defaults to the person's id
    # A person outside the city administration (a partner organisation's contact, who
    # may be asked in a step of an approval chain): the organisation's name.
    organisation: str | None = Field(default=None, max_length=120)
    # Office roles: what this person may decide through Prefect or the command line
    # (newsroom/catalog/roles.py), e.g. [office-admin]; checked by validation.
    roles: list[str] = []

    @field_validator("salutation")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().removesuffix(",").rstrip()
        if not value:
            raise ValueError("an empty salutation: leave the key out for the default "
                             "(Guten Tag <name>,)")
        if any(char in value for char in "\r\n\t<>"):
            raise ValueError("a salutation is one line of text, without tabs or < >")
        return value

    @property
    def display(self) -> str:
        shown = f"{self.title} {self.name}"
        return f"{shown} ({self.organisation})" if self.organisation else shown

    @property
    def salutation_line(self) -> str:
        """The first line of a letter to the person: ``Sehr geehrte Frau Bürgermeisterin
        Akdeniz,``; without a ``salutation`` in the registry ``Guten Tag Barbara
        Akdeniz,``."""
        return f"{self.salutation or f'Guten Tag {self.name}'},"


class Office(StrictModel):
    """An Amt: may propose ideas and request posts, but does not approve."""

    id: str = Field(pattern=ID_PATTERN)
    name: str
    email: str


class Directory(StrictModel):
    portfolios: list[Portfolio]
    people: list[Person]
    offices: list[Office] = []
    communications_office: str  # id of the Amt für Kommunikation in `offices`


# --- channel accounts -----------------------------------------------------------------


class ChannelType(StrEnum):
    MASTODON = "mastodon"
    BLUESKY = "bluesky"
    LINKEDIN = "linkedin"
    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"
    THREADS = "threads"
    TELEGRAM = "telegram"
    WEBSITE = "website"
    EMAIL = "email"
    MANUAL = "manual"


class Credential(StrictModel):
    """Where a secret lives. Never the secret itself."""

    secret_block: str | None = None  # name of a Prefect Secret block
    env: str | None = None  # name of an environment variable

    @model_validator(mode="after")
    def _one_source(self) -> Credential:
        if not (self.secret_block or self.env):
            raise ValueError("name a secret_block or an env variable that holds the secret")
        return self


# The networks by the names people know them; a manual channel's ``network`` not listed
# here is shown as written, with a capital.
NETWORK_NAMES: dict[str, str] = {
    "mastodon": "Mastodon", "bluesky": "Bluesky", "linkedin": "LinkedIn",
    "facebook": "Facebook", "instagram": "Instagram", "threads": "Threads",
    "telegram": "Telegram", "website": "Website", "email": "E-Mail",
    "whatsapp": "WhatsApp", "tiktok": "TikTok", "signal": "Signal",
}


class ChannelAccount(StrictModel):
    name: str = Field(pattern=ID_PATTERN)
    type: ChannelType
    display_name: str
    base_url: BaseUrl | None = None
    account_id: str | None = None  # page id, organization URN, chat id, handle …
    credential: Credential | None = None
    network: str | None = None  # for manual channels: whatsapp, tiktok …
    owner: str | None = None  # for manual channels: who posts by hand (person or office id)
    crisis: bool = False  # used by crisis communication
    max_characters: int | None = None  # Mastodon: overrides until read from the instance
    characters_reserved_per_url: int | None = None
    # Mastodon API servers: does the server recognise a repeated Idempotency-Key? "auto"
    # reads the software from nodeinfo / the instance's version (only Mastodon does);
    # "recognised" or "ignored" overrides that (see newsroom/channels/mastodon.py).
    idempotency: Literal["auto", "recognised", "ignored"] = "auto"
    # false: every request on a new connection (``Connection: close``), for a server that
    # closes connections after its answer without saying so.
    keep_alive: bool = True
    # LinkedIn: the LinkedIn-Version (YYYYMM) to send. LinkedIn serves each version for
    # about a year and then answers 426; set a newer one here without waiting for a release
    # (default: newsroom.channels.linkedin.DEFAULT_VERSION).
    api_version: str | None = Field(default=None, pattern=r"^\d{6}(\.\d{2})?$")
    recipients: list[str] = []  # press e-mail distribution list

    @property
    def network_name(self) -> str:
        """``LinkedIn``, ``WhatsApp``: the network as people call it."""
        network = self.network or self.type.value
        return NETWORK_NAMES.get(network, network[:1].upper() + network[1:])

    @property
    def label(self) -> str:
        """The channel as people know it: ``Mastodon (@darmstadt@social.example.org)``;
        the display name alone where it already names the network (``Darmstadt informiert
        (Telegram)``, ``WhatsApp-Kanal der Wissenschaftsstadt Darmstadt``)."""
        if self.network_name.casefold() in self.display_name.casefold():
            return self.display_name
        return f"{self.network_name} ({self.display_name})"

    @model_validator(mode="after")
    def _manual_needs_owner(self) -> ChannelAccount:
        if self.type == ChannelType.MANUAL and not (self.network and self.owner):
            raise ValueError("a manual channel needs `network` (e.g. whatsapp) and `owner`")
        return self


class ChannelRegistry(StrictModel):
    accounts: list[ChannelAccount]


class AccountConnection(StrictModel):
    """What a registry overlay may change about an account: where and how to reach it,
    never what it is (type, name, credential, crisis use)."""

    name: str = Field(pattern=ID_PATTERN)
    base_url: BaseUrl | None = None
    account_id: str | None = None
    keep_alive: bool | None = None
    idempotency: Literal["auto", "recognised", "ignored"] | None = None
    api_version: str | None = Field(default=None, pattern=r"^\d{6}(\.\d{2})?$")

    def changes(self) -> dict[str, object]:
        return {key: value for key, value in self.model_dump(exclude={"name"}).items()
                if value is not None}


class RegistryOverlay(StrictModel):
    """``<overlay>/registry/channels.yaml`` (see :mod:`newsroom.catalog.overlay`)."""

    accounts: list[AccountConnection] = []


# --- campaigns ------------------------------------------------------------------------


class CampaignKind(StrEnum):
    ELECTION_CALL = "election_call"
    COMMEMORATION_DAY = "commemoration_day"
    AWARENESS_DAY = "awareness_day"
    SPORTS_DAY = "sports_day"
    CHANNEL_LAUNCH = "channel_launch"
    SERVICE_INFORMATION = "service_information"
    CRISIS = "crisis"


class Requester(StrictModel):
    """Who asked for the campaign: a Dezernat (by portfolio) or an Amt."""

    portfolio: str | None = None
    office: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Requester:
        if bool(self.portfolio) == bool(self.office):
            raise ValueError("give either `portfolio` (a Dezernat) or `office` (an Amt)")
        return self


class ApproverRef(StrictModel):
    person: str | None = None
    portfolio: str | None = None  # the Dezernent responsible for this portfolio
    group: str | None = None  # "magistrat": every member of the Magistrat

    @model_validator(mode="after")
    def _exactly_one(self) -> ApproverRef:
        given = [v for v in (self.person, self.portfolio, self.group) if v]
        if len(given) != 1:
            raise ValueError("each approver is exactly one of `person`, `portfolio` or `group`")
        return self


class ApprovalMode(StrEnum):
    ONE = "one"
    ALL = "all"
    QUORUM = "quorum"


class TimeoutAction(StrEnum):
    CANCEL = "cancel"
    PUBLISH_IF_QUORUM = "publish_if_quorum"
    ESCALATE = "escalate"


def _check_rule(mode: ApprovalMode, quorum: int | None, deadline: str | None,
                deadline_before: str | None) -> None:
    """The rule of a step (or of the one-step form) as written: a quorum with its mode
    only, one kind of deadline."""
    if mode == ApprovalMode.QUORUM and quorum is None:
        raise ValueError("mode `quorum` needs `quorum: N` (how many must approve)")
    if mode != ApprovalMode.QUORUM and quorum is not None:
        raise ValueError("`quorum` only applies with `mode: quorum`")
    if deadline and deadline_before:
        raise ValueError("give either `deadline` or `deadline_before`, not both")


class ApprovalStep(StrictModel):
    """One step of an approval chain: who is asked, what the step needs, by when.

    The steps of a chain are asked one after another: the people of a step only once the
    step before is approved. ``deadline``/``deadline_before`` default to the chain's
    (the policy's); ``on_timeout`` and ``escalate_to`` too.
    """

    name: str | None = Field(default=None, max_length=80)  # German: "Fachamt", "Schlussredaktion"
    approvers: list[ApproverRef] = Field(min_length=1)
    mode: ApprovalMode = ApprovalMode.ONE
    quorum: int | None = Field(default=None, ge=1)
    deadline: str | None = None  # absolute, YYYY-MM-DD HH:MM
    deadline_before: str | None = None  # relative to the first slot, e.g. 72h
    on_timeout: TimeoutAction | None = None
    escalate_to: list[str] | None = None
    # Joint statements: the approvals of this step name the signatories ({{ signatories }}).
    signs: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> ApprovalStep:
        _check_rule(self.mode, self.quorum, self.deadline, self.deadline_before)
        return self


class ApprovalPolicy(StrictModel):
    """Who approves a campaign's posts. One step (``approvers``, ``mode``, ``quorum``) or
    an ordered chain of ``steps``; ``deadline``/``deadline_before`` are the chain's (and
    every step's that names none of its own)."""

    approvers: list[ApproverRef] = []
    mode: ApprovalMode = ApprovalMode.ONE
    quorum: int | None = Field(default=None, ge=1)
    steps: list[ApprovalStep] = []
    deadline: str | None = None  # absolute, YYYY-MM-DD HH:MM (one-off campaigns)
    deadline_before: str | None = None  # relative to the first slot, e.g. 48h
    on_timeout: TimeoutAction = TimeoutAction.CANCEL
    escalate_to: list[str] = []  # person ids told when the deadline passes
    pre_approved: bool = False  # crisis templates approved once, published at once

    @model_validator(mode="after")
    def _consistent(self) -> ApprovalPolicy:
        if self.steps and (self.approvers or self.quorum is not None
                           or "mode" in self.model_fields_set):
            raise ValueError("give either `steps` (each with its approvers and mode) or "
                             "`approvers` with `mode` (one step), not both")
        if not self.steps and not self.approvers:
            raise ValueError("name the `approvers` (or an ordered list of `steps`)")
        _check_rule(self.mode, self.quorum, self.deadline, self.deadline_before)
        if not self.pre_approved and not (self.deadline or self.deadline_before):
            raise ValueError("set `deadline_before` (e.g. 48h) or an absolute `deadline`")
        return self

    @property
    def chain(self) -> tuple[ApprovalStep, ...]:
        """The steps, in order, each with the chain's timeout rules filled in; the
        one-step form is a chain of one step (whose approvals sign)."""
        if not self.steps:
            return (ApprovalStep(approvers=self.approvers, mode=self.mode, quorum=self.quorum,
                                 on_timeout=self.on_timeout, escalate_to=self.escalate_to,
                                 signs=True),)
        return tuple(step.model_copy(update={
            "on_timeout": step.on_timeout or self.on_timeout,
            "escalate_to": self.escalate_to if step.escalate_to is None else step.escalate_to,
        }) for step in self.steps)

    @property
    def approver_refs(self) -> list[ApproverRef]:
        """Every approver the policy names, in the order of its steps."""
        return [ref for step in self.chain for ref in step.approvers]


class Image(StrictModel):
    file: str | None = None  # relative to the catalog's images/ folder
    url: str | None = None
    alt: str  # alt text is mandatory: screen readers need it

    @field_validator("alt")
    @classmethod
    def _alt_not_empty(cls, value: str) -> str:
        if len(value.strip()) < 5:
            raise ValueError("alt text must describe the image for people who cannot see it")
        return value.strip()

    @model_validator(mode="after")
    def _one_source(self) -> Image:
        if bool(self.file) == bool(self.url):
            raise ValueError("give either `file` or `url` for the image")
        return self


class ChannelContent(StrictModel):
    """What a channel shows; ``None`` fields fall back to the campaign's shared content."""

    template: str | None = None  # a file in the catalog's templates/ folder
    text: str | None = None  # an inline Jinja template
    hashtags: list[str] | None = None
    images: list[Image] | None = None
    link: str | None = None

    @model_validator(mode="after")
    def _one_template(self) -> ChannelContent:
        if self.template and self.text:
            raise ValueError("give either `template` or `text`, not both")
        return self


class Content(ChannelContent):
    language: str = "de"
    variables: dict[str, Any] = {}
    channels: dict[str, ChannelContent] = {}


class Slot(StrictModel):
    """When to publish on which channels: exactly one of ``at``, ``yearly``, ``rrule``."""

    channels: list[str] = Field(min_length=1)
    at: str | None = None  # YYYY-MM-DD HH:MM, Europe/Berlin
    yearly: str | None = None  # MM-DD HH:MM, every year
    rrule: str | None = None  # RFC 5545 RRULE, with `start`
    start: str | None = None  # first occurrence (and time of day) of an RRULE
    until: str | None = None  # last year or date for yearly / rrule slots
    on_demand: bool = False  # crisis templates: published when triggered, not on a date

    @model_validator(mode="after")
    def _one_timing(self) -> Slot:
        given = [name for name in ("at", "yearly", "rrule", "on_demand") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(
                "each slot needs exactly one of `at`, `yearly`, `rrule` or `on_demand: true`"
            )
        if self.rrule and not self.start:
            raise ValueError("an `rrule` slot needs `start: YYYY-MM-DD HH:MM`")
        if self.start and not self.rrule:
            raise ValueError("`start` only applies to `rrule` slots")
        return self


class LatePolicy(StrictModel):
    """What happens when a slot's time has passed (system down, approval late)."""

    grace: str = "2h"
    same_day_only: bool = False  # e.g. a commemoration never goes out the day after


class Campaign(StrictModel):
    id: str = Field(pattern=ID_PATTERN)
    title: str
    topic: str
    kind: CampaignKind
    requested_by: Requester
    contact: str | None = None
    approval: ApprovalPolicy
    slots: list[Slot] = Field(min_length=1)
    content: Content
    late: LatePolicy = LatePolicy()
    tags: list[str] = []
    signatories_in_text: bool = False  # joint statements: names in the post via {{ signatories }}
