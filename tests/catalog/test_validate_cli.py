"""`newsroom validate` on a copy of the seed catalog with one mistake in it.

Each test breaks one thing and checks what a member of the communications office sees:
exit code 1, the file, the exact line, the message and what to do; never a traceback.
Most tests run the command in-process (fast); the ones marked `run` start the real CLI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import CatalogCopy, campaign_yaml, filler

TRIKOT = "trikottag.yaml"
TRIKOT_FILE = "campaigns/trikottag.yaml"
TRIKOT_TEXT = (
    "  text: |\n"
    "    Heute ist Trikottag! ⚽🏀🏐 Zieht das Trikot eures Vereins an – in der Schule, im Büro, "
    "im Hörsaal.\n"
    "    „Unsere über 200 Sportvereine machen Darmstadt lebendig. Zeigt heute, wofür euer Herz "
    "schlägt!“ – {{ signatories_text }}, Sportdezernent\n"
    "    {{ link }}\n"
    "    {{ hashtags }}\n"
)


def replace_trikot_text(catalog: CatalogCopy, *lines: str) -> int:
    """Give the Trikottag campaign a new shared inline text; return the `text:` key's line."""
    body = "".join(f"    {line}\n" for line in lines)
    catalog.edit(TRIKOT, TRIKOT_TEXT, "  text: |\n" + body)
    return catalog.line(TRIKOT, "^  text: |")


# --- the whole catalog, paths ---------------------------------------------------------


def test_seed_catalog_is_valid(catalog: CatalogCopy) -> None:
    result = catalog.run("campaigns/")
    result.expect_ok()
    assert "OK: 10 files checked, 8 campaigns valid" in result.stdout
    assert result.stderr == ""


def test_without_arguments_the_configured_catalog_is_checked(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, "title:", "titel:")
    result = catalog.run()
    result.expect_error(TRIKOT_FILE, catalog.line(TRIKOT, "titel:"), "unknown field `titel`")


def test_single_file_is_checked_alone(catalog: CatalogCopy) -> None:
    catalog.edit("schadstoffmobil.yaml", "title:", "titel:")  # a mistake elsewhere
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_ok()
    assert "OK: 3 files checked" in result.stdout  # people, channels, the campaign
    assert "schadstoffmobil" not in result.output


def test_single_broken_file_reports_its_own_error(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, "title:", "titel:")
    catalog.edit("schadstoffmobil.yaml", "title:", "titel:")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(TRIKOT_FILE, 4, "unknown field `titel`")
    assert {i.file for i in result.errors} == {TRIKOT_FILE}


def test_subfolder_of_the_catalog(catalog: CatalogCopy) -> None:
    text = catalog.read(TRIKOT).replace("title:", "titel:")
    name = catalog.write("sport/trikottag.yaml", text)
    catalog.path(TRIKOT).unlink()
    result = catalog.invoke("campaigns/sport")
    result.expect_error(name, 4, "unknown field `titel`")


def test_nonexistent_path(catalog: CatalogCopy) -> None:
    result = catalog.run("campaigns/gibtsnicht.yaml")
    assert result.code == 1, result.output
    assert "Traceback" not in result.output
    assert "campaigns/gibtsnicht.yaml: error: no such file or folder" in result.stderr
    assert "what to do: check the path" in result.stderr


def test_file_outside_any_catalog(catalog: CatalogCopy, tmp_path: Path) -> None:
    outside = tmp_path / "entwurf" / "trikottag.yaml"
    outside.parent.mkdir()
    outside.write_text(catalog.read(TRIKOT), encoding="utf-8")
    result = catalog.run("entwurf/trikottag.yaml", NEWSROOM_CATALOG_DIR=str(tmp_path / "nirgends"))
    assert result.code == 1, result.output
    assert "Traceback" not in result.output
    assert "entwurf/trikottag.yaml: error: cannot find the catalog" in result.stderr
    assert "registry/people.yaml" in result.stderr
    assert "NEWSROOM_CATALOG_DIR" in result.stderr


def test_file_outside_the_catalog_checked_against_the_configured_one(
    catalog: CatalogCopy, tmp_path: Path
) -> None:
    outside = tmp_path / "entwurf" / "trikottag.yaml"
    outside.parent.mkdir()
    outside.write_text(catalog.read(TRIKOT).replace("title:", "titel:"), encoding="utf-8")
    result = catalog.run("entwurf/trikottag.yaml")  # NEWSROOM_CATALOG_DIR is the copy
    result.expect_error("entwurf/trikottag.yaml", 4, "unknown field `titel`")


# --- YAML -----------------------------------------------------------------------------


def test_yaml_unquoted_colon(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, "  text: |\n    Heute", "  text: Achtung: Sturm\n  textx: |\n    Heute")
    result = catalog.run(TRIKOT_FILE)
    result.expect_error(
        TRIKOT_FILE,
        catalog.line(TRIKOT, "Achtung: Sturm"),
        "YAML syntax error: mapping values are not allowed here",
        hint='text: "Achtung: Sturm"',
    )
    assert len(result.errors) == 1


def test_yaml_tab_indent(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, "  mode: one", "\tmode: one")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(
        TRIKOT_FILE, catalog.line(TRIKOT, "\tmode"), "YAML syntax error", hint="spaces, not tabs"
    )


def test_yaml_unclosed_quote(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, 'at: "2027-06-04 07:30"', 'at: "2027-06-04 07:30')
    result = catalog.invoke(TRIKOT_FILE)
    # The quoted value runs on to the next quote (line 28): PyYAML notices there.
    assert catalog.line(TRIKOT, 'alt: "') == 28
    result.expect_error(TRIKOT_FILE, 28, "YAML syntax error", hint="quotes are closed")


def test_yaml_duplicate_key(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, "topic: Sport\n", "topic: Sport\ntopic: Vereine\n")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(
        TRIKOT_FILE, catalog.line(TRIKOT, "topic: Vereine"), "`topic` is given twice",
        hint="keep one",
    )


def test_yaml_nested_duplicate_key(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, "  mode: one\n", "  mode: one\n  mode: all\n")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(TRIKOT_FILE, catalog.line(TRIKOT, "mode: all"),
                        "`approval.mode` is given twice")


def test_yaml_document_is_a_list(catalog: CatalogCopy) -> None:
    name = catalog.write("liste.yaml", "- id: liste\n- title: Liste\n")
    result = catalog.invoke(name)
    result.expect_error(name, 1, "the file must be a mapping of fields")


def test_yaml_file_not_utf8(catalog: CatalogCopy) -> None:
    catalog.path("latin.yaml").write_bytes("id: latin\ntitle: Gr\xfc\xdfe\n".encode("latin-1"))
    result = catalog.invoke("campaigns/latin.yaml")
    result.expect_error("campaigns/latin.yaml", 1, "not UTF-8", hint="UTF-8")


# --- shape of a campaign ---------------------------------------------------------------


def test_unknown_field_suggests_the_right_one(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, "title:", "titel:")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(
        TRIKOT_FILE, catalog.line(TRIKOT, "titel:"), "titel: unknown field `titel`",
        hint="did you mean `title`?",
    )


def test_unknown_nested_field_suggests_the_right_one(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, "  on_timeout: cancel", "  on_timout: cancel")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(
        TRIKOT_FILE, catalog.line(TRIKOT, "on_timout"), "approval.on_timout: unknown field",
        hint="did you mean `on_timeout`?",
    )


def test_missing_required_field(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, "kind: sports_day\n", "")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(TRIKOT_FILE, 1, "required field `kind` is missing", hint="add `kind:`")
    assert len(result.errors) == 1


def test_invalid_enum_value_suggests(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, "kind: sports_day", "kind: sport_day")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(
        TRIKOT_FILE, catalog.line(TRIKOT, "kind:"), "'sport_day' is not a valid value",
        hint="did you mean `sports_day`?",
    )


# --- references to the registry -------------------------------------------------------


def test_unknown_channel_in_slot(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, "channels: [mastodon,", "channels: [mastdon,")
    result = catalog.run(TRIKOT_FILE)
    result.expect_error(
        TRIKOT_FILE, catalog.line(TRIKOT, "mastdon"), "unknown channel 'mastdon'",
        hint="did you mean 'mastodon'?",
    )


def test_unknown_channel_in_block_style_list(catalog: CatalogCopy) -> None:
    catalog.edit(
        TRIKOT,
        "    channels: [mastodon, bluesky, instagram, facebook, threads]",
        "    channels:\n      - mastodon\n      - blusky\n",
    )
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(
        TRIKOT_FILE, catalog.line(TRIKOT, "- blusky"), "slots[0].channels[1]: unknown channel",
        hint="did you mean 'bluesky'?",
    )


def test_unknown_person_as_approver(catalog: CatalogCopy) -> None:
    catalog.edit("whatsapp-kanal-start.yaml", "person: benz", "person: bens")
    result = catalog.invoke("campaigns/whatsapp-kanal-start.yaml")
    result.expect_error(
        "campaigns/whatsapp-kanal-start.yaml",
        catalog.line("whatsapp-kanal-start.yaml", "person: bens"),
        "approval.approvers[0].person: unknown person 'bens'",
        hint="did you mean 'benz'?",
    )


def test_unknown_portfolio_as_approver(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, "    - portfolio: sport", "    - portfolio: sprot")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(
        TRIKOT_FILE, catalog.line(TRIKOT, "portfolio: sprot"), "unknown portfolio 'sprot'",
        hint="did you mean 'sport'?",
    )


def test_unknown_portfolio_in_requested_by(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, "requested_by: {portfolio: sport}", "requested_by: {portfolio: spor}")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(
        TRIKOT_FILE, catalog.line(TRIKOT, "requested_by"),
        "requested_by.portfolio: unknown portfolio 'spor'", hint="did you mean 'sport'?",
    )


def test_unknown_office_in_requested_by(catalog: CatalogCopy) -> None:
    catalog.edit(
        "schadstoffmobil.yaml", "requested_by: {office: eigenbetrieb-abfall}",
        "requested_by:\n  office: eigenbetrieb-abfal",
    )
    result = catalog.invoke("campaigns/schadstoffmobil.yaml")
    result.expect_error(
        "campaigns/schadstoffmobil.yaml",
        catalog.line("schadstoffmobil.yaml", "office: eigenbetrieb-abfal"),
        "unknown office 'eigenbetrieb-abfal'", hint="did you mean 'eigenbetrieb-abfall'?",
    )


def test_unknown_person_in_escalate_to(catalog: CatalogCopy) -> None:
    name = "tag-der-kinderhospizarbeit.yaml"
    catalog.edit(name, "escalate_to: [benz]", "escalate_to: [benzz]")
    result = catalog.invoke(f"campaigns/{name}")
    result.expect_error(f"campaigns/{name}", catalog.line(name, "escalate_to"),
                        "unknown person 'benzz'")


@pytest.mark.parametrize("on_timeout", ["cancel", "publish_if_quorum"])
def test_escalate_to_without_escalate_is_refused(catalog: CatalogCopy, on_timeout: str) -> None:
    """Only an escalated deadline tells `escalate_to`; with another action it was ignored."""
    name = "europawahl-2029.yaml"
    catalog.edit(name, "  on_timeout: publish_if_quorum\n",
                 f"  on_timeout: {on_timeout}\n  escalate_to: [benz]\n")
    result = catalog.invoke(f"campaigns/{name}")
    result.expect_error(
        f"campaigns/{name}", catalog.line(name, "escalate_to"),
        "approval.escalate_to: `escalate_to` only applies with `on_timeout: escalate`",
        f"with `{on_timeout}` nobody in it is told",
        hint="set on_timeout: escalate, or remove escalate_to",
    )
    assert len(result.errors) == 1, result.output


# --- times -----------------------------------------------------------------------------


def test_time_in_the_spring_forward_gap(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, '"2027-06-04 07:30"', '"2027-03-28 02:30"')
    catalog.edit(TRIKOT, '"2027-06-02 12:00"', '"2027-03-26 12:00"')
    result = catalog.run(TRIKOT_FILE)
    result.expect_error(
        TRIKOT_FILE, catalog.line(TRIKOT, "at:"),
        "slots[0].at: 2027-03-28 02:30 does not exist in Europe/Berlin",
        hint="before 02:00 or from 03:00",
    )


def test_time_in_the_fall_back_fold(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, '"2027-06-04 07:30"', '"2027-10-31 02:30"')
    catalog.edit(TRIKOT, '"2027-06-02 12:00"', '"2027-10-29 12:00"')
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(
        TRIKOT_FILE, catalog.line(TRIKOT, "at:"),
        "slots[0].at: 2027-10-31 02:30 happens twice in Europe/Berlin",
    )


def test_yearly_slot_hits_the_gap(catalog: CatalogCopy) -> None:
    name = "tag-der-kinderhospizarbeit.yaml"
    catalog.edit(name, 'yearly: "02-10 10:00"', 'yearly: "03-28 02:30"')
    result = catalog.invoke(f"campaigns/{name}")
    # 28 March is the last Sunday of March in 2027: summer time begins that night.
    result.expect_error(
        f"campaigns/{name}", catalog.line(name, "yearly:"),
        "slots[0].yearly: 2027-03-28 02:30 does not exist",
    )


def test_rrule_slot_hits_the_gap(catalog: CatalogCopy) -> None:
    name = "schadstoffmobil.yaml"
    catalog.edit(name, 'rrule: "FREQ=MONTHLY;BYDAY=1MO"', 'rrule: "FREQ=MONTHLY;BYDAY=-1SU"')
    catalog.edit(name, 'start: "2027-01-04 08:00"', 'start: "2027-01-31 02:30"')
    result = catalog.invoke(f"campaigns/{name}")
    result.expect_error(
        f"campaigns/{name}", catalog.line(name, "rrule:"),
        "slots[0].rrule: 2027-03-28 02:30 does not exist",
    )


def test_rrule_that_cannot_be_read(catalog: CatalogCopy) -> None:
    name = "schadstoffmobil.yaml"
    catalog.edit(name, 'rrule: "FREQ=MONTHLY;BYDAY=1MO"', 'rrule: "FREQ=MONATLICH"')
    result = catalog.invoke(f"campaigns/{name}")
    result.expect_error(f"campaigns/{name}", catalog.line(name, "rrule:"),
                        "the RRULE cannot be read")


def test_date_that_does_not_exist_at_all(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, '"2027-06-04 07:30"', '"2027-02-30 07:30"')
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(TRIKOT_FILE, catalog.line(TRIKOT, "at:"), "is not a valid date and time")


@pytest.mark.parametrize("until", ["abcdefghij", "2030-13-01", "im Mai"])
def test_until_that_is_not_a_date(catalog: CatalogCopy, until: str) -> None:
    name = "tag-der-kinderhospizarbeit.yaml"
    catalog.edit(name, 'yearly: "02-10 10:00"', f'yearly: "02-10 10:00"\n    until: "{until}"')
    result = catalog.invoke(f"campaigns/{name}")
    result.expect_error(f"campaigns/{name}", catalog.line(name, "until:"), "is not a year or date")


def test_deadline_after_the_publication(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, '"2027-06-02 12:00"', '"2027-06-04 08:00"')
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(
        TRIKOT_FILE, catalog.line(TRIKOT, "deadline:"),
        "approval.deadline: the approval deadline 2027-06-04 08:00 is not before the first "
        "publication 2027-06-04 07:30",
    )


def test_deadline_before_that_is_not_a_duration(catalog: CatalogCopy) -> None:
    name = "schadstoffmobil.yaml"
    catalog.edit(name, "deadline_before: 72h", "deadline_before: drei Tage")
    result = catalog.invoke(f"campaigns/{name}")
    result.expect_error(
        f"campaigns/{name}", catalog.line(name, "deadline_before"), "is not a duration",
        hint="48h",
    )


# --- templates -------------------------------------------------------------------------


def test_inline_template_syntax_error_points_into_the_text(catalog: CatalogCopy) -> None:
    key = replace_trikot_text(catalog, "Heute ist Trikottag!", "{% if link %}Mehr:", "{{ link }",
                              "{% endif %}")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(TRIKOT_FILE, key + 3, "content.text: template syntax error")
    assert catalog.line(TRIKOT, "^    {{ link }") == key + 3


def test_inline_template_syntax_error_in_a_one_line_text(catalog: CatalogCopy) -> None:
    key = replace_trikot_text(catalog, "Heute ist Trikottag! {{ link }")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(TRIKOT_FILE, key + 1, "template syntax error")


def test_inline_template_syntax_error_in_a_channel_override(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, "Darmstadts Sportvereine machen", "{{ x }Darmstadts Sportvereine machen")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(
        TRIKOT_FILE, catalog.line(TRIKOT, "{{ x }"),
        "content.channels.bluesky.text: template syntax error", "'bluesky'",
    )


def test_template_file_syntax_error(catalog: CatalogCopy) -> None:
    catalog.edit("templates/kinderhospiz.j2", "{{ link }}", "{{ link }")
    result = catalog.run("campaigns/tag-der-kinderhospizarbeit.yaml")
    result.expect_error(
        "campaigns/templates/kinderhospiz.j2",
        catalog.line("templates/kinderhospiz.j2", "{{ link }"),
        "template syntax error",
        hint="close every {{ … }}",
    )


def test_template_file_missing(catalog: CatalogCopy) -> None:
    name = "tag-der-kinderhospizarbeit.yaml"
    catalog.edit(name, "template: kinderhospiz.j2", "template: kinderhospitz.j2")
    result = catalog.invoke(f"campaigns/{name}")
    result.expect_error(
        f"campaigns/{name}", catalog.line(name, "template:"), "'kinderhospitz.j2' not found"
    )


def test_undefined_variable_in_inline_template(catalog: CatalogCopy) -> None:
    # "Sportvereine" contains "ort": the line must come from Jinja, not a text search.
    catalog.edit(TRIKOT, "    {{ link }}\n    {{ hashtags }}\n  link:",
                 "    {{ ort }}\n    {{ hashtags }}\n  link:")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(
        TRIKOT_FILE, catalog.line(TRIKOT, "{{ ort }}"),
        "content.text: template uses an undefined variable: 'ort' is undefined",
        hint="content.variables",
    )


def test_undefined_variable_in_template_file(catalog: CatalogCopy) -> None:
    catalog.edit("templates/kinderhospiz.j2", "{{ link }}", "{{ linkk }}")
    result = catalog.invoke("campaigns/tag-der-kinderhospizarbeit.yaml")
    result.expect_error(
        "campaigns/templates/kinderhospiz.j2",
        catalog.line("templates/kinderhospiz.j2", "{{ linkk }}"),
        "'linkk' is undefined",
    )


def test_undefined_attribute_in_inline_template(catalog: CatalogCopy) -> None:
    key = replace_trikot_text(catalog, "Heute ist Trikottag!", "Am {{ date.wochentag }}",
                              "{{ link }}")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(TRIKOT_FILE, key + 2, "undefined variable", "wochentag")


def test_template_sandbox_escape_is_refused(catalog: CatalogCopy) -> None:
    key = replace_trikot_text(catalog, "Heute ist Trikottag!", "{{ link }}",
                              "{{ ''.__class__.__mro__ }}")
    result = catalog.run(TRIKOT_FILE)
    issue = result.expect_error(
        TRIKOT_FILE, key + 3, "template tries something templates may not do", "__class__",
        hint="not Python internals",
    )
    assert "unsafe" in issue.text


def test_template_runtime_error(catalog: CatalogCopy) -> None:
    key = replace_trikot_text(catalog, "Heute ist Trikottag!", "{{ 1 / 0 }}")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(TRIKOT_FILE, key + 2, "template failed while rendering", "division by zero")


# --- lengths ---------------------------------------------------------------------------

LONG_URL = "https://www.darmstadt.example.org/veranstaltungen/2027/trikottag/" + "a" * 150


def length_campaign(catalog: CatalogCopy, channel: str, text: str, *, image: bool = True) -> str:
    return catalog.write("laenge.yaml", campaign_yaml("laenge", [channel], text, image=image))


@pytest.mark.parametrize(
    ("extra", "ok"), [(0, True), (1, False)], ids=["500-passes", "501-fails"]
)
def test_mastodon_counts_urls_as_23(catalog: CatalogCopy, extra: int, ok: bool) -> None:
    text = filler(500 - 23 - 1 + extra) + " " + LONG_URL
    assert len(text) > 600  # without URL weighting this would be far too long
    name = length_campaign(catalog, "mastodon", text)
    result = catalog.invoke(name)
    if ok:
        result.expect_ok()
    else:
        result.expect_error(
            name, catalog.line("laenge.yaml", "^  text: |"),
            "the post for 'mastodon' is too long: 501/500 characters "
            "(graphemes; every URL counts as 23)",
            hint="shorten the text by 1 character, or give mastodon its own shorter text",
        )


def test_mastodon_limit_from_the_registry(catalog: CatalogCopy) -> None:
    catalog.edit(
        "registry/channels.yaml", "    crisis: true\n  - name: bluesky",
        "    crisis: true\n    max_characters: 100\n    characters_reserved_per_url: 10\n"
        "  - name: bluesky",
    )
    name = length_campaign(catalog, "mastodon", filler(90) + " " + LONG_URL)
    result = catalog.invoke(name)
    result.expect_error(name, catalog.line("laenge.yaml", "^  text: |"),
                        "101/100 characters (graphemes; every URL counts as 10)")


FAMILY = "👩\u200d👩\u200d👧"  # one grapheme, five code points, 18 UTF-8 bytes
FLAG = "🇩🇪"  # one grapheme, two code points


@pytest.mark.parametrize(("extra", "ok"), [(0, True), (1, False)], ids=["300-passes", "301-fails"])
def test_bluesky_counts_graphemes(catalog: CatalogCopy, extra: int, ok: bool) -> None:
    text = FAMILY * 5 + FLAG * 5 + filler(290 + extra)
    assert len(text) == 5 * 5 + 5 * 2 + 290 + extra > 300
    name = length_campaign(catalog, "bluesky", text)
    result = catalog.invoke(name)
    if ok:
        result.expect_ok()
    else:
        result.expect_error(
            name, catalog.line("laenge.yaml", "^  text: |"),
            "the post for 'bluesky' is too long: 301/300 characters (graphemes",
        )


def test_bluesky_counts_bytes(catalog: CatalogCopy) -> None:
    text = FAMILY * 200  # 200 graphemes, fine; 3600 bytes, too many
    name = length_campaign(catalog, "bluesky", text)
    result = catalog.invoke(name)
    issue = result.expect_error(name, catalog.line("laenge.yaml", "^  text: |"),
                                "3600/3000 bytes (UTF-8")
    assert "/300 " not in issue.text and "shorten the text by 600 bytes" in issue.hint
    assert len(result.errors) == 1


@pytest.mark.parametrize(
    ("channel", "limit", "image", "unit"),
    [
        ("linkedin", 3000, True, "characters"),
        ("instagram", 2200, True, "characters"),
        ("threads", 500, True, "characters"),
        ("telegram", 4096, False, "characters (UTF-16 units"),
        ("telegram", 1024, True, "characters (UTF-16 units"),  # a photo caption
    ],
    ids=["linkedin", "instagram", "threads", "telegram", "telegram-caption"],
)
def test_length_limits(
    catalog: CatalogCopy, channel: str, limit: int, image: bool, unit: str
) -> None:
    name = length_campaign(catalog, channel, filler(limit), image=image)
    catalog.invoke(name).expect_ok()
    name = length_campaign(catalog, channel, filler(limit + 1), image=image)
    result = catalog.invoke(name)
    result.expect_error(
        name, catalog.line("laenge.yaml", "^  text: |"),
        f"the post for {channel!r} is too long: {limit + 1}/{limit} {unit}",
    )


def test_too_long_template_file_points_at_the_template_key(catalog: CatalogCopy) -> None:
    catalog.edit("templates/kinderhospiz.j2", "Das grüne Band", filler(2200) + " Das grüne Band")
    name = "tag-der-kinderhospizarbeit.yaml"
    result = catalog.invoke(f"campaigns/{name}")
    result.expect_error(f"campaigns/{name}", catalog.line(name, "template:"),
                        "'instagram' is too long")


def test_instagram_needs_an_image(catalog: CatalogCopy) -> None:
    name = length_campaign(catalog, "instagram", "Heute ist Trikottag!", image=False)
    result = catalog.invoke(name)
    result.expect_error(
        name, catalog.line("laenge.yaml", "content:"),
        "instagram needs an image, but channel 'instagram' has none",
    )


# --- images ----------------------------------------------------------------------------


def test_image_without_alt_text(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, '      alt: "Grüne Grafik mit dem Wort „Trikottag“"\n', "")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(
        TRIKOT_FILE, catalog.line(TRIKOT, "- file: trikottag.jpg"),
        "required field `alt` is missing under `content.images[0]`",
    )


@pytest.mark.parametrize("alt", ['""', '"   "', "Bild"])
def test_image_with_empty_alt_text(catalog: CatalogCopy, alt: str) -> None:
    catalog.edit(TRIKOT, 'alt: "Grüne Grafik mit dem Wort „Trikottag“"', f"alt: {alt}")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(
        TRIKOT_FILE, catalog.line(TRIKOT, "alt:"),
        "content.images[0].alt: alt text must describe the image",
    )


def test_image_file_missing(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, "- file: trikottag.jpg", "- file: trikotag.jpg")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(TRIKOT_FILE, catalog.line(TRIKOT, "trikotag.jpg"),
                        "image file 'trikotag.jpg' not found")


# --- hashtags --------------------------------------------------------------------------


def test_hashtag_not_in_camel_case_in_the_list(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, "hashtags: [Trikottag, SportInDarmstadt]",
                 "hashtags:\n    - Trikottag\n    - niewiederistjetzt")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(
        TRIKOT_FILE, catalog.line(TRIKOT, "- niewiederistjetzt"),
        "content.hashtags[1]: hashtag #niewiederistjetzt runs several words together",
        hint="write each word with a capital initial (CamelCase)",
    )


def test_hashtag_not_in_camel_case_in_the_text(catalog: CatalogCopy) -> None:
    key = replace_trikot_text(catalog, "Heute ist Trikottag!",
                              "Gemeinsam gegen Hass #niewiederistjetzt", "{{ link }}")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(
        TRIKOT_FILE, key + 2, "hashtag #niewiederistjetzt runs several words together",
        "'mastodon'",
    )


def test_hashtag_in_capitals_in_the_text(catalog: CatalogCopy) -> None:
    key = replace_trikot_text(catalog, "Heute ist Trikottag! #TRIKOTTAG #ÖPNV #EU")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(TRIKOT_FILE, key + 1, "hashtag #TRIKOTTAG is in capitals only")
    assert "ÖPNV" not in result.output
    assert "#EU" not in result.output


def test_hashtag_with_a_hyphen(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, "hashtags: [Trikottag, SportInDarmstadt]",
                 "hashtags: [Trikottag, Sport-In-Darmstadt]")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(TRIKOT_FILE, catalog.line(TRIKOT, "hashtags:"),
                        "contains characters that end a hashtag")


# --- approval --------------------------------------------------------------------------


def test_duplicate_campaign_id(catalog: CatalogCopy) -> None:
    catalog.write("zweiter-trikottag.yaml", catalog.read(TRIKOT))
    result = catalog.invoke("campaigns/")
    result.expect_error(
        "campaigns/zweiter-trikottag.yaml", catalog.line("zweiter-trikottag.yaml", "id: trikottag"),
        "campaign id 'trikottag' is already used by campaigns/trikottag.yaml",
    )
    assert [i.file for i in result.errors] == ["campaigns/zweiter-trikottag.yaml"]


def test_quorum_larger_than_the_approvers(catalog: CatalogCopy) -> None:
    name = "europawahl-2029.yaml"
    catalog.edit(name, "quorum: 5", "quorum: 8")
    result = catalog.invoke(f"campaigns/{name}")
    result.expect_error(
        f"campaigns/{name}", catalog.line(name, "quorum: 8"),
        "quorum 8 is more than the 7 people asked", hint="at most 7",
    )


def test_quorum_mode_without_quorum(catalog: CatalogCopy) -> None:
    name = "europawahl-2029.yaml"
    catalog.edit(name, "  quorum: 5\n", "")
    result = catalog.invoke(f"campaigns/{name}")
    result.expect_error(
        f"campaigns/{name}", catalog.line(name, "approval:"),
        "mode `quorum` needs `quorum: N`",
    )


def test_quorum_without_quorum_mode(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, "  mode: one\n", "  mode: one\n  quorum: 1\n")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(TRIKOT_FILE, catalog.line(TRIKOT, "approval:"),
                        "`quorum` only applies with `mode: quorum`")


def test_publish_if_quorum_needs_quorum_mode(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, "on_timeout: cancel", "on_timeout: publish_if_quorum")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(TRIKOT_FILE, catalog.line(TRIKOT, "on_timeout"),
                        "`publish_if_quorum` needs `mode: quorum`")


def test_approval_without_any_deadline(catalog: CatalogCopy) -> None:
    catalog.edit(TRIKOT, '  deadline: "2027-06-02 12:00"\n', "")
    result = catalog.invoke(TRIKOT_FILE)
    result.expect_error(TRIKOT_FILE, catalog.line(TRIKOT, "approval:"), "set `deadline_before`")


def test_warning_alone_exits_zero_but_strict_fails(catalog: CatalogCopy) -> None:
    catalog.write("anderer-name.yaml", catalog.read(TRIKOT))
    catalog.path(TRIKOT).unlink()
    result = catalog.invoke("campaigns/anderer-name.yaml")
    assert result.code == 0, result.output
    assert ("campaigns/anderer-name.yaml:3: warning: id: id 'trikottag' differs from the file name"
            in result.output)
    strict = catalog.invoke("--strict", "campaigns/anderer-name.yaml")
    assert strict.code == 1, strict.output
