"""Render a campaign occurrence into one :class:`RenderedPost` per channel.

Rendering is pure: the catalog and a date in, value objects out. Publishers never
render, templates never send.
"""

from __future__ import annotations

import hashlib
import traceback
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import TemplateError, TemplateNotFound, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from ..catalog.approvers import resolve_signatories
from ..catalog.catalog import CampaignSource, Catalog
from ..catalog.models import ChannelAccount, Image
from ..catalog.schedule import Occurrence, occurrence_on
from ..errors import RenderError
from ..posts import MediaItem, RenderedPost
from .templates import (
    MAX_TEXT,
    TemplateTooSlow,
    check_deadline,
    drop_code_only_lines,
    german_date,
    german_time,
    hashtag_line,
    join_german,
    render_deadline,
    shared_environment,
)


@dataclass(frozen=True)
class ResolvedContent:
    """The content one channel gets after applying its overrides."""

    template_name: str | None  # file in templates/
    inline_text: str | None
    inline_path: tuple[str | int, ...]  # where the inline text sits in the YAML
    hashtags: tuple[str, ...]
    images: tuple[Image, ...]
    images_path: tuple[str | int, ...]
    link: str | None


def resolve_content(source: CampaignSource, account: ChannelAccount) -> ResolvedContent:
    content = source.campaign.content
    key = account.name if account.name in content.channels else account.type.value
    override = content.channels.get(key)
    base_path: tuple[str | int, ...] = ("content",)
    over_path: tuple[str | int, ...] = ("content", "channels", key)
    template_name, inline_text, inline_path = content.template, content.text, (*base_path, "text")
    if override and (override.template or override.text):
        template_name, inline_text = override.template, override.text
        inline_path = (*over_path, "text")
    images, images_path = content.images or [], (*base_path, "images")
    if override and override.images is not None:
        images, images_path = override.images, (*over_path, "images")
    hashtags = content.hashtags or []
    if override and override.hashtags is not None:
        hashtags = override.hashtags
    link = override.link if override and override.link else content.link
    return ResolvedContent(
        template_name, inline_text, inline_path, tuple(hashtags), tuple(images), images_path, link
    )


@dataclass
class RenderContext:
    """The variables a template sees. Names are English; values are German text."""

    catalog: Catalog
    source: CampaignSource
    account: ChannelAccount
    publish_at: datetime
    occurrence_date: date
    signatories: list[str]
    content: ResolvedContent

    def variables(self) -> dict[str, Any]:
        campaign = self.source.campaign
        requester = campaign.requested_by
        if requester.portfolio:
            portfolio = self.catalog.index.portfolios.get(requester.portfolio)
            requested_by = portfolio.name if portfolio else requester.portfolio
        else:
            office = self.catalog.index.offices.get(requester.office or "")
            requested_by = office.name if office else (requester.office or "")
        values: dict[str, Any] = {
            "title": campaign.title,
            "topic": campaign.topic,
            "link": self.content.link or "",
            "hashtags": hashtag_line(self.content.hashtags),
            "hashtag_list": list(self.content.hashtags),
            "date": self.occurrence_date,
            "datum": german_date(self.occurrence_date),
            "year": self.occurrence_date.year,
            "time": german_time(self.publish_at),
            "channel": self.account.name,
            "channel_type": self.account.type.value,
            "signatories": list(self.signatories),
            "signatories_text": join_german(self.signatories),
            "requested_by": requested_by,
            "contact": campaign.contact or "",
        }
        values.update(campaign.content.variables)
        return values


def template_source(ctx: RenderContext, env: SandboxedEnvironment):
    if ctx.content.template_name:
        try:
            return env.get_template(ctx.content.template_name)
        except TemplateNotFound:
            raise RenderError(
                f"template file {ctx.content.template_name!r} not found",
                template=ctx.content.template_name,
                hint=f"create it in {ctx.catalog.templates_dir} or fix the name",
            ) from None
    if ctx.content.inline_text is None:
        raise RenderError(
            f"no text for channel {ctx.account.name!r}",
            hint="give `content.text` or `content.template`, or one under content.channels",
        )
    return env.from_string(ctx.content.inline_text)


def render_text(ctx: RenderContext, env: SandboxedEnvironment) -> str:
    """Render one channel's text; errors carry the template's line where Jinja knows it."""
    name = ctx.content.template_name or ""
    try:
        template = template_source(ctx, env)
        text = _render_bounded(template, ctx.variables())
    except TemplateSyntaxError as exc:
        raise RenderError(
            f"template syntax error: {exc.message}",
            template=exc.name or name,
            line=exc.lineno or 0,
            hint="close every {{ … }} and {% … %} and check the spelling of tags",
        ) from None
    except UndefinedError as exc:
        variable = _undefined_name(exc)
        source = _source_text(ctx, env)
        raise RenderError(
            f"template uses an undefined variable: {exc.message}",
            template=name,
            line=_template_line(exc, ctx) or _line_mentioning(source, variable),
            hint="use one of: " + ", ".join(sorted(ctx.variables()))
            + " — or define it under content.variables",
        ) from None
    except TemplateTooSlow as exc:
        raise RenderError(
            f"template tries something templates may not do: {exc}",
            template=name,
            line=_template_line(exc, ctx),
            hint="a loop runs far too often; loop over the campaign's lists, not over "
                 "ranges or lists multiplied into millions of steps",
        ) from None
    except SecurityError as exc:
        raise RenderError(
            f"template tries something templates may not do: {exc}",
            template=name,
            line=_template_line(exc, ctx),
            hint="templates may only use variables and filters, not Python internals",
        ) from None
    except TemplateError as exc:
        raise RenderError(
            f"template error: {exc}",
            template=name,
            line=_template_line(exc, ctx),
            hint="check the template",
        ) from None
    except RecursionError:
        raise RenderError(
            "template calls itself without end (a macro or include that never stops)",
            template=name,
            hint="make sure every macro or include ends without calling itself again",
        ) from None
    except MemoryError:
        raise RenderError(
            "template would need more memory than there is",
            template=name,
            hint="templates may only build texts of a post's size",
        ) from None
    except (TypeError, ValueError, ArithmeticError, AttributeError, KeyError, IndexError) as exc:
        raise RenderError(
            f"template failed while rendering: {exc}",
            template=name,
            line=_template_line(exc, ctx),
            hint="check the template",
        ) from None
    return normalise(drop_code_only_lines(text))


def _render_bounded(template: Any, variables: dict[str, Any]) -> str:
    """Render, but stop once the text grows beyond MAX_TEXT (loops printing without end)
    or the render deadline passes (loops running without end, printing nothing)."""
    parts: list[str] = []
    size = 0
    with render_deadline():
        for part in template.generate(variables):
            check_deadline()
            size += len(part)
            if size > MAX_TEXT:
                raise SecurityError(f"the text would be far too long (more than {MAX_TEXT} "
                                    "characters); a post is at most a few thousand characters")
            parts.append(part)
    return "".join(parts)


def normalise(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:
        if line == "" and out and out[-1] == "":
            continue  # at most one blank line between paragraphs
        out.append(line)
    return "\n".join(out)


def _undefined_name(exc: UndefinedError) -> str:
    message = exc.message or ""
    if "'" in message:
        return message.split("'")[1]
    return ""


def _source_text(ctx: RenderContext, env: SandboxedEnvironment) -> str:
    if ctx.content.template_name and env.loader is not None:
        try:
            return env.loader.get_source(env, ctx.content.template_name)[0]
        except TemplateNotFound:
            return ""
    return ctx.content.inline_text or ""


def _template_line(exc: BaseException, ctx: RenderContext) -> int:
    """The template line of a runtime error, from the traceback Jinja rewrites to name it."""
    templates = str(ctx.catalog.templates_dir)
    line = 0
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == "<template>" or frame.filename.startswith(templates):
            line = frame.lineno or line
    return line


def _line_mentioning(source: str, name: str) -> int:
    if not name:
        return 0
    for number, line in enumerate(source.splitlines(), start=1):
        if name in line:
            return number
    return 0


def media_items(catalog: Catalog, images: tuple[Image, ...]) -> tuple[MediaItem, ...]:
    items = []
    for image in images:
        if image.file:
            path = catalog.images_dir / image.file
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
            items.append(
                MediaItem(source=str(Path("images") / image.file), alt=image.alt, sha256=digest)
            )
        else:
            items.append(MediaItem(source=image.url or "", alt=image.alt))
    return tuple(items)


def default_signatories(
    catalog: Catalog, source: CampaignSource, day: date | None = None
) -> list[str]:
    """Everyone who may sign (every person of the signing steps): the longest list, used
    for previews and length checks."""
    approvers = resolve_signatories(source.campaign.approval, catalog.index, day)
    return [a.person.display for a in approvers]


def render_post(
    catalog: Catalog,
    source: CampaignSource,
    account: ChannelAccount,
    *,
    publish_at: datetime,
    occurrence_date: date,
    signatories: list[str] | None = None,
    env: SandboxedEnvironment | None = None,
) -> RenderedPost:
    env = env or shared_environment(catalog.templates_dir)
    content = resolve_content(source, account)
    if signatories is None:
        signatories = default_signatories(catalog, source, occurrence_date)
    ctx = RenderContext(catalog, source, account, publish_at, occurrence_date, signatories, content)
    text = render_text(ctx, env)
    campaign = source.campaign
    return RenderedPost(
        campaign_id=campaign.id,
        occurrence=occurrence_date,
        channel=account.name,
        channel_type=account.type.value,
        publish_at=publish_at,
        text=text,
        language=campaign.content.language,
        link=content.link,
        hashtags=content.hashtags,
        media=media_items(catalog, content.images),
        title=campaign.title,
    )


def render_occurrence(
    catalog: Catalog,
    campaign_id: str,
    day: date,
    *,
    signatories: list[str] | None = None,
    channels: list[str] | None = None,
) -> list[RenderedPost]:
    """All posts of ``campaign_id`` on local date ``day`` (RenderError on the first problem)."""
    source = catalog.campaign(campaign_id)
    occurrence: Occurrence | None = occurrence_on(source.campaign, day)
    if occurrence is None:
        raise RenderError(
            f"campaign {campaign_id!r} publishes nothing on {day.isoformat()}",
            hint="run `newsroom calendar` to see its dates",
        )
    env = shared_environment(catalog.templates_dir)
    posts = []
    for channel, at in occurrence.channel_times().items():
        if channels and channel not in channels:
            continue
        posts.append(
            render_post(
                catalog,
                source,
                catalog.account(channel),
                publish_at=at,
                occurrence_date=day,
                signatories=signatories,
                env=env,
            )
        )
    return posts
