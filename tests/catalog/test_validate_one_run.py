"""`newsroom validate` reports every mistake of every file in one run, and nothing else.

Before, the checks ran in stages: a shape error stopped the cross-file checks, an unknown
approver or channel stopped the deadline and render checks, and a registry mistake stopped
all campaign checks; six mistakes took three runs. Here one run of the real CLI over the
whole catalog must name each mistake at its line, and no error that merely follows from
another (the account the registry refused is not an "unknown channel" in the campaigns).
"""

from __future__ import annotations

import pytest

from .conftest import CatalogCopy, filler

TEXT_KEY = "  text: |"

# One campaign, every stage: shape (kind, alt text), registry references (approver,
# channel), times (a date that does not exist), rules (escalate_to), content (hashtag),
# rendering (template syntax in one channel's text, a too-long post in another).
EVERYTHING_WRONG = f"""\
id: alles-falsch
title: Alles falsch
topic: Test
kind: sport_day
requested_by: {{office: amt-kommunikation}}
approval:
  approvers:
    - person: bens
  deadline: "2027-06-02 12:00"
  on_timeout: cancel
  escalate_to: [benz]
slots:
  - at: "2027-06-04 07:30"
    channels: [mastodon, mastdon, bluesky]
  - at: "2027-02-30 07:30"
    channels: [mastodon]
content:
{TEXT_KEY}
    {filler(520)}
    {{{{ hashtags }}}}
  hashtags: [Trikottag, niewiederistjetzt]
  images:
    - file: trikottag.jpg
      alt: "Grüne Grafik mit dem Wort „Trikottag“"
    - file: trikottag.jpg
  channels:
    bluesky:
      text: "Heute ist Trikottag! {{{{ link }}"
"""

FILE = "campaigns/alles-falsch.yaml"
NAME = "alles-falsch.yaml"


@pytest.fixture
def broken(catalog: CatalogCopy) -> CatalogCopy:
    catalog.write(NAME, EVERYTHING_WRONG)
    # A second file with a shape error and a time error.
    catalog.edit("schadstoffmobil.yaml", "kind: service_information", "kind: service")
    catalog.edit("schadstoffmobil.yaml", "deadline_before: 72h", "deadline_before: drei Tage")
    # The registry: a refused account (used by europawahl-2029) and an unknown deputy.
    catalog.edit("registry/channels.yaml", "    type: linkedin", "    type: linkdin")
    catalog.edit("registry/people.yaml", "    portfolios: [sport]\n    deputy: akdeniz",
                 "    portfolios: [sport]\n    deputy: akdenitz")
    return catalog


def test_one_run_reports_every_mistake_of_every_file(broken: CatalogCopy) -> None:
    result = broken.run("campaigns/")
    line = broken.line
    expected = [
        (FILE, line(NAME, "kind:"), ("'sport_day' is not a valid value",)),
        (FILE, line(NAME, "person: bens"),
         ("approval.approvers[0].person: unknown person 'bens'",)),
        (FILE, line(NAME, "escalate_to"),
         ("`escalate_to` only applies with `on_timeout: escalate`",)),
        (FILE, line(NAME, "mastdon"), ("slots[0].channels[1]: unknown channel 'mastdon'",)),
        (FILE, line(NAME, "2027-02-30"), ("slots[1].at:", "is not a valid date and time")),
        (FILE, line(NAME, "hashtags: ["), ("content.hashtags[1]:", "#niewiederistjetzt")),
        (FILE, _second_image(broken),
         ("required field `alt` is missing under `content.images[1]`",)),
        (FILE, line(NAME, f"^{TEXT_KEY}"), ("content.text: the post for 'mastodon' is too long",)),
        (FILE, line(NAME, "{{ link }"), ("content.channels.bluesky.text: template syntax error",)),
        ("campaigns/schadstoffmobil.yaml", line("schadstoffmobil.yaml", "kind:"),
         ("'service' is not a valid value",)),
        ("campaigns/schadstoffmobil.yaml", line("schadstoffmobil.yaml", "deadline_before"),
         ("is not a duration",)),
        ("campaigns/registry/channels.yaml", line("registry/channels.yaml", "type: linkdin"),
         ("'linkdin' is not a valid value",)),
        ("campaigns/registry/people.yaml", line("registry/people.yaml", "deputy: akdenitz"),
         ("unknown person 'akdenitz'",)),
    ]
    for file, at, fragments in expected:
        issue = result.expect_error(file, at, *fragments)
        assert issue.hint, issue  # says what to do
    # Nothing else: no error that follows from another (linkedin in europawahl-2029, the
    # unresolved approver's quorum, the slot that was left out, the image that was refused).
    assert len(result.errors) == len(expected), result.output
    assert [i.file for i in result.issues if "linkedin" in i.text + i.hint] == [
        "campaigns/registry/channels.yaml"], result.output
    assert f"{len(expected)} error(s)" in result.stderr


def _second_image(catalog: CatalogCopy) -> int:
    lines = catalog.read(NAME).splitlines()
    return [n for n, text in enumerate(lines, start=1) if text == "    - file: trikottag.jpg"][1]


def test_fixing_them_all_leaves_a_valid_catalog(broken: CatalogCopy) -> None:
    """The mistakes above are all there is: with each fixed, the catalog is valid."""
    fixed = (EVERYTHING_WRONG.replace("kind: sport_day", "kind: sports_day")
             .replace("person: bens", "person: benz")
             .replace("on_timeout: cancel", "on_timeout: escalate")
             .replace("mastodon, mastdon, bluesky", "mastodon, bluesky")
             .replace("2027-02-30", "2027-06-30").replace("niewiederistjetzt", "NieWiederIstJetzt")
             .replace(filler(520), filler(400))
             .replace("    - file: trikottag.jpg\n  channels:", "  channels:")
             .replace("{{ link }\"", "{{ link }}\""))
    broken.write(NAME, fixed)
    broken.edit("schadstoffmobil.yaml", "kind: service\n", "kind: service_information\n")
    broken.edit("schadstoffmobil.yaml", "deadline_before: drei Tage", "deadline_before: 72h")
    broken.edit("registry/channels.yaml", "    type: linkdin", "    type: linkedin")
    broken.edit("registry/people.yaml", "    deputy: akdenitz", "    deputy: akdeniz")
    result = broken.invoke("campaigns/")
    result.expect_ok()
    assert "9 campaigns valid" in result.stdout


def test_a_registry_mistake_does_not_hide_a_campaign_mistake(catalog: CatalogCopy) -> None:
    catalog.edit("registry/people.yaml", "    portfolios: [sport]\n    deputy: akdeniz",
                 "    portfolios: [sport]\n    deputy: akdenitz")
    catalog.edit("trikottag.yaml", "channels: [mastodon,", "channels: [mastdon,")
    result = catalog.invoke("campaigns/trikottag.yaml")
    result.expect_error("campaigns/registry/people.yaml",
                        catalog.line("registry/people.yaml", "akdenitz"),
                        "unknown person 'akdenitz'")
    result.expect_error("campaigns/trikottag.yaml", catalog.line("trikottag.yaml", "mastdon"),
                        "unknown channel 'mastdon'")
    assert len(result.errors) == 2, result.output


def test_a_refused_person_is_not_unknown_in_the_campaigns(catalog: CatalogCopy) -> None:
    """benz's entry is refused (no e-mail): campaigns naming benz are not told benz is unknown."""
    text = catalog.read("registry/people.yaml")
    start = text.index("  - id: benz")
    email = text.index("    email:", start)
    catalog.write("registry/people.yaml", text[:email] + text[text.index("\n", email) + 1:])
    result = catalog.invoke("campaigns/")
    result.expect_error("campaigns/registry/people.yaml",
                        catalog.line("registry/people.yaml", "- id: benz"),
                        "required field `email` is missing")
    assert len(result.errors) == 1, result.output
