"""How the registry names people and channels to people: a person's salutation (checked,
with a default) and a channel's label (network and account, never an internal id)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from newsroom.catalog.models import ChannelAccount, Person
from newsroom.catalog.validation import load_catalog

ROOT = Path(__file__).resolve().parents[2]
AKDENIZ = dict(id="akdeniz", name="Barbara Akdeniz", title="Bürgermeisterin",
               email="buergermeisterin@example.org")


@pytest.mark.parametrize("salutation, line", [
    ("Sehr geehrte Frau Bürgermeisterin Akdeniz", "Sehr geehrte Frau Bürgermeisterin Akdeniz,"),
    ("  Sehr geehrte Frau Bürgermeisterin Akdeniz,  ", "Sehr geehrte Frau Bürgermeisterin "
                                                      "Akdeniz,"),  # the comma is the mail's
    (None, "Guten Tag Barbara Akdeniz,"),
])
def test_the_salutation_line(salutation, line) -> None:
    assert Person(**AKDENIZ, salutation=salutation).salutation_line == line


@pytest.mark.parametrize("salutation", ["", " , ", "Sehr geehrte\nFrau Akdeniz",
                                        "Sehr geehrte <b>Frau</b>", "x" * 121])
def test_a_salutation_is_one_short_line_of_text(salutation) -> None:
    with pytest.raises(ValidationError, match="salutation"):
        Person(**AKDENIZ, salutation=salutation)


def test_a_broken_salutation_in_the_registry_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "campaigns"
    shutil.copytree(ROOT / "campaigns", root)
    people = root / "registry" / "people.yaml"
    people.write_text(people.read_text(encoding="utf-8").replace(
        "salutation: Sehr geehrte Frau Bürgermeisterin Akdeniz",
        "salutation: \"Sehr geehrte Frau\\nBürgermeisterin Akdeniz\""), encoding="utf-8")
    report = load_catalog(root)
    assert not report.ok
    assert any("salutation" in issue.format() and "one line" in issue.format()
               for issue in report.errors), [issue.format() for issue in report.errors]


def test_every_shipped_person_of_the_magistrat_is_greeted_by_title_and_surname() -> None:
    catalog = load_catalog(ROOT / "campaigns").catalog
    for person in catalog.directory.people:
        surname = person.name.split()[-1]
        if person.magistrat:
            assert person.salutation_line.startswith(("Sehr geehrte Frau ",
                                                      "Sehr geehrter Herr "))
            assert person.salutation_line.endswith(f"{person.title} {surname},") or (
                person.salutation_line.endswith(f"Dr. {surname},")), person.salutation_line


def test_the_shipped_channels_as_people_know_them() -> None:
    catalog = load_catalog(ROOT / "campaigns").catalog
    assert {name: account.label for name, account in catalog.accounts.items()} == {
        "mastodon": "Mastodon (@darmstadt@social.example.org)",
        "bluesky": "Bluesky (@darmstadt.standin.test)",
        "instagram": "Instagram (@wissenschaftsstadt_darmstadt)",
        "facebook": "Facebook (Wissenschaftsstadt Darmstadt)",
        "linkedin": "Wissenschaftsstadt Darmstadt (LinkedIn)",
        "threads": "@wissenschaftsstadt_darmstadt (Threads)",
        "telegram": "Darmstadt informiert (Telegram)",
        "website": "Website (Newsroom auf darmstadt.de)",
        "presse": "E-Mail (Presseverteiler)",
        "whatsapp": "WhatsApp-Kanal der Wissenschaftsstadt Darmstadt",
    }


def test_a_network_not_known_by_name_is_shown_as_written() -> None:
    account = ChannelAccount(name="mastodon-2", type="manual", network="pixelfed",
                             owner="amt-kommunikation", display_name="@darmstadt")
    assert account.label == "Pixelfed (@darmstadt)"
