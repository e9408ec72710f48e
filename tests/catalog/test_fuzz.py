"""Garbled campaign files never crash the validator.

Whatever a person saves (half-edited YAML, a tab, a pasted binary, a list instead of a
mapping, nonsense dates), `load_catalog` returns a report and `newsroom validate` exits
with 0 or 1, and every error names its file, a line inside it and what is wrong.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsroom.catalog.validation import ValidationReport, load_catalog
from newsroom.cli import cli

from .conftest import SEED

TODAY = date(2026, 12, 1)
SEED_CAMPAIGNS = {p.name: p.read_text(encoding="utf-8") for p in sorted(SEED.glob("*.yaml"))}
FUZZ_FILE = "fuzz.yaml"
# Problems of a whole file or path that have no line (line 0).
WHOLE_FILE = ("registry file is missing", "no such file or folder", "cannot find the catalog")

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- strategies ------------------------------------------------------------------------

SPECIAL = [":", ": ", "{", "}", "[", "]", '"', "'", "\t", "#", "- ", "|", ">", "&a", "*a", "!",
           "!!", "%", "@", "`", "?", ",", "\n", " ", "  ", "{{", "}}", "{%", "%}", "\\", "\x00",
           "\ufeff", "ä", "👩\u200d👩\u200d👧"]

WEIRD_VALUES = [
    "", "~", "null", "true", "0", "-1", "1e9999", ".nan", "[]", "{}", "[a, [b]]", "{a: 1}",
    '"2027-03-28 02:30"', '"2027-10-31 02:30"', '"0001-01-01 00:00"', '"9999-12-31 23:59"',
    '"2027-02-30 09:00"', '"02-29 09:00"', '"03-28 02:30"', '"00-00 00:00"', "2027-01-01",
    '"FREQ=SECONDLY"', '"FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"', '"FREQ=DAILY;COUNT=0"',
    '"FREQ=WEEKLY;UNTIL=20200101"', '"RRULE:FREQ=DAILY"', '"DTSTART:20270101T000000"',
    "48h", "-5h", "0h", "99999999d", "abcdefghij", '"2030-13-01"', "2030",
    "{{ x }", "'{{ ''.__class__ }}'", "'{% for %}'", "'{{ 1/0 }}'", "'{{ range(10**9) | list }}'",
    "mastdon", "magistrat", "quorum", "all", "benz", "sport", "&anchor x", "*anchor",
    "!!binary Zm9v", "!!python/object:os.system {}", "|\n    x", ">\n  y",
]


FIELDS = ["at", "yearly", "rrule", "start", "until", "on_demand", "channels", "deadline",
          "deadline_before", "mode", "quorum", "on_timeout", "escalate_to", "pre_approved", "grace",
          "same_day_only", "person", "portfolio", "group", "office", "template", "text", "link",
          "hashtags", "alt", "file", "url", "id", "kind", "signatories_in_text", "variables"]


def _key(line: str) -> str:
    return line.split(":", 1)[0].strip().removeprefix("- ").strip()


@st.composite
def mutated_campaign(draw: st.DrawFn) -> str:
    """A seed campaign with a few lines deleted, duplicated, swapped, garbled or given odd
    values (nonexistent dates, broken rules, templates that fail)."""
    name = draw(st.sampled_from(sorted(SEED_CAMPAIGNS)))
    lines = SEED_CAMPAIGNS[name].splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(
            ["delete", "duplicate", "swap", "insert", "value", "indent", "dedent", "text", "cut",
             "field", "field", "add"]
        ))
        if op == "field":  # a known field gets an odd value
            keyed = [n for n, line in enumerate(lines) if ":" in line and _key(line) in FIELDS]
            i = draw(st.sampled_from(keyed)) if keyed else i
            op = "value"
        if op == "add":  # a field (maybe misplaced) next to line i, at its indentation
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip(" "))]
            field = draw(st.sampled_from(FIELDS))
            lines.insert(i + 1, f"{indent}{field}: {draw(st.sampled_from(WEIRD_VALUES))}\n")
            continue
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "insert":
            at = draw(st.integers(0, len(lines[i])))
            char = draw(st.sampled_from(SPECIAL) | st.characters())
            lines[i] = lines[i][:at] + char + lines[i][at:]
        elif op == "value" and ":" in lines[i]:
            key = lines[i].split(":", 1)[0]
            lines[i] = f"{key}: {draw(st.sampled_from(WEIRD_VALUES))}\n"
        elif op == "indent":
            lines[i] = " " * draw(st.integers(1, 4)) + lines[i]
        elif op == "dedent":
            lines[i] = lines[i].lstrip(" ")
        elif op == "text":
            lines[i] = draw(st.text(max_size=30)) + "\n"
        elif op == "cut":
            lines = lines[: i + 1]
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
    return "".join(lines)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


DATES = st.builds(  # dates and times, also impossible ones
    "{:04d}-{:02d}-{:02d} {:02d}:{:02d}".format,
    st.sampled_from([1, 1969, 2026, 2027, 2028, 2030, 2999, 3000, 9999]),
    st.integers(0, 13), st.integers(0, 32), st.integers(0, 25), st.sampled_from([0, 30, 59, 60]),
).map(_quoted)
YEARLY = st.builds(
    "{:02d}-{:02d} {:02d}:{:02d}".format,
    st.integers(0, 13), st.integers(0, 32), st.integers(0, 25), st.sampled_from([0, 30, 60]),
).map(_quoted)
RRULES = st.lists(
    st.sampled_from([
        "FREQ=YEARLY", "FREQ=MONTHLY", "FREQ=WEEKLY", "FREQ=DAILY", "FREQ=HOURLY",
        "FREQ=MINUTELY", "BYDAY=1MO", "BYDAY=-1SU", "BYDAY=SU", "BYMONTH=3", "BYMONTH=10",
        "BYMONTHDAY=31", "BYMONTHDAY=-1", "BYHOUR=2", "BYMINUTE=30", "COUNT=3", "INTERVAL=0",
        "UNTIL=20270101", "UNTIL=2027", "BYSETPOS=-1", "BYWEEKNO=53", "BYYEARDAY=366", "X=1",
    ]),
    min_size=1, max_size=4,
).map(lambda parts: _quoted(";".join(parts)))
DURATIONS = st.builds(
    "{}{}".format, st.sampled_from([0, 1, 15, 48, 10**9, 10**12]),
    st.sampled_from(["h", "d", "m", "min", "s", "x", ""]),
)
PRINTABLE = st.characters(exclude_categories=["Cc", "Cs"])
ANY_VALUE = st.one_of(
    st.sampled_from(WEIRD_VALUES),
    st.integers(-10, 10**12).map(str),
    st.text(PRINTABLE, max_size=20).map(_quoted),
)
ODD_VALUES = {
    "at": DATES, "start": DATES, "deadline": DATES,
    "until": st.one_of(DATES, st.sampled_from(["1969", "2028", "3000", "9999", "2030-02-30"])),
    "yearly": YEARLY, "rrule": RRULES, "deadline_before": DURATIONS, "grace": DURATIONS,
    "quorum": st.integers(-1, 12).map(str),
}
SLOT_FIELDS = ["until", "start", "rrule", "yearly", "at", "on_demand"]


def _odd_value(draw: st.DrawFn, field: str) -> str:
    if field in ODD_VALUES and draw(st.integers(0, 4)):
        return draw(ODD_VALUES[field])
    return draw(ANY_VALUE)


@st.composite
def campaign_with_odd_values(draw: st.DrawFn) -> str:
    """A seed campaign, still YAML, with one to three fields given odd values of their kind
    (impossible dates, broken rules, huge durations), or an extra slot field."""
    name = draw(st.sampled_from(sorted(SEED_CAMPAIGNS)))
    lines = SEED_CAMPAIGNS[name].splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 3))):
        keyed = [n for n, line in enumerate(lines) if ":" in line and _key(line) in FIELDS]
        timed = [n for n in keyed if _key(lines[n]) in ODD_VALUES]
        i = draw(st.sampled_from(timed if timed and draw(st.booleans()) else keyed))
        if draw(st.integers(0, 3)):
            prefix = lines[i].split(":", 1)[0]
            lines[i] = f"{prefix}: {_odd_value(draw, _key(lines[i]))}\n"
        else:  # a slot gets another timing field, e.g. `until:` or a second `rrule:`
            slot = [n for n, line in enumerate(lines) if line.startswith("    channels:")]
            field = draw(st.sampled_from(SLOT_FIELDS))
            lines.insert(
                draw(st.sampled_from(slot)) + 1, f"    {field}: {_odd_value(draw, field)}\n"
            )
    return "".join(lines)


NON_MAPPINGS = st.sampled_from([
    "", "---", "...", "null", "42", "'Text'", "- a\n- b\n", "[1, 2]", "--- a\n--- b\n",
    "a: &x [*x]\n", "&x [*x]", "? [a]\n: b\n", "{[1]: 2}", "!!python/object:os.system {}\n",
    "id: x\n---\nid: y\n", "\ufeffid: x\n", "id:\n  - :\n", "%YAML 1.1\n---\nid: x\n",
    "id: !!binary Zm9v\n", "x: 1e9999\n", "<<: *nix\n", "a: b\n<<: [a]\n", "a:\n  <<: 1\n",
])

GARBLED = st.one_of(
    mutated_campaign(),
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    NON_MAPPINGS,
)

# --- the catalog under test --------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A catalog with the registry, templates and images but only the fuzzed campaign."""
    root = tmp_path_factory.mktemp("fuzz") / "campaigns"
    for part in ("registry", "templates", "images"):
        shutil.copytree(SEED / part, root / part)
    yield root


def check_report(report: ValidationReport, root: Path) -> None:
    assert report.ok == (not report.errors)
    for issue in report.issues:
        assert issue.severity in ("error", "warning"), issue
        assert issue.file, issue
        assert issue.message.strip(), issue
        if issue.line == 0:
            assert issue.message.startswith(WHOLE_FILE), issue
            continue
        assert issue.line >= 1, issue
        path = Path(issue.file)
        path = path if path.is_absolute() else Path.cwd() / path
        assert path.is_relative_to(root), issue
        if path.is_file():
            # Lines as the validator sees them: universal newlines, plus YAML's own breaks.
            text = path.read_text(encoding="utf-8", errors="replace")
            lines = 1 + sum(text.count(c) for c in "\n\x85\u2028\u2029")
            assert issue.line <= lines, (issue, lines)


def check_file(root: Path, text: str | bytes) -> ValidationReport:
    path = root / FUZZ_FILE
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    report = load_catalog(root, today=TODAY)
    check_report(report, root)
    return report


# --- properties --------------------------------------------------------------------------


@FUZZ
@given(text=GARBLED)
def test_load_catalog_survives_garbled_campaigns(fuzz_root: Path, text: str) -> None:
    report = check_file(fuzz_root, text)
    assert report.files_checked == 3


@FUZZ
@given(text=campaign_with_odd_values())
def test_load_catalog_survives_odd_values(fuzz_root: Path, text: str) -> None:
    check_file(fuzz_root, text)


@settings(FUZZ, max_examples=25)
@given(data=st.binary(max_size=200))
def test_load_catalog_survives_raw_bytes(fuzz_root: Path, data: bytes) -> None:
    check_file(fuzz_root, data)


@settings(FUZZ, max_examples=40)
@given(text=mutated_campaign())
def test_cli_survives_garbled_campaigns(fuzz_root: Path, text: str) -> None:
    path = fuzz_root / FUZZ_FILE
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(path)], catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    assert ("OK:" in result.stdout) == (result.exit_code == 0), result.output
    for line in result.stderr.splitlines():
        if ": error: " in line:
            location = line.split(": error: ")[0]
            assert location.rsplit(":", 1)[-1].isdigit(), line  # every error has a line


@settings(FUZZ, max_examples=15)
@given(which=st.sampled_from(["people.yaml", "channels.yaml"]), data=st.data())
def test_load_catalog_survives_garbled_registry(
    fuzz_root: Path, which: str, data: st.DataObject
) -> None:
    original = (SEED / "registry" / which).read_text(encoding="utf-8")
    lines = original.splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(lines) - 1))
        op = data.draw(st.sampled_from(["delete", "duplicate", "insert", "value"]))
        if op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "insert":
            at = data.draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + data.draw(st.sampled_from(SPECIAL)) + lines[i][at:]
        elif op == "value" and ":" in lines[i]:
            key = lines[i].split(":", 1)[0]
            lines[i] = f"{key}: {data.draw(st.sampled_from(WEIRD_VALUES))}\n"
    target = fuzz_root / "registry" / which
    try:
        target.write_text("".join(lines), encoding="utf-8")
        check_file(fuzz_root, SEED_CAMPAIGNS["trikottag.yaml"])
    finally:
        target.write_text(original, encoding="utf-8")
