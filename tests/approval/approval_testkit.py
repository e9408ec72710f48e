"""Helpers shared by the approval tests: a test catalog with extra campaigns and people."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from newsroom import store
from newsroom.catalog.catalog import Catalog
from newsroom.catalog.validation import load_catalog
from newsroom.rendering.render import render_occurrence
from newsroom.sync import sync_catalog
from newsroom.timeutil import BERLIN

DEPUTY_DAY = date(2027, 4, 14)  # okafor is away; bergmann stands in
DAY = date(2027, 3, 10)  # the test campaigns publish at 10:00 that day (09:00 UTC)
DEADLINE = datetime(2027, 3, 8, 9, 0, tzinfo=UTC)  # deadline_before: 48h
BEFORE = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
AFTER = datetime(2027, 3, 8, 9, 30, tzinfo=UTC)

EXTRA_PEOPLE = """
  - id: neumann
    name: Paula Neumann
    title: Stadträtin
    email: neumann@example.org
    deputy: benz
"""

CAMPAIGN = """\
id: {id}
title: "Testaufruf {id}"
topic: Test
kind: awareness_day
requested_by: {{office: amt-kommunikation}}
signatories_in_text: true
approval:
  approvers: {approvers}
  mode: {mode}
{quorum}  deadline_before: 48h
  on_timeout: {on_timeout}
{escalate_to}slots:
  - at: "{at}"
    channels: [mastodon, bluesky]
content:
  text: |
    Gemeinsamer Aufruf: {{{{ title }}}}.
    Es rufen auf: {{{{ signatories_text }}}}.
  images:
    - file: europawahl.jpg
      alt: "Blaue Grafik mit dem Text Europawahl"
"""

MAGISTRAT = "[{group: magistrat}]"
THREE = "[{person: benz}, {person: akdeniz}, {person: feldmann}]"
CAMPAIGNS = {
    "t-one": (THREE, "one", None, "cancel"),
    "t-all": (THREE, "all", None, "cancel"),
    "t-all-escalate": (THREE, "all", None, "escalate"),
    "t-quorum": (THREE, "quorum", 2, "cancel"),
    "t-quorum-collect": (THREE, "quorum", 2, "publish_if_quorum"),
    "t-magistrat": (MAGISTRAT, "quorum", 5, "publish_if_quorum"),
    "t-deputy": ("[{person: okafor}]", "one", None, "escalate"),
}


# An approval chain of three steps (the Fachamt, three Dezernenten of whom two must
# approve and whose approvals sign, the office's final look), each with its deadline:
# 96 h, 72 h and (the chain's) 48 h before the slot. ``timeout``: the second step's rule.
CHAIN = """\
id: {id}
title: "Kette {id}"
topic: Test
kind: awareness_day
requested_by: {{office: sportamt}}
signatories_in_text: true
approval:
  deadline_before: 48h
  on_timeout: cancel
  steps:
    - name: Fachamt
      approvers: [{{person: sportamt-leitung}}]
      deadline_before: 96h
    - name: Dezernate
      approvers: [{{person: benz}}, {{person: akdeniz}}, {{person: okafor}}]
      mode: quorum
      quorum: 2
      deadline_before: 72h
      on_timeout: {timeout}
{escalate}      signs: true
    - name: Schlussredaktion
      approvers: [{{person: hoffmann}}, {{person: demir}}]
slots:
  - at: "{at}"
    channels: [mastodon, bluesky]
content:
  text: |
    Gemeinsamer Aufruf: {{{{ title }}}}.
    Es rufen auf: {{{{ signatories_text }}}}.
"""
CHAINS = {
    "t-chain": ("cancel", "2027-03-10 10:00"),
    "t-chain-escalate": ("escalate", "2027-03-10 10:00"),
    "t-chain-collect": ("publish_if_quorum", "2027-03-10 10:00"),
    "t-chain-deputy": ("cancel", "2027-04-14 10:00"),
}
# The chain's deadlines for DAY: step 1, step 2, step 3 (UTC).
STEP_DEADLINES = (datetime(2027, 3, 6, 9, 0, tzinfo=UTC), datetime(2027, 3, 7, 9, 0, tzinfo=UTC),
                  DEADLINE)


def write_chain(root: Path, campaign_id: str, timeout: str = "cancel",
                at: str = "2027-03-10 10:00") -> None:
    (root / f"{campaign_id}.yaml").write_text(CHAIN.format(
        id=campaign_id, timeout=timeout, at=at,
        escalate="      escalate_to: [wolf]\n" if timeout == "escalate" else ""),
        encoding="utf-8")


def build_catalog(root: Path) -> Path:
    """The seed catalog plus an 8th Magistrat member, an absence and the test campaigns."""
    source = Path(__file__).resolve().parents[2] / "campaigns"
    shutil.copytree(source, root)
    people = root / "registry" / "people.yaml"
    text = people.read_text(encoding="utf-8")
    text = text.replace("\noffices:", EXTRA_PEOPLE + "\noffices:")
    text = text.replace(
        "    portfolios: [umwelt-klima]\n    deputy: bergmann\n",
        "    portfolios: [umwelt-klima]\n    deputy: bergmann\n"
        "    absences:\n      - {from: 2027-04-13, to: 2027-04-15, note: Urlaub}\n")
    people.write_text(text, encoding="utf-8")
    for cid, (approvers, mode, quorum, on_timeout) in CAMPAIGNS.items():
        (root / f"{cid}.yaml").write_text(CAMPAIGN.format(
            id=cid, approvers=approvers,
            at="2027-04-14 10:00" if cid == "t-deputy" else "2027-03-10 10:00",
            mode=mode, on_timeout=on_timeout,
            escalate_to="  escalate_to: [benz]\n" if on_timeout == "escalate" else "",
            quorum=f"  quorum: {quorum}\n" if quorum else ""), encoding="utf-8")
    for cid, (timeout, at) in CHAINS.items():
        write_chain(root, cid, timeout, at)
    return root


def load(root: Path) -> Catalog:
    report = load_catalog(root)
    assert report.catalog is not None and report.ok, [i.format() for i in report.errors]
    return report.catalog


def store_posts(engine: Engine, catalog: Catalog, campaign_id: str, day: date = DAY) -> int:
    """Render (all asked as signatories) and store the occurrence; its id."""
    posts = render_occurrence(catalog, campaign_id, day)
    with store.session_scope(engine) as session:
        sync_catalog(session, catalog)
        occurrence = store.get_or_create_occurrence(
            session, campaign_id=campaign_id, occurrence_date=day,
            first_publish_at=min(p.publish_at for p in posts))
        store.store_rendered_posts(session, occurrence_id=occurrence.id, posts=posts)
    return occurrence.id


def requests_by_person(engine: Engine, occurrence_id: int) -> dict[str, store.ApprovalRequest]:
    with store.session_scope(engine) as session:
        rows = store.approval_requests(session, occurrence_id=occurrence_id)
    return {r.person_id: r for r in rows if r.status != "void"}


def snapshot(engine: Engine, occurrence_id: int) -> tuple:
    """Every row the approval page must not change (audit excluded)."""
    with store.session_scope(engine) as session:
        occurrence = session.get(store.Occurrence, occurrence_id)
        requests = store.approval_requests(session, occurrence_id=occurrence_id)
        decisions = [store.get_decision(session, request_id=r.id) for r in requests]
        posts = store.post_history(session, occurrence_id=occurrence_id)
        return (occurrence.model_dump(), [r.model_dump() for r in requests],
                [d.model_dump() if d else None for d in decisions],
                [p.model_dump() for p in posts])


def actions(engine: Engine, campaign_id: str) -> list[str]:
    with store.session_scope(engine) as session:
        return [e.action for e in store.audit_trail(session, campaign_id=campaign_id)]


class Outbox:
    """A Notifier that keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def notify(self, tag, subject, body_text, body_html=None, *, attachments=()) -> bool:
        self.sent.append({"tag": tag, "subject": subject, "text": body_text, "html": body_html})
        return True

    def to(self, tag: str) -> list[dict]:
        return [m for m in self.sent if m["tag"] == tag]


def write_campaign(root: Path, campaign_id: str, *, approvers: str = THREE, mode: str = "quorum",
                   quorum: int | None = 2, on_timeout: str = "publish_if_quorum",
                   at: datetime) -> None:
    """A test campaign like CAMPAIGNS' at ``at`` (to the second), e.g. one whose deadline
    (48 h before) has passed already."""
    local = at.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M:%S")
    (root / f"{campaign_id}.yaml").write_text(CAMPAIGN.format(
        id=campaign_id, approvers=approvers, at=local, mode=mode, on_timeout=on_timeout,
        escalate_to="  escalate_to: [benz]\n" if on_timeout == "escalate" else "",
        quorum=f"  quorum: {quorum}\n" if quorum else ""), encoding="utf-8")


def point_at_standins(root: Path, standins_url: str) -> None:
    """Every channel's base_url in the catalog at ``root`` pointed at the stand-ins."""
    registry = root / "registry" / "channels.yaml"
    registry.write_text(registry.read_text(encoding="utf-8").replace(
        "http://127.0.0.1:8900", standins_url), encoding="utf-8")




# A campaign on four networks whose registry display names differ (a handle, a name that
# already names its network, the press list), asking people with and without a salutation
# in the registry; its text holds a long address, which must wrap in a narrow window.
LABELS_CAMPAIGN = "t-labels"
LABELS_APPROVERS = "[{person: benz}, {person: akdeniz}, {person: neumann}]"
LONG_ADDRESS = ("https://www.darmstadt.de/leben-in-darmstadt/sicherheit-und-ordnung/"
                "bevoelkerungsschutz/warnungen-und-informationen-fuer-die-buergerschaft")


def add_labels_campaign(root: Path) -> None:
    text = CAMPAIGN.format(id=LABELS_CAMPAIGN, approvers=LABELS_APPROVERS,
                           at="2027-03-10 10:00", mode="one", on_timeout="cancel",
                           escalate_to="", quorum="")
    text = text.replace("channels: [mastodon, bluesky]",
                        "channels: [mastodon, telegram, linkedin, presse]")
    text = text.replace("Es rufen auf:", f"Mehr: {LONG_ADDRESS}\n    Es rufen auf:")
    (root / f"{LABELS_CAMPAIGN}.yaml").write_text(text, encoding="utf-8")
