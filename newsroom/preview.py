"""Preview a campaign occurrence: each channel's exact post, its media and its length.

``build_preview`` renders what would be published (the same rendering the flows use),
``format_preview_text`` shows it in a terminal and ``write_preview_html`` writes one
self-contained HTML file with a card per channel that looks like the network's post.
"""

from __future__ import annotations

import base64
import difflib
import mimetypes
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from markupsafe import Markup, escape

from .approval import gate_deadline, step_deadline, step_name
from .catalog.approvers import resolve_chain
from .catalog.catalog import Catalog
from .catalog.models import Campaign, ChannelAccount, ChannelType
from .catalog.schedule import (
    Occurrence,
    next_occurrence,
    occurrence_on,
    occurrences,
    on_demand_occurrence,
)
from .channels import Measurement, measure_text, requires_image
from .channels._text import find_links
from .html_templates import html_environment
from .posts import MediaItem, RenderedPost
from .rendering.hashtags import HASHTAG_IN_TEXT
from .rendering.render import render_occurrence, render_post
from .rendering.templates import shared_environment
from .timeutil import BERLIN, format_local

HTML_TEMPLATE = "preview.html"
NEXT_DATES_SHOWN = 3
ON_DEMAND_PREVIEW_TIME = time(12, 0)  # a crisis template previewed for a given day


@dataclass
class PreviewPost:
    """One channel's post with the account it goes to and how the network measures it."""

    post: RenderedPost
    account: ChannelAccount
    measurements: list[Measurement]

    @property
    def missing_image(self) -> bool:
        """The network needs an image (Instagram) and the post has none."""
        return requires_image(self.account) and not self.post.media

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.measurements) and not self.missing_image


@dataclass
class Preview:
    campaign: Campaign
    day: date
    posts: list[PreviewPost]
    on_demand: bool = False  # a crisis template, shown as if triggered at the posts' time
    images_dir: Path | None = field(default=None, repr=False)
    # When approvals are due, as the gate computes it (None: pre-approved, or on demand).
    approval_deadline: datetime | None = None
    # An approval chain: one line per step (who, the rule, when due), in order.
    approval_steps: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.posts)


# --- building -------------------------------------------------------------------------


def _as_berlin(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.now(BERLIN)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=BERLIN)
    return moment.astimezone(BERLIN)


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=BERLIN)


def _next_dates(campaign: Campaign, after: date, count: int = NEXT_DATES_SHOWN) -> list[date]:
    start = _day_start(after + timedelta(days=1))
    found = occurrences(campaign, start, start + timedelta(days=366 * 5))
    return [o.date for o in found[:count]]


def _last_date_before(campaign: Campaign, day: date) -> date | None:
    past = occurrences(campaign, datetime(1970, 1, 1, tzinfo=BERLIN), _day_start(day))
    return past[-1].date if past else None


def _nothing_on(campaign: Campaign, day: date) -> LookupError:
    upcoming = _next_dates(campaign, day)
    if upcoming:
        listed = ", ".join(d.isoformat() for d in upcoming)
        return LookupError(
            f"campaign {campaign.id!r} publishes nothing on {day.isoformat()}; next dates: {listed}"
        )
    last = _last_date_before(campaign, day)
    tail = f"; its last date was {last.isoformat()}" if last else ""
    return LookupError(
        f"campaign {campaign.id!r} publishes nothing on {day.isoformat()} "
        f"and has no later dates{tail}"
    )


def _only_on_demand(campaign: Campaign) -> bool:
    return all(slot.on_demand for slot in campaign.slots)


def _pick_occurrence(
    campaign: Campaign, day: date | None, now: datetime
) -> tuple[Occurrence, bool]:
    """The occurrence to preview and whether it is an on-demand (crisis) trigger."""
    if _only_on_demand(campaign):
        at = now if day is None else datetime.combine(day, ON_DEMAND_PREVIEW_TIME, BERLIN)
        return on_demand_occurrence(campaign, at), True
    if day is not None:
        found = occurrence_on(campaign, day)
        if found is None:
            raise _nothing_on(campaign, day)
        return found, False
    found = next_occurrence(campaign, now)
    if found is None:
        last = _last_date_before(campaign, now.date() + timedelta(days=1))
        hint = f"; its last date was {last.isoformat()} (preview it with that day)" if last else ""
        raise LookupError(f"campaign {campaign.id!r} has no date after {format_local(now)}{hint}")
    # The whole day, also slots earlier that day: an occurrence is approved as one.
    return occurrence_on(campaign, found.date) or found, False


def _check_channel(channel: str, occurrence: Occurrence, catalog: Catalog) -> None:
    channels = list(occurrence.channel_times())
    if channel in channels:
        return
    shown = ", ".join(channels)
    if channel in catalog.accounts:
        raise LookupError(
            f"campaign {occurrence.campaign_id!r} does not publish on {channel!r} "
            f"on {occurrence.date.isoformat()}; its channels: {shown}"
        )
    close = difflib.get_close_matches(channel, channels + list(catalog.accounts), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"its channels: {shown}"
    raise LookupError(f"unknown channel {channel!r}; {hint}")


def build_preview(
    catalog: Catalog,
    campaign_id: str,
    *,
    day: date | None = None,
    channel: str | None = None,
    now: datetime | None = None,
) -> Preview:
    """Render ``campaign_id`` for ``day`` (default: its next date after ``now``).

    Raises LookupError for an unknown campaign or channel, or a day without posts (the
    message names the next dates), and RenderError when a template fails.
    """
    source = catalog.campaign(campaign_id)
    campaign = source.campaign
    moment = _as_berlin(now)
    occurrence, on_demand = _pick_occurrence(campaign, day, moment)
    if channel is not None:
        _check_channel(channel, occurrence, catalog)
    if on_demand:
        env = shared_environment(catalog.templates_dir)
        posts = [
            render_post(
                catalog,
                source,
                catalog.account(name),
                publish_at=at,
                occurrence_date=occurrence.date,
                env=env,
            )
            for name, at in occurrence.channel_times().items()
            if channel is None or name == channel
        ]
    else:
        posts = render_occurrence(
            catalog, campaign.id, occurrence.date, channels=[channel] if channel else None
        )
    previews = []
    for post in posts:
        account = catalog.account(post.channel)
        measured = measure_text(post.text, account, has_image=bool(post.media))
        previews.append(PreviewPost(post, account, measured))
    deadline = None
    steps: tuple[str, ...] = ()
    if not on_demand and not campaign.approval.pre_approved:
        deadline = gate_deadline(catalog, campaign.id, occurrence.first_publish_at)
        steps = _step_lines(catalog, campaign, occurrence.date, occurrence.first_publish_at)
    return Preview(campaign, occurrence.date, previews, on_demand, catalog.images_dir, deadline,
                   steps)


def _step_lines(catalog: Catalog, campaign: Campaign, day: date,
                first_publish_at: datetime) -> tuple[str, ...]:
    """``step 2 of 3: Sportdezernat – one of Oberbürgermeister Hanno Benz, due …``."""
    chain = campaign.approval.chain
    if len(chain) < 2:
        return ()
    people = resolve_chain(campaign.approval, catalog.index, day)
    lines = []
    for number, step in enumerate(chain):
        rule = {"one": "one of", "all": "all of"}.get(step.mode.value,
                                                      f"{step.quorum} of")
        names = ", ".join(a.person.display + (f" (for {a.on_behalf_of.display})"
                                              if a.on_behalf_of else "")
                          for a in people[number])
        due = step_deadline(catalog, campaign.id, number, first_publish_at)
        lines.append(f"step {number + 1} of {len(chain)}: {step_name(catalog, step, number)}"
                     f" – {rule} {names}, due {format_local(due)}"
                     + (" (signs)" if step.signs and campaign.signatories_in_text else ""))
    return tuple(lines)


def approval_line(preview: Preview) -> str:
    """``Approval deadline: 2027-03-27 10:00 (CET)``, or why there is none."""
    if preview.approval_deadline is not None:
        line = f"Approval deadline: {format_local(preview.approval_deadline)}"
        if preview.approval_steps:
            line += "; in steps, each asked once the one before approves:\n  " + (
                "\n  ".join(preview.approval_steps))
        return line
    if preview.campaign.approval.pre_approved:
        return "Approval: pre-approved (no deadline)"
    return "Approval deadline: set when the campaign is triggered"


# --- text -----------------------------------------------------------------------------


def measurement_line(measurement: Measurement) -> str:
    """``Länge/length: 287/500 characters (URLs count as 23) ✓`` or ``… ✗ over by 24``."""
    line = f"Länge/length: {measurement.describe()}"
    if measurement.ok:
        return line + " ✓"
    return line + f" ✗ over by {measurement.excess}"


def _channel_header(item: PreviewPost, width: int = 78) -> str:
    head = (
        f"── {item.post.channel} ({item.account.display_name}) · "
        f"{format_local(item.post.publish_at)} ──"
    )
    return head + "─" * max(0, width - len(head))


def _channel_notes(item: PreviewPost) -> list[str]:
    account, post = item.account, item.post
    if account.type == ChannelType.EMAIL:
        notes = [f"Subject: {post.title}"]
        if account.recipients:
            notes.append("To: " + ", ".join(account.recipients))
        return notes
    if account.type == ChannelType.WEBSITE:
        return [f"Entry title: {post.title}"]
    if account.type == ChannelType.MANUAL:
        return [f"Posted by hand on {account.network} by {account.owner}"]
    return []


def format_preview_text(preview: Preview) -> str:
    """Each channel's exact text, media with alt text and measured length."""
    campaign = preview.campaign
    when = "triggered on demand" if preview.on_demand else "occurrence"
    lines = [f"Preview: {campaign.title} ({campaign.id}) · {when} {preview.day.isoformat()}",
             approval_line(preview), ""]
    for item in preview.posts:
        lines.append(_channel_header(item))
        lines.extend(_channel_notes(item))
        lines.append(item.post.text)
        for media in item.post.media:
            lines.append(f"[Bild] {media.source} — Alt: {media.alt}")
        if item.missing_image:
            lines.append(f"✗ {item.account.type.value} needs an image, this post has none")
        lines.extend(measurement_line(m) for m in item.measurements)
        lines.append("")
    too_long = [p.post.channel for p in preview.posts if not p.ok]
    if not preview.posts:
        lines.append("No posts.")
    elif too_long:
        lines.append(
            f"✗ {len(too_long)} of {len(preview.posts)} posts need work: {', '.join(too_long)}"
        )
    else:
        count = len(preview.posts)
        lines.append("✓ the post fits" if count == 1 else f"✓ all {count} posts fit their networks")
    return "\n".join(lines)


# --- HTML -----------------------------------------------------------------------------


class NetworkStyle(NamedTuple):
    """How a network's card looks."""

    layout: str  # social, instagram, bubble, website, email
    color: str  # brand colour
    shape: str  # avatar: round, rounded, square
    label: str


NETWORK_STYLE: dict[ChannelType, NetworkStyle] = {
    ChannelType.MASTODON: NetworkStyle("social", "#6364ff", "rounded", "Mastodon"),
    ChannelType.BLUESKY: NetworkStyle("social", "#1185fe", "round", "Bluesky"),
    ChannelType.INSTAGRAM: NetworkStyle("instagram", "#d62976", "round", "Instagram"),
    ChannelType.FACEBOOK: NetworkStyle("social", "#1877f2", "round", "Facebook"),
    ChannelType.LINKEDIN: NetworkStyle("social", "#0a66c2", "square", "LinkedIn"),
    ChannelType.THREADS: NetworkStyle("social", "#101010", "round", "Threads"),
    ChannelType.TELEGRAM: NetworkStyle("bubble", "#229ed9", "round", "Telegram"),
    ChannelType.WEBSITE: NetworkStyle("website", "#00549f", "square", "Website (Atom)"),
    ChannelType.EMAIL: NetworkStyle("email", "#555555", "square", "Press e-mail"),
    ChannelType.MANUAL: NetworkStyle("bubble", "#25d366", "round", "Manual"),
}


def _initial(display_name: str) -> str:
    for char in display_name:
        if char.isalnum():
            return char.upper()
    return "?"


def _public_handle(account: ChannelAccount) -> str:
    """The account id when readers see it (a handle, not a numeric page id)."""
    handle = account.account_id or ""
    if account.type == ChannelType.EMAIL or handle.isdigit():
        return ""
    if handle.lstrip("@") == account.display_name.lstrip("@"):
        return ""
    return handle


def rich_text(text: str) -> Markup:
    """HTML-escaped post text with links and hashtags highlighted (line breaks kept by CSS)."""
    spans: list[tuple[int, int, str]] = [(s.start, s.end, "url") for s in find_links(text)]
    for match in HASHTAG_IN_TEXT.finditer(text):
        if not any(start <= match.start() < end for start, end, _ in spans):
            spans.append((match.start(), match.end(), "tag"))
    out: list[str] = []
    last = 0
    for start, end, kind in sorted(spans):
        out.append(str(escape(text[last:start])))
        piece = escape(text[start:end])
        if kind == "url":
            out.append(f'<a class="link" href="{piece}" rel="noopener noreferrer">{piece}</a>')
        else:
            out.append(f'<span class="tag">{piece}</span>')
        last = end
    out.append(str(escape(text[last:])))
    return Markup("".join(out))


class _ImageEmbedder:
    """Turns catalog image files into data: URIs (each file read once)."""

    def __init__(self, images_dir: Path | None):
        self.images_dir = images_dir.resolve() if images_dir else None
        self.cache: dict[str, str | None] = {}

    def path_of(self, media: MediaItem) -> Path | None:
        if self.images_dir is None or "://" in media.source:
            return None
        relative = Path(media.source)
        if relative.parts and relative.parts[0] == self.images_dir.name:
            relative = Path(*relative.parts[1:])
        path = (self.images_dir / relative).resolve()
        if not path.is_relative_to(self.images_dir) or not path.is_file():
            return None
        return path

    def data_uri(self, media: MediaItem) -> str | None:
        if media.source in self.cache:
            return self.cache[media.source]
        uri = None
        path = self.path_of(media)
        if path is not None:
            mime = mimetypes.guess_type(path.name)[0] or ""
            if mime.startswith("image/"):
                encoded = base64.b64encode(path.read_bytes()).decode("ascii")
                uri = f"data:{mime};base64,{encoded}"
        self.cache[media.source] = uri
        return uri


def _card(item: PreviewPost, embed: _ImageEmbedder) -> dict[str, Any]:
    account, post = item.account, item.post
    style = NETWORK_STYLE.get(account.type, NETWORK_STYLE[ChannelType.WEBSITE])
    label = style.label
    if account.type == ChannelType.MANUAL:
        label = f"{(account.network or 'manual').capitalize()} (posted by hand)"
    local = post.publish_at.astimezone(BERLIN)
    return {
        "channel": post.channel,
        "type": account.type.value,
        "layout": style.layout,
        "color": style.color,
        "shape": style.shape,
        "label": label,
        "display_name": account.display_name,
        "handle": _public_handle(account),
        "initial": _initial(account.display_name.lstrip("@")),
        "time": format_local(post.publish_at),
        "time_iso": local.isoformat(),
        "title": post.title,
        "link": post.link,
        "text": rich_text(post.text),
        "images": [
            {"src": embed.data_uri(m), "alt": m.alt, "source": m.source} for m in post.media
        ],
        "measurements": [
            {
                "text": m.describe(),
                "ok": m.ok,
                "over": m.over,
                "excess": m.excess,
            }
            for m in item.measurements
        ],
        "missing_image": item.missing_image,
        "recipients": list(account.recipients),
        "sender": account.account_id or "",
        "owner": account.owner or "",
        "network": account.network or "",
        "ok": item.ok,
    }


def render_preview_html(preview: Preview) -> str:
    embed = _ImageEmbedder(preview.images_dir)
    template = html_environment().get_template(HTML_TEMPLATE)
    return template.render(
        campaign=preview.campaign,
        day=preview.day.isoformat(),
        on_demand=preview.on_demand,
        cards=[_card(item, embed) for item in preview.posts],
        ok=preview.ok,
        approval=approval_line(preview),
    )


def write_preview_html(preview: Preview, path: Path) -> Path:
    """Write the preview as one self-contained HTML file and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_preview_html(preview), encoding="utf-8")
    return path
