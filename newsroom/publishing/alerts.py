"""Alerts: what the communications office is told when a publication needs a person.

:func:`alert_message` makes the subject and text (German) of an alert about one
publication; :func:`failed_alert_words` and :func:`unknown_alert_words` say what happened
and what to do about a publication failed for good or left "unknown". The state machine
(:mod:`newsroom.publishing.state_machine`) sends them as it records the outcome, the sweep
(:mod:`newsroom.publishing.sweeps`) those a killed worker never sent; each alert sent is
audited as :data:`ALERTED`.
"""

from __future__ import annotations

from newsroom.catalog.models import ChannelAccount
from newsroom.errors import PublishError, RecipientsRefused
from newsroom.posts import RenderedPost
from newsroom.rendering.templates import german_date
from newsroom.store import Publication
from newsroom.timeutil import BERLIN, format_local_german

__all__ = ["ALERTED", "alert_message", "failed_alert_words", "unknown_alert_words"]

ALERTED = "publication.alerted"  # audit action: the office got the alert about it


def alert_message(rendered: RenderedPost, account_name: str, channel: str,
                  publication: Publication, headline: str, what: str, error: str,
                  todo: str) -> tuple[str, str]:
    """Subject and text of an alert to the communications office (German)."""
    when = rendered.publish_at.astimezone(BERLIN)
    subject = f"Newsroom: {headline} – {rendered.title or rendered.campaign_id} ({channel})"
    text = (
        f"{what}\n\n"
        f"Kampagne:      {rendered.title or rendered.campaign_id} ({rendered.campaign_id})\n"
        f"Termin:        {german_date(rendered.occurrence)}\n"
        f"Kanal:         {account_name} ({channel})\n"
        f"Geplant für:   {format_local_german(when, weekday=False)}\n"
        f"Publikation:   {publication.id} (Status: {publication.status}, "
        f"Versuche: {publication.attempts})\n\n"
        f"Meldung:\n{error}\n\n"
        f"Was zu tun ist:\n{todo}\n"
    )
    return subject, text


def failed_alert_words(account: ChannelAccount, publication_id: int | None,
                       exc: PublishError) -> tuple[str, str, str]:
    """Headline, what happened and what to do, for a publication failed for good."""
    retry = (f"erneut veröffentlichen: `newsroom channels retry {publication_id}` oder im "
             f"Prefect-UI das Deployment „retry-publication“ mit der Nummer {publication_id}.")
    if isinstance(exc, RecipientsRefused):
        refused = "\n".join(f"  {address} – {reply}" for address, reply in exc.refused.items())
        plural = len(exc.refused) > 1
        return (
            f"Presseverteiler: {'Adressen' if plural else 'Adresse'} abgelehnt",
            f"Der Mailserver hat die Zustellung der Pressemitteilung an {len(exc.refused)} "
            f"{'Adressen' if plural else 'Adresse'} des Kontos „{account.display_name}“ "
            f"dauerhaft abgelehnt:\n{refused}\nAlle anderen Empfänger haben sie erhalten, "
            "jeder einmal.",
            f"Bitte {'die Adressen' if plural else 'die Adresse'} in der Empfängerliste des "
            f"Kontos „{account.name}“ (`recipients` in registry/channels.yaml) korrigieren "
            f"oder streichen und dann {retry} Die Pressemitteilung geht dann nur an "
            "Empfänger, die sie noch nicht erhalten haben.",
        )
    return (
        "Veröffentlichung fehlgeschlagen",
        f"{account.display_name} hat den Beitrag abgelehnt; er ist nicht erschienen.",
        "Bitte die Ursache beheben (bei abgelehnten Zugangsdaten: erneuern und mit "
        f"`newsroom channels check` prüfen) und dann {retry}",
    )


def unknown_alert_words(account_name: str, publication_id: int | None
                        ) -> tuple[str, str, str]:
    """Headline, what happened and what to do, for a publication left "unknown"."""
    return (
        "Veröffentlichung unklar – bitte prüfen",
        f"Ob der Beitrag auf {account_name} erschienen ist, ist nicht bekannt. Newsroom "
        "sendet ihn nicht noch einmal, damit er nicht doppelt erscheint.",
        "Bitte im Konto nachsehen und das Ergebnis festhalten: "
        f"`newsroom channels resolve {publication_id} --published --url <Adresse>` oder "
        f"`newsroom channels resolve {publication_id} --not-published` (dann wird er beim "
        "nächsten Lauf veröffentlicht).",
    )
