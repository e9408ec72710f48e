"""What a requester types becomes data of the campaign file, never template code or YAML.

The security test found links 2–5 of a request appended raw to the campaign's Jinja
template: ``{{ contact }}`` or ``{% if %}`` in a link ran as template code. Here a request
full of hostile text (links, text, title, topic, hashtags, notes, alt text, contact) is
submitted, accepted by the office (the campaign file is written and validated as in
production), and the campaign is rendered: every channel's post is exactly the text typed
plus the links and hashtags, nothing evaluated; the YAML reads back as the same values.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from requests_testkit import copy_catalog, form, png

from newsroom import requests as domain
from newsroom.catalog.validation import load_catalog
from newsroom.rendering.render import render_occurrence
from newsroom.requests import ImageUpload
from newsroom.store import make_engine, upgrade_database
from newsroom.timeutil import BERLIN

# Links pass the form's check (https://, a host with a dot, no blanks) and still carry
# Jinja: breaking out of a raw block, printing a variable, a block tag, a comment, YAML.
HOSTILE_LINKS = (
    "https://x.example/{%endraw%}{{7*7}}",
    "https://x.example/{{contact}}",
    "https://x.example/{%if(true)%}IF{%endif%}",
    "https://x.example/{#Kommentar#}:#KeinKommentar",
    "https://x.example/%7B%7Bcontact%7D%7D?a=b&c={{title}}",
)
HOSTILE_TEXT = ("Preis {{ 7*7 }} Euro, {% raw %}{{ contact }}{% endraw %} {%- if true %}"
                "JA{% endif %} {# weg #}\nZweite Zeile: # kein Kommentar\n- key: value")


@pytest.fixture
def setup(tmp_path: Path):
    catalog_root = copy_catalog(tmp_path / "campaigns")
    report = load_catalog(catalog_root)
    assert report.catalog is not None
    url = f"sqlite:///{tmp_path / 'newsroom.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    yield engine, report.catalog, tmp_path / "var"
    engine.dispose()


def test_hostile_links_and_text_are_printed_not_run(setup) -> None:
    engine, catalog, data_dir = setup
    title = 'Stadtlauf: {{ contact }} # "Start" \'27'
    draft = domain.check_request(form(
        title=title, topic="Sport: {% if %}", channels=("mastodon",),
        text=HOSTILE_TEXT, links="\n".join(HOSTILE_LINKS), hashtags="Stadtlauf",
        notes="{{ contact }}: # notiz", contact_name="Kim {{ title }} Weber",
        images=(ImageUpload(1, "lauf.png", png(), "Alt: {{ contact }} {% endraw %} #x"),),
    ), catalog)
    requester = domain.requester_for(catalog, "portfolio", "sport")
    request_id = domain.submit_request(engine, data_dir, requester, draft, invite_nonce="n")
    accepted = domain.accept_request(engine, catalog, data_dir, request_id, by="admin:wolf")

    # The file validates in the catalog (accept_request checked it alone; now all of it).
    report = load_catalog(catalog.root)
    assert report.catalog is not None and not report.errors, [i.format() for i in report.errors]
    # Read back, the YAML holds exactly what was typed.
    document = yaml.safe_load(accepted.path.read_text(encoding="utf-8"))
    assert document["title"] == title and document["topic"] == "Sport: {% if %}"
    assert document["content"]["link"] == HOSTILE_LINKS[0]
    assert document["content"]["variables"][domain.EXTRA_LINKS] == list(HOSTILE_LINKS[1:])
    assert document["content"]["images"][0]["alt"] == "Alt: {{ contact }} {% endraw %} #x"
    assert not any(link in document["content"]["text"] for link in HOSTILE_LINKS)

    day = accepted.publish_at.astimezone(BERLIN).date()
    [post] = render_occurrence(report.catalog, accepted.campaign_id, day)
    stored = domain.load_request(engine, request_id)[0].text  # as the form cleaned it
    assert "{{ 7*7 }}" in stored and "{% raw %}" in stored
    expected = "\n".join([stored, *HOSTILE_LINKS[1:], HOSTILE_LINKS[0], "#Stadtlauf"])
    assert post.text == expected
    assert "49" not in post.text and "kim@example.org" not in post.text
    assert post.media[0].alt == "Alt: {{ contact }} {% endraw %} #x"
    assert post.title == title


def test_a_request_without_extra_links_needs_no_variable(setup) -> None:
    engine, catalog, data_dir = setup
    draft = domain.check_request(form(channels=("mastodon",), links=HOSTILE_LINKS[1]), catalog)
    request_id = domain.submit_request(engine, data_dir,
                                       domain.requester_for(catalog, "portfolio", "sport"),
                                       draft, invite_nonce="n")
    accepted = domain.accept_request(engine, catalog, data_dir, request_id, by="admin:wolf")
    document = yaml.safe_load(accepted.path.read_text(encoding="utf-8"))
    assert "variables" not in document["content"]
    report = load_catalog(catalog.root)
    [post] = render_occurrence(report.catalog, accepted.campaign_id,
                               accepted.publish_at.astimezone(BERLIN).date())
    assert post.text.splitlines()[-2] == HOSTILE_LINKS[1]
