"""Earlier versions of an occurrence's posts: the latest bundle someone decided on before
the gate's current one, and a word-level diff to show what changed since. Reads only."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from sqlmodel import Session, col, select

from newsroom import store
from newsroom.posts import RenderedPost
from newsroom.store import ApprovalDecision, ApprovalRequest, Occurrence, stored_id


@dataclass(frozen=True)
class PreviousVersion:
    """The latest earlier bundle someone decided on, with its posts by channel."""

    bundle_hash: str
    decided_by: tuple[str, ...]
    posts: dict[str, RenderedPost]


def previous_version(session: Session, *, occurrence: Occurrence,
                     person_id: str | None = None) -> PreviousVersion | None:
    """The earlier version of the posts that was decided on (this person's first), if any."""
    gate = occurrence.gate_bundle_hash
    query = (
        select(ApprovalRequest, ApprovalDecision)
        .join(ApprovalDecision, col(ApprovalDecision.request_id) == col(ApprovalRequest.id))
        .where(ApprovalRequest.occurrence_id == occurrence.id,
               ApprovalRequest.bundle_hash != gate)
        .order_by(col(ApprovalDecision.decided_at).desc(), col(ApprovalDecision.id).desc())
    )
    rows = list(session.exec(query))
    if not rows:
        return None
    mine = [r for r in rows if r[0].person_id == person_id]
    bundle = (mine or rows)[0][0].bundle_hash
    deciders = tuple(dict.fromkeys(r[0].person_id for r in rows if r[0].bundle_hash == bundle))
    hashes: dict[str, str] = {}
    for event in store.audit_trail(session, campaign_id=occurrence.campaign_id):
        if (event.action == "approval.requested" and event.content_hash == bundle
                and event.occurrence_date == occurrence.occurrence_date):
            hashes = dict(event.detail.get("posts") or {})
            break
    posts: dict[str, RenderedPost] = {}
    for row in store.post_history(session, occurrence_id=stored_id(occurrence)):
        if hashes.get(row.channel) == row.content_hash:
            posts[row.channel] = row.to_rendered()
    return PreviousVersion(bundle, deciders, posts)


# Words and the white space between them; a line break is a token of its own, so a diff
# never joins two lines and an inserted line break shows where it goes.
_WORD_TOKENS = re.compile(r"\n|[^\S\n]+|\S+")


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """Word-level diff of two post texts as (kind, text) runs, kind "same", "removed" or
    "added"; joined, the "same" and "removed" runs give ``old``, the "same" and "added"
    runs ``new`` (white space and line breaks included).

    One changed word is that word removed and its replacement added. A stretch of white
    space left between two changes is folded into them, so "a b" → "x y" reads as one
    change, not as two separated by a kept space.
    """
    a, b = _WORD_TOKENS.findall(old), _WORD_TOKENS.findall(new)
    # [kind, old text, new text], kind "same" or "change"; adjacent changes merge below.
    chunks = [["same" if tag == "equal" else "change", "".join(a[i1:i2]), "".join(b[j1:j2])]
              for tag, i1, i2, j1, j2
              in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()]
    folded: list[list[str]] = []
    for index, chunk in enumerate(chunks):
        between = (chunk[0] == "same" and not chunk[1].strip() and folded
                   and folded[-1][0] == "change" and index + 1 < len(chunks))
        if between:
            folded[-1][1] += chunk[1]
            folded[-1][2] += chunk[2]
        elif chunk[0] == "change" and folded and folded[-1][0] == "change":
            folded[-1][1] += chunk[1]
            folded[-1][2] += chunk[2]
        else:
            folded.append(list(chunk))
    out: list[tuple[str, str]] = []
    for kind, old_part, new_part in folded:
        if kind == "same":
            out.append(("same", old_part))
            continue
        if old_part:
            out.append(("removed", old_part))
        if new_part:
            out.append(("added", new_part))
    return out
