"""The checks of one campaign file once its shape is read: its id, requester, approvers,
slots and times, deadline and content references, then its rendered posts
(:mod:`.rendered_checks`). Each skips what an earlier error removed (:mod:`.salvage`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ..errors import relative_path
from ..timeutil import (
    LocalTimeError,
    before,
    format_local,
    localize,
    parse_duration,
    parse_local_datetime,
)
from .approvers import UnknownReference, resolve_approvers
from .catalog import CampaignSource, Catalog
from .models import ApprovalMode, ApprovalStep, ChannelType, TimeoutAction
from .reading import Collector
from .registry_checks import Registry, suggest
from .rendered_checks import check_rendered
from .salvage import Salvaged
from .schedule import check_slot_times

_TIMING = ("at", "yearly", "rrule", "start", "until", "on_demand")


def check_campaign(
    source: CampaignSource, salvaged: Salvaged, registry: Registry, out: Collector, today: date
) -> None:
    """Every check whose parts were read; each skips what an earlier error removed."""
    campaign = source.campaign
    intact = salvaged.intact
    index = registry.catalog.index
    if intact("id") and source.path.stem != campaign.id:
        out.add(("id",), f"id {campaign.id!r} differs from the file name {source.path.name!r}",
                f"rename the file to {campaign.id}.yaml so people find it", severity="warning")
    requester = campaign.requested_by
    if (intact("requested_by") and requester.portfolio
            and registry.is_unknown("portfolio", requester.portfolio)):
        out.add(("requested_by", "portfolio"), f"unknown portfolio {requester.portfolio!r}",
                suggest(requester.portfolio, index.portfolios, "portfolios"))
    if (intact("requested_by") and requester.office
            and registry.is_unknown("office", requester.office)):
        out.add(("requested_by", "office"), f"unknown office {requester.office!r}",
                suggest(requester.office, index.offices, "offices"))
    if intact("late", "grace"):
        try:
            parse_duration(campaign.late.grace)
        except LocalTimeError as exc:
            out.add(("late", "grace"), str(exc), exc.hint)
    signatories = _check_approvers(source, salvaged, registry, out)
    timed = _check_slots(source, salvaged, registry, out, today)
    _check_deadline(source, salvaged, out, timed)
    _check_content_refs(source, salvaged, registry, out)
    check_rendered(source, salvaged, registry, out, today, timed, signatories)


def _check_approvers(
    source: CampaignSource, salvaged: Salvaged, registry: Registry, out: Collector
) -> list | None:
    """The approval rules of every step; the people who may sign that could be resolved
    (None: the policy is unreadable)."""
    policy = source.campaign.approval
    intact = salvaged.intact
    if policy is None:
        return None
    if policy.steps:
        if not intact("approval", "steps"):
            return None
        where: list[tuple[tuple, Any, ApprovalStep]] = [
            (("approval", "steps", n), step, chain)
            for n, (step, chain) in enumerate(zip(policy.steps, policy.chain, strict=True))]
    else:
        where = [(("approval",), policy, policy.chain[0])]
    signing: list = []
    every_resolved = True
    seen: dict[str, int] = {}
    for number, (at, rules, step) in enumerate(where):
        resolved, all_resolved = _check_step(source, salvaged, registry, out, at, rules, step)
        every_resolved = every_resolved and all_resolved
        if step.signs:
            signing += resolved
        if len(where) > 1:
            for person in dict.fromkeys(a.person.id for a in resolved):
                if person in seen:
                    out.add((*at, "approvers"),
                            f"{registry.catalog.index.people[person].display} is asked in "
                            f"step {seen[person] + 1} and step {number + 1}; a person "
                            "approves in one step of a chain",
                            "remove them from one of the steps (a deputy who stands in for "
                            "someone of another step is handled when the step is asked)")
                else:
                    seen[person] = number
    if (intact("signatories_in_text") and source.campaign.signatories_in_text
            and policy.steps and not any(step.signs for step in policy.steps)):
        out.add(("signatories_in_text",),
                "signatories in the text, but no step of the chain signs",
                "add `signs: true` to the step whose approvers sign the statement (e.g. the "
                "Magistrat's step)")
    if (intact("signatories_in_text") and source.campaign.signatories_in_text
            and any(step.signs for step in policy.chain)
            and all(step.mode == ApprovalMode.ONE for step in policy.chain if step.signs)
            and (policy.steps or intact("approval", "mode"))):
        out.add(("signatories_in_text",),
                "signatories in the text only make sense when several people sign",
                "use mode: all or quorum, or drop signatories_in_text", severity="warning")
    if len(where) > 1:
        _check_step_deadlines(source, salvaged, out)
    return signing if every_resolved else None


def _check_step(source: CampaignSource, salvaged: Salvaged, registry: Registry,
                out: Collector, at: tuple, rules: Any, step: ApprovalStep) -> tuple[list, bool]:
    """One step's approvers and rules (``at``: its place in the file; ``rules``: what the
    file says there, ``step``: with the chain's defaults filled in)."""
    intact = salvaged.intact
    index = registry.catalog.index
    resolved = []
    all_resolved = intact(*at, "approvers")
    for i, ref in enumerate(rules.approvers):
        try:
            resolved += resolve_approvers(rules.model_copy(update={"approvers": [ref]}), index)
        except UnknownReference as exc:
            all_resolved = False
            message = f"unknown {exc.kind} {exc.value!r}"
            if exc.kind == "portfolio" and exc.value in index.portfolios:
                if registry.doubtful.get("person") != set():
                    continue  # its Dezernent may be an entry the directory's errors removed
                message = f"nobody in the directory is responsible for portfolio {exc.value!r}"
            elif (exc.kind in ("person", "portfolio")
                  and not registry.is_unknown(exc.kind, exc.value)):
                continue  # an entry the directory's errors removed: reported there
            key = "person" if ref.person else "portfolio" if ref.portfolio else "group"
            known = exc.known if exc.kind != "portfolio" else sorted(index.portfolios)
            out.add((*at, "approvers", i, key), message,
                    suggest(exc.value, known, exc.kind + "s"))
    for i, person_id in enumerate(rules.escalate_to or ()):
        if registry.is_unknown("person", person_id):
            out.add((*at, "escalate_to", i), f"unknown person {person_id!r}",
                    suggest(person_id, index.people, "people"))
    asked = len({a.person.id for a in resolved})
    if (all_resolved and intact(*at, "quorum") and intact(*at, "mode")
            and step.mode == ApprovalMode.QUORUM and step.quorum and step.quorum > asked):
        out.add((*at, "quorum"),
                f"quorum {step.quorum} is more than the {asked} people asked"
                + (" in this step" if at != ("approval",) else ""),
                f"lower the quorum to at most {asked} or add approvers")
    on_timeout = intact(*at, "on_timeout") and intact("approval", "on_timeout")
    where = "on_timeout" if rules.on_timeout is not None else None
    place = (*at, "on_timeout") if where else ("approval", "on_timeout")
    if (on_timeout and intact(*at, "mode")
            and step.on_timeout == TimeoutAction.PUBLISH_IF_QUORUM
            and step.mode != ApprovalMode.QUORUM):
        out.add(place, "`publish_if_quorum` needs `mode: quorum`"
                + (" in every step it applies to" if at != ("approval",) else ""),
                "set mode: quorum with a quorum, or choose cancel or escalate")
    if on_timeout and rules.escalate_to and step.on_timeout != TimeoutAction.ESCALATE:
        # Only an escalated deadline tells these people; with any other action nobody would.
        out.add((*at, "escalate_to"),
                "`escalate_to` only applies with `on_timeout: escalate`; "
                f"with `{(step.on_timeout or TimeoutAction.CANCEL).value}` nobody in it is told",
                "set on_timeout: escalate, or remove escalate_to")
    if (on_timeout and intact(*at, "escalate_to")
            and step.on_timeout == TimeoutAction.ESCALATE and not step.escalate_to):
        out.add(place, "policy escalates but names nobody in `escalate_to`",
                "list at least one person id under escalate_to (e.g. the OB)", severity="warning")
    return resolved, all_resolved


def _check_step_deadlines(source: CampaignSource, salvaged: Salvaged, out: Collector) -> None:
    """Each step is due no later than the next one, none after the chain's own deadline,
    and every one before the publication (the first slot with a fixed time)."""
    policy = source.campaign.approval
    if not salvaged.intact("approval", "steps"):
        return
    slots = source.campaign.slots or []
    fixed = [s for s in slots if s.at]
    recurring = any(s.yearly or s.rrule for s in slots)
    try:
        first = min((localize(parse_local_datetime(s.at or "")) for s in fixed), default=None)
    except LocalTimeError:
        return  # reported with the slot
    # deadline_before counts from each occurrence; any moment compares them alike.
    anchor = first or localize(parse_local_datetime("2030-06-15 12:00"))

    def due(rules: Any, at: tuple) -> datetime | None:
        try:
            if rules.deadline:
                return localize(parse_local_datetime(rules.deadline))
            if rules.deadline_before:
                return before(anchor, parse_duration(rules.deadline_before))
        except LocalTimeError as exc:
            out.add(at, str(exc), exc.hint)
        return None

    chain_due = due(policy, ("approval", "deadline"))
    dues: list[tuple[int, tuple, datetime | None]] = []
    for n, step in enumerate(policy.steps):
        at = ("approval", "steps", n, "deadline" if step.deadline else "deadline_before")
        if step.deadline and recurring:
            out.add(at, "an absolute step deadline cannot serve a recurring slot",
                    "use deadline_before (e.g. 72h) so each occurrence gets its own deadline")
            return
        own = due(step, at)
        if own is not None and chain_due is not None and own > chain_due:
            out.add(at, f"step {n + 1} is due after the chain's deadline "
                        f"({format_local(own)} after {format_local(chain_due)})",
                    "give the step an earlier deadline, or the chain a later one")
        if own is not None and first is not None and own >= first:
            out.add(at, f"step {n + 1} is due at {format_local(own)}, not before the first "
                        f"publication {format_local(first)}",
                    "set the step's deadline before the first slot")
        dues.append((n, at, own or chain_due))
    for (n, at, mine), (m, _, later) in zip(dues, dues[1:], strict=False):
        if mine is not None and later is not None and mine > later:
            out.add(at, f"step {n + 1} is due after step {m + 1} ({format_local(mine)} after "
                        f"{format_local(later)}" + (")" if first else " for an occurrence)"),
                    "order the deadlines as the steps: each step due no later than the next")


def _check_slots(
    source: CampaignSource, salvaged: Salvaged, registry: Registry, out: Collector, today: date
) -> list[int]:
    """The slots' channels and times; the indices of the slots whose times are sound."""
    timed = []
    for i, slot in enumerate(source.campaign.slots or []):
        for j, channel in enumerate(slot.channels):
            if (salvaged.intact("slots", i, "channels", j)
                    and registry.is_unknown("channel", channel)):
                out.add(("slots", i, "channels", j), f"unknown channel {channel!r}",
                        suggest(channel, registry.catalog.accounts,
                                 "channels (registry/channels.yaml)"))
        if not all(salvaged.intact("slots", i, name) for name in _TIMING):
            continue  # a timing field was refused: its default would say something else
        field_name = "at" if slot.at else "yearly" if slot.yearly else "rrule"
        if slot.until:
            try:
                text = slot.until.strip()
                if len(text) == 4 and text.isdigit():
                    parse_local_datetime(text + "-12-31 23:59")
                else:
                    parse_local_datetime(text if len(text) > 10 else text + " 23:59")
            except LocalTimeError:
                out.add(("slots", i, "until"), f"{slot.until!r} is not a year or date",
                        "write a year (2030) or a date (2030-12-31)")
                continue
        try:
            check_slot_times(slot, today)
        except LocalTimeError as exc:
            where = ("start" if slot.rrule and "RRULE" not in str(exc)
                     and "does not exist" not in str(exc) and "twice" not in str(exc)
                     else field_name)
            out.add(("slots", i, where), str(exc), exc.hint)
            continue
        timed.append(i)
        if slot.at:
            moment = localize(parse_local_datetime(slot.at))
            if moment.date() < today:
                out.add(("slots", i, "at"),
                        f"{slot.at} is in the past; this slot will not be published",
                        "move it to a future date or delete the campaign", severity="warning")
    return timed


def _check_deadline(
    source: CampaignSource, salvaged: Salvaged, out: Collector, timed: list[int]
) -> None:
    policy = source.campaign.approval
    if policy is None:
        return
    if policy.deadline_before and salvaged.intact("approval", "deadline_before"):
        try:
            delta = parse_duration(policy.deadline_before)
        except LocalTimeError as exc:
            out.add(("approval", "deadline_before"), str(exc), exc.hint)
        else:
            if delta.is_zero:
                out.add(("approval", "deadline_before"),
                        "the deadline must come before the publication",
                        "give a positive duration such as 48h")
    if not policy.deadline or not salvaged.intact("approval", "deadline"):
        return
    try:
        deadline = localize(parse_local_datetime(policy.deadline))
    except LocalTimeError as exc:
        out.add(("approval", "deadline"), str(exc), exc.hint)
        return
    slots = source.campaign.slots or []
    shaped = [s for i, s in enumerate(slots)
              if all(salvaged.intact("slots", i, n) for n in _TIMING)]
    if any(not s.at for s in shaped if not s.on_demand):
        out.add(("approval", "deadline"), "an absolute deadline cannot serve a recurring slot",
                "use deadline_before (e.g. 72h) so each year's occurrence gets its own deadline")
        return
    # Only slots whose time is sound; the first of all slots is no later than the first of these.
    sound = [slots[i] for i in timed if slots[i].at]
    if not sound:
        return
    first = min(localize(parse_local_datetime(s.at or "")) for s in sound)
    if deadline >= first:
        out.add(("approval", "deadline"),
                f"the approval deadline {policy.deadline} is not before the first publication "
                f"{format_local(first)}",
                "set the deadline before the first slot, leaving time to react to a rejection")


def _check_content_refs(
    source: CampaignSource, salvaged: Salvaged, registry: Registry, out: Collector
) -> None:
    content = source.campaign.content
    if content is None:
        return
    intact = salvaged.intact
    catalog = registry.catalog
    slots = source.campaign.slots or []
    used = {c for i, slot in enumerate(slots) for j, c in enumerate(slot.channels)
            if intact("slots", i, "channels", j)}
    all_used_known = intact("slots")
    used_types = {catalog.accounts[c].type.value for c in used if c in catalog.accounts}
    type_names = {t.value for t in ChannelType}
    for key in content.channels:
        if not intact("content", "channels", key):
            continue
        if key not in type_names and registry.is_unknown("channel", key):
            out.add(("content", "channels", key), f"unknown channel {key!r}",
                    suggest(key, list(catalog.accounts) + sorted(type_names),
                             "channels and channel types"))
        elif (all_used_known and key not in used and key not in used_types
              and (key in catalog.accounts or key in type_names)):
            out.add(("content", "channels", key),
                    f"content for {key!r}, but no slot publishes there",
                    "add the channel to a slot or remove this block", severity="warning")
    if (content.template is None and content.text is None
            and intact("content", "template") and intact("content", "text")):
        missing = [c for c in sorted(used)
                   if c in catalog.accounts and _overrides_intact(salvaged, catalog, c)
                   and not _has_own_text(content, catalog, c)]
        if missing:
            out.add(("content",), f"no text for channels {', '.join(missing)}",
                    "give `content.text` (or `content.template`) or one under content.channels")
    image_lists: list[tuple[tuple[str | int, ...], list]] = [
        (("content", "images"), content.images or [])
    ]
    image_lists += [(("content", "channels", k, "images"), v.images or [])
                    for k, v in content.channels.items()]
    for base, images in image_lists:
        for i, image in enumerate(images):
            if image.file and not (catalog.images_dir / image.file).is_file():
                out.add((*base, i, "file"),
                        f"image file {image.file!r} not found in "
                        f"{relative_path(catalog.images_dir)}",
                        "put the image into the catalog's images/ folder or fix the name")
            if image.url and not image.url.startswith("https://"):
                out.add((*base, i, "url"), "image URLs must use https://",
                        "networks fetch images only over HTTPS")
    links = [(("content", "link"), content.link)] + [
        (("content", "channels", k, "link"), v.link) for k, v in content.channels.items()
    ]
    for where, link in links:
        if link and not link.startswith("https://"):
            out.add(where, f"link {link!r} does not start with https://",
                    "use the https:// address")
    for where, tags in [(("content", "hashtags"), content.hashtags or [])] + [
        (("content", "channels", k, "hashtags"), v.hashtags or [])
        for k, v in content.channels.items()
    ]:
        for i, tag in enumerate(tags):
            from ..rendering.hashtags import check_hashtag

            problem = check_hashtag(tag)
            if problem:
                out.add((*where, i), problem.message, problem.hint)


def _overrides_intact(salvaged: Salvaged, catalog: Catalog, channel: str) -> bool:
    """Whether the content blocks that may apply to ``channel`` were read whole."""
    account = catalog.accounts.get(channel)
    keys = [channel] + ([account.type.value] if account else [])
    return all(salvaged.intact("content", "channels", key) for key in keys)


def _has_own_text(content, catalog: Catalog, channel: str) -> bool:
    account = catalog.accounts.get(channel)
    for key in (channel, account.type.value if account else None):
        override = content.channels.get(key) if key else None
        if override and (override.text or override.template):
            return True
    return False
