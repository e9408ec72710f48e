"""``newsroom validate`` on approval chains (``approval.steps``): each mistake is an error
at its file and line with what to do, on a copy of the shipped three-step campaign."""

from __future__ import annotations

import pytest

NAME = "sportlerehrung.yaml"


def test_the_shipped_three_step_campaign_is_valid(catalog):
    catalog.invoke(f"campaigns/{NAME}").expect_ok()
    assert catalog.read(NAME).count("    - name: ") == 3


def test_an_empty_step_is_refused(catalog):
    path = catalog.edit(NAME, "        - person: hoffmann\n        - person: demir\n", "")
    path = catalog.edit(NAME, "    - name: Schlussredaktion (Amt für Kommunikation)\n"
                              "      approvers:\n",
                        "    - name: Schlussredaktion (Amt für Kommunikation)\n"
                        "      approvers: []\n")
    line = catalog.line(NAME, "approvers: []")
    catalog.invoke(path).expect_error(path, line, "approval.steps[2].approvers")


def test_a_quorum_larger_than_its_step_is_refused(catalog):
    path = catalog.edit(NAME, "      mode: all\n", "      mode: quorum\n      quorum: 3\n")
    line = catalog.line(NAME, "quorum: 3")
    catalog.invoke(path).expect_error(path, line, "quorum 3 is more than the 2 people asked in "
                                  "this step", hint="lower the quorum to at most 2")


def test_a_person_in_two_steps_is_refused(catalog):
    path = catalog.edit(NAME, "        - person: demir\n", "        - person: sportamt-leitung\n")
    issue = catalog.invoke(path).expect_error(
        path, catalog.line(NAME, "- name: Schlussredaktion") + 1, "is asked in step 1 and step 3",
        hint="remove them from one of the steps")
    assert "Leiterin des Sportamts Petra Kühn" in issue.text


@pytest.mark.parametrize(("old", "new", "needle", "fragment"), [
    # Step 2 due before step 1 (3 days before the slot against 2 days).
    ("      deadline_before: 5d\n", "      deadline_before: 2d\n", "deadline_before: 2d",
     "step 1 is due after step 2"),
    # A step due after the chain's own deadline (the last step's).
    ("      deadline_before: 3d\n", "      deadline_before: 12h\n", "deadline_before: 12h",
     "step 2 is due after the chain's deadline"),
])
def test_step_deadlines_out_of_order_are_refused(catalog, old, new, needle, fragment):
    path = catalog.edit(NAME, old, new)
    catalog.invoke(path).expect_error(path, catalog.line(NAME, needle), fragment,
                                  hint="deadline")


def test_a_step_deadline_after_the_publication_is_refused(catalog):
    path = catalog.edit(NAME, "      deadline_before: 5d\n",
                        '      deadline: "2027-03-13 09:00"\n')
    catalog.invoke(path).expect_error(path, catalog.line(NAME, "2027-03-13 09:00"),
                                  "step 1 is due at", "not before the first publication",
                                  hint="before the first slot")


def test_steps_and_one_step_approvers_together_are_refused(catalog):
    path = catalog.edit(NAME, "  deadline_before: 24h ", "  approvers: [{person: benz}]\n"
                                                       "  deadline_before: 24h ")
    catalog.invoke(path).expect_error(path, catalog.line(NAME, "^approval:"),
                                  "give either `steps`")


def test_signatories_need_a_step_that_signs(catalog):
    path = catalog.edit(NAME, "      signs: true               # the quote names who "
                              "approved in this step\n", "")
    text = catalog.read(NAME).replace("kind: sports_day\n",
                                      "kind: sports_day\nsignatories_in_text: true\n")
    catalog.write(NAME, text)
    catalog.invoke(path).expect_error(path, catalog.line(NAME, "signatories_in_text"),
                                  "no step of the chain signs", hint="signs: true")


def test_an_unknown_person_in_a_step_names_the_step(catalog):
    path = catalog.edit(NAME, "        - person: sportkreis\n", "        - person: sportkreiss\n")
    catalog.invoke(path).expect_error(path, catalog.line(NAME, "sportkreiss"),
                                  "approval.steps[0].approvers[1].person",
                                  "unknown person 'sportkreiss'", hint="sportkreis")
