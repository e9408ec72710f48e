"""The rendered posts of one campaign: every channel rendered for the next occurrence
and the result checked (template errors, empty posts, images, lengths, hashtags in the
text), each error at the line of the text or template that causes it.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime

from ..errors import CatalogIssue, RenderError, relative_path
from ..timeutil import BERLIN
from .approvers import UnknownReference, resolve_approvers
from .catalog import CampaignSource, Catalog
from .models import Campaign
from .reading import Collector, dotted_path
from .registry_checks import Registry
from .salvage import Salvaged
from .schedule import next_occurrence, occurrences, on_demand_occurrence

# What a template sees besides its channel's content (newsroom.rendering.render.RenderContext).
_RENDER_NEEDS = (("id",), ("title",), ("topic",), ("requested_by",), ("contact",),
                 ("content", "variables"), ("content", "language"))


def check_rendered(
    source: CampaignSource,
    salvaged: Salvaged,
    registry: Registry,
    out: Collector,
    today: date,
    timed: list[int],
    signatories: list | None,
) -> None:
    """Render every channel for the next occurrence and check the result.

    Only what was read whole renders: the sound slots, the known channels, content that
    nothing was removed from; so an error here is the text's own, never an echo.
    """
    from ..channels import measure_text, requires_image
    from ..rendering.hashtags import check_hashtag, hashtags_in
    from ..rendering.render import render_post, resolve_content, shared_environment

    campaign = source.campaign
    if campaign.content is None or not all(salvaged.intact(*path) for path in _RENDER_NEEDS):
        return
    catalog = registry.catalog
    slots = [
        campaign.slots[i].model_copy(update={"channels": [
            c for j, c in enumerate(campaign.slots[i].channels)
            if c in catalog.accounts and salvaged.intact("slots", i, "channels", j)
        ]})
        for i in timed
    ]
    slots = [s for s in slots if s.channels]
    if not slots:
        return
    whole = salvaged.intact("slots") and len(slots) == len(campaign.slots)
    partial = dataclasses.replace(source, campaign=campaign.model_copy(update={"slots": slots}))
    start = datetime(today.year, today.month, today.day, tzinfo=BERLIN)
    occurrence = next_occurrence(partial.campaign, start)
    if occurrence is None and any(s.on_demand for s in slots):
        occurrence = on_demand_occurrence(partial.campaign, start.replace(hour=12))
    if occurrence is None:
        past = occurrences(partial.campaign, datetime(1970, 1, 1, tzinfo=BERLIN), start)
        occurrence = past[-1] if past else None
    if occurrence is None:
        if whole:
            out.add(("slots",), "this campaign never publishes",
                    "check the slots' dates and `until`", severity="warning")
        return
    # Approvers that could not be resolved are missing from {{ signatories }}: a text too
    # long without them is too long with them, but an empty one may not be.
    if signatories is not None:
        names = None  # render_post asks everyone, deputies standing in on the day
    elif campaign.approval is None:
        names = []
    else:
        names = [a.person.display for a in _resolvable(campaign, catalog)]
    env = shared_environment(catalog.templates_dir)
    reported: set[tuple[str, str]] = set()
    for channel, at in occurrence.channel_times().items():
        account = catalog.accounts[channel]
        if not _content_intact(salvaged, account):
            continue
        images_sure = (salvaged.intact("content", "images")
                       and _overrides_images_intact(salvaged, account))
        content = resolve_content(partial, account)
        try:
            post = render_post(catalog, partial, account, publish_at=at,
                               occurrence_date=occurrence.date, signatories=names, env=env)
        except RenderError as exc:
            key = (exc.template, str(exc))
            if key in reported:
                continue
            reported.add(key)
            _report_render_error(exc, content, partial, catalog, out, channel)
            continue
        if not post.text.strip():
            if names is None:
                where = (content.inline_path if content.inline_text is not None
                         else (*content.inline_path[:-1], "template"))
                out.add(where, f"the post for {channel!r} is empty: "
                        "the template printed nothing "
                        f"(on {occurrence.date.isoformat()})",
                        "check its {% if %} conditions, or give the channel a text of its own "
                        f"under content.channels.{channel}")
            continue
        if requires_image(account) and not post.media and images_sure:
            out.add(content.images_path[:2] if content.images_path[:2] != ("content",)
                    else ("content",),
                    f"{account.type.value} needs an image, but channel {channel!r} has none",
                    "add an image with alt text under content.images or "
                    "content.channels.instagram.images")
        for measurement in measure_text(post.text, account, has_image=bool(post.media)):
            if measurement.ok:
                continue
            if not images_sure and all(
                m.ok for m in measure_text(post.text, account, has_image=not post.media)
            ):
                continue  # too long only because a refused image is missing (a caption's limit)
            where = (content.inline_path if content.inline_text is not None
                     else (*content.inline_path[:-1], "template"))
            out.add(where,
                    f"the post for {channel!r} is too long: {measurement.describe()} "
                    f"(on {occurrence.date.isoformat()})",
                    _shorten_hint(measurement, content, channel))
        for tag in hashtags_in(post.text):
            problem = check_hashtag(tag)
            if problem and (channel, tag) not in reported and tag not in (content.hashtags or ()):
                reported.add((channel, tag))
                message = f"in the text for {channel!r}: {problem.message}"
                if content.inline_text is not None:
                    in_text = _line_with_hashtag(content.inline_text, tag)
                    line = _inline_line(partial, content, in_text)
                    out.issues.append(CatalogIssue(
                        out.file, line, message, problem.hint, dotted_path(content.inline_path)))
                else:
                    out.add((*content.inline_path[:-1], "template"), message, problem.hint)


def _resolvable(campaign: Campaign, catalog: Catalog) -> list:
    """The people of the signing steps that can be resolved (a step's unknown
    references are reported with the approvers)."""
    found = []
    for step in campaign.approval.chain:
        if not step.signs:
            continue
        for ref in step.approvers:
            try:
                found += resolve_approvers(
                    step.model_copy(update={"approvers": [ref]}), catalog.index
                )
            except UnknownReference:
                pass
    return found


def _content_intact(salvaged: Salvaged, account) -> bool:
    """Whether the text, template, link and hashtags that apply to ``account`` were read whole."""
    for base in (("content",), ("content", "channels", account.name),
                 ("content", "channels", account.type.value)):
        for part in ("text", "template", "link", "hashtags"):
            if not salvaged.intact(*base, part):
                return False
    return all(salvaged.intact("content", "channels", key) or _only_images_removed(salvaged, key)
               for key in (account.name, account.type.value))


def _only_images_removed(salvaged: Salvaged, key: str) -> bool:
    base = ("content", "channels", key)
    return all(gone[: len(base) + 1] == (*base, "images")
               for gone in salvaged.removed if gone[: len(base)] == base)


def _overrides_images_intact(salvaged: Salvaged, account) -> bool:
    return all(salvaged.intact("content", "channels", key, "images")
               for key in (account.name, account.type.value))


def _shorten_hint(measurement, content, channel: str) -> str:
    """By how much, in the unit the network counts; an own text for the channel only if
    it has none yet."""
    hint = f"shorten the text by {measurement.excess}"
    if tuple(content.inline_path[:2]) == ("content", "channels"):
        return hint + f" (its own text under {'.'.join(map(str, content.inline_path[:3]))})"
    return hint + f", or give {channel} its own shorter text under content.channels.{channel}"


def _report_render_error(
    exc: RenderError, content, source: CampaignSource, catalog: Catalog, out: Collector,
    channel: str,
) -> None:
    hint = exc.hint
    message = f"{exc} (rendering for {channel!r})"
    if content.template_name:
        template_file = catalog.templates_dir / (exc.template or content.template_name)
        where_file = relative_path(template_file) if template_file.is_file() else out.file
        line = exc.line or (source.line_of("content", "template") if where_file == out.file else 1)
        out.issues.append(CatalogIssue(where_file, line, message, hint,
                                       "" if where_file != out.file else "content.template"))
        return
    line = _inline_line(source, content, exc.line)
    out.issues.append(CatalogIssue(out.file, line, message, hint, dotted_path(content.inline_path)))


def _inline_line(source: CampaignSource, content, template_line: int) -> int:
    """The file line of ``template_line`` of an inline text; its key's line if unknown."""
    first = source.doc.literal_blocks.get(tuple(content.inline_path))
    if first is None or template_line < 1:
        return source.line_of(*content.inline_path)
    return first + template_line - 1


def _line_with_hashtag(text: str, tag: str) -> int:
    from ..rendering.hashtags import hashtags_in

    for number, line in enumerate(text.splitlines(), start=1):
        if tag in hashtags_in(line):
            return number
    return 0
