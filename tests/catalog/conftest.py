"""Fixtures for the catalog tests: a private copy of the seed catalog, ways to break it,
and two ways to run ``newsroom validate`` on it (a real subprocess, or in-process)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsroom.cli import cli

SEED = Path(__file__).resolve().parents[2] / "campaigns"

_ISSUE = re.compile(
    r"^(?P<file>\S+?)(?::(?P<line>\d+))?: (?P<severity>error|warning): (?P<text>.*)$"
)
_HINT = "    what to do: "


@dataclass(frozen=True)
class Issue:
    file: str
    line: int
    severity: str
    text: str  # "field: message" as printed
    hint: str


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def issues(self) -> list[Issue]:
        found: list[Issue] = []
        lines = self.output.splitlines()
        for i, line in enumerate(lines):
            match = _ISSUE.match(line)
            if not match:
                continue
            hint = ""
            if i + 1 < len(lines) and lines[i + 1].startswith(_HINT):
                hint = lines[i + 1].removeprefix(_HINT)
            found.append(
                Issue(
                    match["file"],
                    int(match["line"] or 0),
                    match["severity"],
                    match["text"],
                    hint,
                )
            )
        return found

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    def expect_error(self, file: str, line: int, *fragments: str, hint: str = "") -> Issue:
        """Assert the run failed cleanly with an error at ``file:line`` saying ``fragments``."""
        assert "Traceback" not in self.output, self.output
        assert "unexpected error" not in self.output, self.output
        assert self.code == 1, f"exit code {self.code}\n{self.output}"
        for issue in self.errors:
            if (
                issue.file == file
                and issue.line == line
                and all(f in issue.text for f in fragments)
                and hint in issue.hint
            ):
                return issue
        pytest.fail(
            f"no error at {file}:{line} with {fragments!r} (hint {hint!r}) in:\n{self.output}"
        )

    def expect_ok(self) -> None:
        assert "Traceback" not in self.output, self.output
        assert self.code == 0, f"exit code {self.code}\n{self.output}"
        assert not self.errors, self.output


class CatalogCopy:
    """A copy of ``campaigns/`` below ``workdir``, which is also the working directory."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.root = workdir / "campaigns"
        shutil.copytree(SEED, self.root)

    def path(self, name: str) -> Path:
        return self.root / name

    def read(self, name: str) -> str:
        return self.path(name).read_text(encoding="utf-8")

    def write(self, name: str, text: str) -> str:
        """Write ``campaigns/<name>`` and return its path relative to the working directory."""
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return f"campaigns/{name}"

    def edit(self, name: str, old: str, new: str) -> str:
        """Replace the one occurrence of ``old`` in ``campaigns/<name>``."""
        text = self.read(name)
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {name}"
        return self.write(name, text.replace(old, new))

    def line(self, name: str, needle: str) -> int:
        """The 1-based line of the single line of ``campaigns/<name>`` containing ``needle``
        (or, for ``^needle``, starting with it)."""
        lines = self.read(name).splitlines()
        if needle.startswith("^"):
            numbers = [n for n, line in enumerate(lines, start=1) if line.startswith(needle[1:])]
        else:
            numbers = [n for n, line in enumerate(lines, start=1) if needle in line]
        assert len(numbers) == 1, f"{needle!r} is on lines {numbers} of {name}"
        return numbers[0]

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSROOM_")}
        env["NEWSROOM_CATALOG_DIR"] = str(self.root)
        env.update(extra)
        return env

    def run(self, *args: str, **env: str) -> Result:
        """``python -m newsroom.cli validate ARGS`` as a real process."""
        done = subprocess.run(
            [sys.executable, "-m", "newsroom.cli", "validate", *args],
            cwd=self.workdir,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=60,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def invoke(self, *args: str) -> Result:
        """``newsroom validate ARGS`` in this process (the working directory is ``workdir``)."""
        assert Path.cwd().resolve() == self.workdir.resolve()
        result = CliRunner().invoke(cli, ["validate", *args], catch_exceptions=True)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Result(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CatalogCopy:
    monkeypatch.chdir(tmp_path)
    return CatalogCopy(tmp_path)


def campaign_yaml(
    campaign_id: str,
    channels: list[str],
    text: str,
    *,
    image: bool = True,
    at: str = "2027-09-15 10:00",
    deadline: str = "2027-09-13 12:00",
) -> str:
    """A minimal valid one-off campaign whose ``content.text`` is ``text`` (a block scalar)."""
    body = textwrap.indent(text, "    ")
    out = f"""\
id: {campaign_id}
title: Testkampagne
topic: Test
kind: service_information
requested_by: {{office: amt-kommunikation}}
approval:
  approvers:
    - person: benz
  deadline: "{deadline}"
slots:
  - at: "{at}"
    channels: [{", ".join(channels)}]
content:
  text: |
{body}
"""
    if image:
        out += """\
  images:
    - file: trikottag.jpg
      alt: "Grüne Grafik mit dem Wort „Trikottag“"
"""
    return out


FILLER = (
    "Die Wissenschaftsstadt Darmstadt informiert über Termine, Angebote und Neuigkeiten "
    "aus allen Stadtteilen. "
)


def filler(n: int) -> str:
    """``n`` characters of plain German text, no URLs, hashtags or trailing space."""
    text = (FILLER * (n // len(FILLER) + 2))[:n]
    if text.endswith(" "):
        text = text[:-1] + "."
    assert len(text) == n
    return text
