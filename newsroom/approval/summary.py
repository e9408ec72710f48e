"""The gate as Markdown for the Prefect UI: the rule, who signed and who not, every
decision and every post. Every value from the catalog, the posts or a decision is escaped
(:mod:`newsroom.markdown`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.engine import Engine

from newsroom import store
from newsroom.approval_messages import local_when
from newsroom.catalog.catalog import Catalog
from newsroom.markdown import md_quote, md_text
from newsroom.posts import RenderedPost
from newsroom.store import Decision

from .chain import chain_view
from .errors import ApprovalError
from .gate import gate_posts, occurrence_of
from .policy import campaign_of, channel_label, display_name
from .status import GateStatus

_DECISION_WORDS = {
    Decision.APPROVE.value: "freigegeben / approved",
    Decision.REJECT.value: "abgelehnt / rejected",
    Decision.REQUEST_CHANGES.value: "Änderungen erbeten / changes requested",
}


def gate_summary_markdown(status: GateStatus, catalog: Catalog,
                          posts: Iterable[RenderedPost | Any]) -> str:
    """Markdown for the Prefect UI: the rule, who signed and who not, and every post.

    Every value from the catalog, the posts or a decision is escaped (:mod:`newsroom.markdown`):
    a post text or a campaign title never forms a link, an image or HTML in the UI.
    """
    rendered = [p.to_rendered() if hasattr(p, "to_rendered") else p for p in posts]
    try:
        title = campaign_of(catalog, status.campaign_id).title
    except ApprovalError:
        title = status.campaign_id

    def names(ids: Sequence[str]) -> str:
        return md_text(", ".join(display_name(catalog, p) for p in ids) or "–")

    lines = [
        f"# Freigabe / approval: {md_text(title)} ({status.occurrence_date.isoformat()})",
        "",
        f"- **Outcome:** {md_text(status.outcome.value)} – {md_text(status.reason)}",
        f"- **Rule:** mode {md_text(status.mode)}, {status.needed} approval(s) needed "
        f"of {len(status.asked)} asked",
        f"- **Freigaben / approvals:** {len(status.approved)} von / of {status.needed} "
        f"nötigen / needed ({len(status.asked)} angefragt / asked)",
        f"- **Deadline:** {md_text(local_when(status.deadline))} "
        f"({md_text(status.deadline.isoformat())})",
        f"- **Approved / freigegeben:** {names(status.approved)}",
        f"- **Rejected / abgelehnt:** {names(status.rejected)}",
        f"- **Changes requested / Änderungen erbeten:** {names(status.changes_requested)}",
        f"- **Pending / ausstehend:** {names(status.pending)}",
        f"- **Not signed / nicht unterzeichnet:** "
        f"{names([p for p in status.asked if p not in status.approved])}",
    ]
    if status.decided_by_admin:
        lines.append(f"- **Admin decision by:** "
                     f"{md_text(display_name(catalog, status.decided_by_admin))}")
    chain = chain_view(catalog, status)
    steps: list[str] = []
    if chain:
        current = status.steps[status.step]
        lines.insert(3, f"- **Stufe / step:** {status.step + 1} von / of {len(chain)} – "
                        f"{md_text(current.name)} (the lines below are this step's; an "
                        "admin decision decides this step)")
        steps += ["## Stufen / approval chain", "",
                  "| Stufe / step | Wer / who | Stand / state | Frist / deadline |",
                  "|---|---|---|---|"]
        for step in chain:
            who = "; ".join(
                p.name + (f": {p.decision} ({p.when})" if p.decision else "")
                for p in step.people) or "–"
            steps.append(f"| {md_text(step.label)}: {md_text(step.name)} | {md_text(who)} | "
                         f"{md_text(step.state_german)} | {md_text(step.deadline)} |")
        steps.append("")
    lines += [f"- **Bundle:** {md_text(status.bundle_hash[:16])}", "", *steps,
              "## Entscheidungen / decisions", ""]
    if status.decisions:
        lines += ["| Zeit / time | Wer / who | Entscheidung / decision | Kommentar / comment "
                  "| über / via |" + (" Stufe / step |" if chain else ""),
                  "|---|---|---|---|---|" + ("---|" if chain else "")]
        for decision in status.decisions:
            who = display_name(catalog, decision.person_id) + (
                " (Admin)" if decision.by_admin else "")
            lines.append(
                f"| {md_text(local_when(decision.decided_at))} | {md_text(who)} | "
                f"{md_text(_DECISION_WORDS.get(decision.decision, decision.decision))} | "
                f"{md_text(decision.comment, limit=500) or '–'} | {md_text(decision.via)} |"
                + (f" {decision.step + 1} |" if chain else ""))
    else:
        lines.append("Noch keine / none yet.")
    lines += ["", "## Posts"]
    for post in sorted(rendered, key=lambda p: (p.publish_at, p.channel)):
        name = channel_label(catalog, post.channel)
        lines += ["", f"### {md_text(name)} ({md_text(post.channel)}) – "
                      f"{md_text(local_when(post.publish_at))}", ""]
        lines += md_quote(post.text)
        for item in post.media:
            lines.append(f"\n*Bild:* {md_text(item.alt)}")
    return "\n".join(lines) + "\n"


def gate_summary_of(engine: Engine, catalog: Catalog, status: GateStatus) -> str:
    """:func:`gate_summary_markdown` with the posts the gate asks about, read from the store
    (for a writer outside the run, e.g. the approval page after a signature)."""
    with store.session_scope(engine) as session:
        posts = gate_posts(session, occurrence_of(session, status.occurrence_id))
    return gate_summary_markdown(status, catalog, posts)
