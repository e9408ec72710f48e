"""The city's website: an Atom feed file (RFC 4287) and, optionally, a CMS webhook.

Each post becomes one ``<entry>`` whose ``<id>`` is a ``tag:`` URI derived from the
post key, so publishing the same post again replaces its entry instead of adding a
second one. The file is rewritten atomically (temporary file, fsync, rename) under an
advisory lock, so readers never see half a feed and two writers do not lose entries.

When the account has a ``base_url``, the post is also sent as JSON to that URL with an
``Idempotency-Key`` header (and a Bearer token if the account has a credential). The
CMS webhook contract is ours: the receiver must answer a repeated key with the first
result. With that, and the feed upsert, ``idempotent_retries = True``.

A recall (:meth:`WebsitePublisher.withdraw`) does not delete the post: it is *withdrawn*.

- The CMS gets ``POST <base_url>/withdraw`` (the same Bearer token, an ``Idempotency-Key``:
  the recall's) with ``{"id": <the entry's tag: URI>, "reason": …, "notice":
  "Zurückgezogen", "withdrawn_at": …}``. It keeps the page at its URL, shows a visible
  „Zurückgezogen“ notice with the reason above the text, and drops the entry from its
  lists and feeds. It answers 200 with ``{"status": "withdrawn" | "already_withdrawn" |
  "not_found", "url": …}``; a repeat answers ``already_withdrawn``, so a withdrawal is
  idempotent by its state (``idempotent_withdrawals``). Any other answer — a 404 from a
  receiver without this route among them — is an error, never taken for "done".
- The Atom feed drops the ``<entry>`` and lists an RFC 6721 tombstone in its place
  (``<at:deleted-entry ref="<id>" when="…">`` with the reason as ``<at:comment>``), so
  feed readers that already have the entry can remove it. Publishing the entry again
  replaces its tombstone.

Why withdrawn and not deleted: the post's URL has been shared (social posts, the press,
search engines). A 404 there looks like an error or like silent censorship; a city's page
that says "withdrawn, and why" is the transparent correction a public authority owes its
readers, while the feed and the lists stop presenting it as news.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import weakref
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from newsroom.catalog.models import ChannelType
from newsroom.channels.base import AccountCheck, Publisher, PublishResult, WithdrawResult
from newsroom.errors import PermanentPublishError
from newsroom.posts import RenderedPost

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

ATOM_NS = "http://www.w3.org/2005/Atom"
# RFC 6721, The Atom "deleted-entry" Element (tombstones).
TOMBSTONE_NS = "http://purl.org/atompub/tombstones/1.0"
WITHDRAWN_NOTICE = "Zurückgezogen"
# The date part of every tag: URI. Never change it: it is part of each entry's identity.
TAG_DATE = "2025"
_A = "{" + ATOM_NS + "}"
_AT = "{" + TOMBSTONE_NS + "}"


def tag_uri(authority: str, specific: str) -> str:
    """``tag:authority,2025:specific`` (RFC 4151), ``specific`` percent-encoded."""
    return f"tag:{authority},{TAG_DATE}:{quote(specific, safe='/-._~:')}"


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _sub(parent: ET.Element, name: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, name, attrs)
    if text is not None:
        element.text = text
    return element


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    if fcntl is None:
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def read_entries(path: Path) -> list[dict[str, str]]:
    """The feed's entries as dicts: id, title, updated, published, content, link."""
    if not path.exists() or not path.stat().st_size:
        return []
    root = ET.parse(path).getroot()
    result = []
    for element in root.findall(_A + "entry"):
        link = element.find(_A + "link")
        result.append({
            "id": element.findtext(_A + "id", ""),
            "title": element.findtext(_A + "title", ""),
            "updated": element.findtext(_A + "updated", ""),
            "published": element.findtext(_A + "published", ""),
            "content": element.findtext(_A + "content", ""),
            "link": link.get("href", "") if link is not None else "",
        })
    return result


def read_tombstones(path: Path) -> list[dict[str, str]]:
    """The feed's RFC 6721 tombstones (withdrawn entries) as dicts: ref, when, comment."""
    if not path.exists() or not path.stat().st_size:
        return []
    root = ET.parse(path).getroot()
    return [{"ref": element.get("ref", ""), "when": element.get("when", ""),
             "comment": element.findtext(_AT + "comment", "")}
            for element in root.findall(_AT + "deleted-entry")]


def upsert_entry(
    path: Path, *, feed_id: str, title: str, author: str, self_url: str,
    entry: dict[str, str], max_entries: int = 100, now: datetime | None = None,
) -> bool:
    """Insert or replace the entry with ``entry["id"]``; True if it was new.

    ``entry`` has id, title, content, published and link (may be empty). An unchanged
    entry is left alone (a retry does not make it look edited); a changed one keeps
    its first ``published``.
    """
    return upsert_entries(path, feed_id=feed_id, title=title, author=author,
                          self_url=self_url, entries=[entry], max_entries=max_entries,
                          now=now)[0]


def upsert_entries(
    path: Path, *, feed_id: str, title: str, author: str, self_url: str,
    entries: list[dict[str, str]], max_entries: int = 100, now: datetime | None = None,
) -> list[bool]:
    """:func:`upsert_entry` for several entries in one rewrite of the file; for each
    entry, True if it was new."""
    stamp = _timestamp(now or datetime.now(UTC))
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        current = {e["id"]: e for e in read_entries(path)}
        tombstones = {t["ref"]: t for t in read_tombstones(path)}
        created, changed = [], False
        essence = ("title", "content", "link")
        for entry in entries:
            old = current.get(entry["id"])
            if old is not None and all(old[k] == (entry.get(k) or "") for k in essence):
                created.append(False)
                continue
            new = {"link": "", **entry, "updated": stamp}
            if old is not None and old["published"]:
                new["published"] = old["published"]
            current[entry["id"]] = new
            tombstones.pop(entry["id"], None)  # published again: no longer withdrawn
            created.append(old is None)
            changed = True
        if changed:
            _write_feed(path, current, tombstones, feed_id=feed_id, title=title,
                        author=author, self_url=self_url, max_entries=max_entries, now=stamp)
        return created


def withdraw_entry(
    path: Path, *, feed_id: str, title: str, author: str, self_url: str, entry_id: str,
    reason: str = "", max_entries: int = 100, now: datetime | None = None,
) -> bool:
    """Drop the entry ``entry_id`` from the feed and list a tombstone for it (RFC 6721,
    the reason as its comment); True if the entry was in the feed, False if it was not
    (withdrawn already, or never there: nothing is written)."""
    stamp = _timestamp(now or datetime.now(UTC))
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        current = {e["id"]: e for e in read_entries(path)}
        if entry_id not in current:
            return False
        del current[entry_id]
        tombstones = {t["ref"]: t for t in read_tombstones(path)}
        comment = f"{WITHDRAWN_NOTICE}: {reason}" if reason else WITHDRAWN_NOTICE
        tombstones[entry_id] = {"ref": entry_id, "when": stamp, "comment": comment}
        _write_feed(path, current, tombstones, feed_id=feed_id, title=title, author=author,
                    self_url=self_url, max_entries=max_entries, now=stamp)
        return True


def _write_feed(path: Path, entries: Mapping[str, dict[str, str]],
                tombstones: Mapping[str, dict[str, str]], *, feed_id: str, title: str,
                author: str, self_url: str, max_entries: int, now: str) -> None:
    """Rewrite the feed: the newest ``max_entries`` entries, the newest as many
    tombstones."""
    ordered = sorted(entries.values(), key=lambda e: e["published"], reverse=True)
    stones = sorted(tombstones.values(), key=lambda t: t["when"], reverse=True)
    _atomic_write(path, _feed_xml(ordered[:max_entries], tombstones=stones[:max_entries],
                                  feed_id=feed_id, title=title, author=author,
                                  self_url=self_url, now=now))


class _FeedBatch:
    """Entries for one feed file that arrived together: written in one rewrite.

    Many website posts fall due at the same second; rewriting the feed once per post
    (read, parse, write, fsync, under the file lock) serialised them and held up every
    other channel's send. Entries that arrive while a batch waits to start join it.
    """

    def __init__(self, path: Path, meta: dict[str, Any]):
        self.path, self.meta = path, meta
        self.items: list[tuple[dict[str, str], asyncio.Future[bool]]] = []
        self.started = False

    async def flush(self) -> None:
        self.started = True
        loop_batches = _BATCHES.get(asyncio.get_running_loop(), {})
        if loop_batches.get(self.path) is self:
            del loop_batches[self.path]
        entries = [entry for entry, _ in self.items]
        try:
            created = await asyncio.to_thread(upsert_entries, self.path, entries=entries,
                                              **self.meta)
        except BaseException as exc:
            for _, future in self.items:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), new in zip(self.items, created, strict=True):
            if not future.done():
                future.set_result(new)


_BATCHES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Path, _FeedBatch]] = (
    weakref.WeakKeyDictionary())


async def upsert_entry_batched(path: Path, *, entry: dict[str, str], **meta: Any) -> bool:
    """:func:`upsert_entry`, sharing one rewrite with the entries for the same file that
    arrive in the same moment (see :class:`_FeedBatch`)."""
    loop = asyncio.get_running_loop()
    batches = _BATCHES.setdefault(loop, {})
    batch = batches.get(path)
    if batch is None or batch.started:
        batch = batches[path] = _FeedBatch(path, meta)
        # Started on the loop's next turn: what is ready to run now joins first.
        loop.call_soon(lambda: _consume(loop.create_task(batch.flush())))
    future: asyncio.Future[bool] = loop.create_future()
    batch.items.append((entry, future))
    return await future


def _consume(task: asyncio.Task[None]) -> None:
    task.add_done_callback(lambda t: None if t.cancelled() else t.exception())


def _feed_xml(entries: list[dict[str, str]], *, feed_id: str, title: str, author: str,
              self_url: str, now: str, tombstones: list[dict[str, str]] | None = None
              ) -> bytes:
    tombstones = tombstones or []
    # Unqualified names under a literal xmlns: the Atom namespace becomes the default one.
    attributes = {"xmlns": ATOM_NS, "xml:lang": "de"}
    if tombstones:
        attributes["xmlns:at"] = TOMBSTONE_NS
    feed = ET.Element("feed", attributes)
    _sub(feed, "id", feed_id)
    _sub(feed, "title", title)
    _sub(feed, "updated", max([*(e["updated"] for e in entries),
                               *(t["when"] for t in tombstones)], default=now))
    _sub(_sub(feed, "author"), "name", author)
    _sub(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    _sub(feed, "generator", "Newsroom")
    for entry in entries:
        element = _sub(feed, "entry")
        _sub(element, "id", entry["id"])
        _sub(element, "title", entry["title"])
        _sub(element, "updated", entry["updated"])
        _sub(element, "published", entry["published"])
        if entry.get("link"):
            _sub(element, "link", rel="alternate", href=entry["link"])
        _sub(element, "content", entry["content"], type="text")
    for tombstone in tombstones:
        element = _sub(feed, "at:deleted-entry", ref=tombstone["ref"], when=tombstone["when"])
        if tombstone.get("comment"):
            _sub(element, "at:comment", tombstone["comment"], **{"xml:lang": "de"})
    ET.indent(feed)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True) + b"\n"


class WebsitePublisher(Publisher):
    channel_type: ClassVar[ChannelType] = ChannelType.WEBSITE
    idempotent_retries: ClassVar[bool] = True
    needs_credential: ClassVar[bool] = False

    def __init__(self, *args: Any, feed_path: Path | str | None = None,
                 feed_url: str | None = None, tag_authority: str | None = None,
                 max_entries: int = 100, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if feed_path is None:
            from newsroom.settings import get_settings

            feed_path = get_settings().data_dir / "feeds" / f"{self.account.name}.atom"
        self.feed_path = Path(feed_path)
        account_url = self.account.account_id or ""
        if feed_url is None:
            feed_url = (account_url if urlsplit(account_url).scheme in ("http", "https")
                        else self.feed_path.resolve().as_uri())
        self.feed_url = feed_url
        self.tag_authority = tag_authority or urlsplit(feed_url).hostname or "newsroom.invalid"
        self.max_entries = max_entries

    def entry_id(self, post: RenderedPost) -> str:
        return tag_uri(self.tag_authority, post.post_key)

    async def publish(self, post: RenderedPost, *, idempotency_key: str) -> PublishResult:
        self._check_post(post)
        entry = {
            "id": self.entry_id(post),
            "title": post.title or post.text.split("\n", 1)[0][:120],
            "content": post.text,
            "published": _timestamp(post.publish_at),
            "link": post.link or "",
        }
        created = await upsert_entry_batched(self.feed_path, entry=entry, **self._feed_meta())
        raw: dict[str, Any] = {"feed": str(self.feed_path), "entry_created": created}
        url = post.link or self.feed_url
        if self.base_url:
            headers = {"Idempotency-Key": idempotency_key}
            if self._credential is not None:
                headers["Authorization"] = f"Bearer {self._secret()}"
            response = await self._request("POST", self.base_url, headers=headers, json={
                "id": entry["id"], "post_key": post.post_key, "title": entry["title"],
                "text": post.text, "link": post.link, "language": post.language,
                "published": entry["published"], "hashtags": list(post.hashtags),
                "media": [m.as_dict() for m in post.media],
            }, creates_post=True)
            cms = response.json() if response.content else {}
            raw["cms"] = cms
            url = cms.get("url") or url
        return PublishResult(remote_id=entry["id"], url=url, raw=raw)

    def _feed_meta(self) -> dict[str, Any]:
        return dict(feed_id=tag_uri(self.tag_authority, f"newsroom/{self.account.name}"),
                    title=self.account.display_name, author=self.account.display_name,
                    self_url=self.feed_url, max_entries=self.max_entries)

    async def withdraw(self, remote_id: str, *, remote_url: str | None,
                       idempotency_key: str, original: Mapping[str, Any] | None = None
                       ) -> WithdrawResult:
        """Withdraw the entry ``remote_id`` (its tag: URI): at the CMS first (the page keeps
        its URL with a „Zurückgezogen“ notice and ``original["reason"]``), then in the
        feed (the entry gives way to a tombstone); see the module's docstring. ``gone``
        once both are done; ``already_gone`` when neither had anything left to do. A CMS
        that refuses leaves the feed as it was: the error says why."""
        if not remote_id:
            raise PermanentPublishError(
                f"{self.channel}: no entry id to withdraw (the publication has no remote "
                "id); withdraw the page by hand in the CMS", channel=self.channel)
        reason = str((original or {}).get("reason") or "")
        raw: dict[str, Any] = {"feed": str(self.feed_path)}
        cms_status = None
        url = remote_url
        if self.base_url:
            headers = {"Idempotency-Key": idempotency_key}
            if self._credential is not None:
                headers["Authorization"] = f"Bearer {self._secret()}"
            response = await self._request(
                "POST", f"{self.base_url}/withdraw", headers=headers, json={
                    "id": remote_id, "reason": reason, "notice": WITHDRAWN_NOTICE,
                    "withdrawn_at": _timestamp(datetime.now(UTC))},
                creates_post=False)
            cms = response.json() if response.content else {}
            cms_status = cms.get("status") if isinstance(cms, dict) else None
            if cms_status not in ("withdrawn", "already_withdrawn", "not_found"):
                raise PermanentPublishError(
                    f"{self.channel}: the CMS answered the withdrawal of {remote_id} with "
                    f"HTTP {response.status_code} but no status withdrawn, "
                    f"already_withdrawn or not_found ({response.text[:200]!r}); check that "
                    f"it implements POST {self.base_url}/withdraw (docs/CHANNELS.md), and "
                    "withdraw the page by hand meanwhile", channel=self.channel)
            raw["cms"] = cms
            url = cms.get("url") or url
        removed = await asyncio.to_thread(withdraw_entry, self.feed_path, entry_id=remote_id,
                                          reason=reason, **self._feed_meta())
        raw["entry_removed"] = removed
        already = not removed and cms_status in (None, "already_withdrawn", "not_found")
        where = []
        if cms_status == "withdrawn":
            where.append(f"withdrawn at the CMS (the page{f' {url}' if url else ''} keeps a "
                         f"„{WITHDRAWN_NOTICE}“ notice)")
        elif cms_status is not None:
            where.append("the CMS had withdrawn it already" if cms_status == "already_withdrawn"
                         else "the CMS does not know the entry")
        where.append("dropped from the feed" if removed else "not in the feed any more")
        return WithdrawResult(gone=True, already_gone=already, raw=raw,
                              detail=f"{remote_id}: {'; '.join(where)}")

    async def _check(self) -> AccountCheck:
        directory = self.feed_path.parent
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        writable = os.access(directory, os.W_OK)
        return AccountCheck(channel=self.channel, ok=writable, identity=self.feed_url,
                            message="" if writable else f"cannot write to {directory}")
