"""Reading one catalog file: its YAML document, the model read from it, every shape
error of pydantic's said in the catalog's terms (field, fault, fix), and the collector of a
file's issues at the file's lines.

The bottom of the catalog's checks (:mod:`.validation`): it imports none of them.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import CatalogIssue, relative_path
from .salvage import Salvaged, fields_by_alias, salvage, unwrap_optional
from .yamlsource import SourceDocument, YamlProblem, parse_yaml

MAX_FILE_BYTES = 1_000_000


class Collector:
    """Issues of one file. With ``salvaged``, paths are the model's and are reported at
    the file's own (a list that lost an item numbers the rest differently)."""

    def __init__(
        self, path: Path, doc: SourceDocument | None = None, salvaged: Salvaged | None = None
    ):
        self.file = relative_path(path)
        self.doc = doc
        self.salvaged = salvaged
        self.issues: list[CatalogIssue] = []

    def add(
        self,
        where: tuple[str | int, ...] | int,
        message: str,
        hint: str = "",
        *,
        severity: str = "error",
    ) -> None:
        if isinstance(where, int):
            line, dotted = where, ""
        else:
            where = self.salvaged.original(where) if self.salvaged else where
            line = self.doc.line_of(where) if self.doc else 1
            dotted = dotted_path(where)
        self.issues.append(CatalogIssue(self.file, line, message, hint, dotted, severity))


def dotted_path(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_document(path: Path, collector: Collector) -> SourceDocument | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            collector.add(1, "file is larger than 1 MB", "split it or remove embedded data")
            return None
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        collector.add(1, f"file is not UTF-8 text ({exc.reason})", "save it as UTF-8")
        return None
    except OSError as exc:
        collector.add(1, f"cannot read the file: {exc.strerror}",
                      "check that it exists and is readable")
        return None
    try:
        doc = parse_yaml(text)
    except YamlProblem as exc:
        collector.add(exc.line, str(exc), exc.hint)
        return None
    collector.doc = doc
    for key_path, line in doc.duplicate_keys:
        collector.add(line, f"`{dotted_path(key_path)}` is given twice",
                      "keep one of them; YAML would silently use the last")
    if not isinstance(doc.data, dict):
        collector.add(1, "the file must be a mapping of fields (key: value)",
                      "start with `id: …` on the first line")
        return None
    return doc


@dataclass
class Read:
    """A file's document and what of it could be read (:mod:`.salvage`)."""

    doc: SourceDocument
    salvaged: Salvaged

    @property
    def model(self) -> Any:
        return self.salvaged.model


def model_from(model: type[BaseModel], doc: SourceDocument, collector: Collector) -> Read | None:
    """Report every shape error of ``doc``; what could still be read, or None."""
    salvaged = salvage(model, doc.data)
    errors: list[Any]
    if salvaged is not None:
        errors = salvaged.errors
    else:
        try:
            model.model_validate(doc.data)
            errors = []
        except ValidationError as exc:
            errors = exc.errors()
    for error in errors:
        _report_pydantic(error, model, doc, collector)
    return Read(doc, salvaged) if salvaged is not None else None


def _report_pydantic(
    error: Mapping[str, Any], model: type[BaseModel], doc: SourceDocument, out: Collector
) -> None:
    loc = tuple(p for p in error["loc"] if isinstance(p, (str, int)))
    kind = error["type"]
    name = str(loc[-1]) if loc else ""
    if kind == "missing":
        fields = _fields_at(model, loc[:-1])
        description = fields.get(name, "")
        out.add(
            loc[:-1] if loc[:-1] else 1,
            f"required field `{name}` is missing"
            + (f" under `{dotted_path(loc[:-1])}`" if loc[:-1] else ""),
            f"add `{name}:`" + (f" ({description})" if description else ""),
        )
        return
    if kind == "extra_forbidden":
        allowed = list(_fields_at(model, loc[:-1]))
        close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
        hint = f"did you mean `{close[0]}`?" if close else ""
        hint = (hint + " " if hint else "") + "allowed here: " + ", ".join(allowed)
        out.add(loc, f"unknown field `{name}`", hint)
        return
    value = error.get("input")
    if kind == "enum":
        expected = error.get("ctx", {}).get("expected", "")
        options = [o.strip(" '") for o in expected.replace(" or ", ",").split(",") if o.strip(" '")]
        close = difflib.get_close_matches(str(value), options, n=1)
        hint = ((f"did you mean `{close[0]}`? " if close else "")
                + f"use one of: {', '.join(options)}")
        out.add(loc, f"{value!r} is not a valid value", hint)
        return
    if kind == "string_pattern_mismatch":
        out.add(loc, f"{value!r} is not a valid id",
                "use lower-case letters, digits and hyphens, e.g. trikottag-2027")
        return
    if kind == "value_error":
        message = error["msg"].removeprefix("Value error, ")
        out.add(loc, message, "")
        return
    if kind in ("too_short",) and isinstance(value, list):
        out.add(loc, f"`{name}` must not be empty", f"list at least one entry under `{name}`")
        return
    shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    out.add(loc, f"{error['msg'].lower()} (got {shown})", _type_hint(kind))


def _type_hint(kind: str) -> str:
    return {
        "string_type": "write text; quote it if it looks like a number or date",
        "int_parsing": "write a whole number",
        "int_type": "write a whole number",
        "bool_parsing": "write true or false",
        "list_type": "write a list: one `- item` per line",
        "dict_type": "write a mapping: `key: value` lines indented below",
        "model_type": "write a mapping: `key: value` lines indented below",
        "greater_than_equal": "use a larger number",
    }.get(kind, "check the value against the campaign file reference in README.md")


def _fields_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> dict[str, str]:
    """Field names (with a short description) allowed at ``loc`` inside ``model``."""
    current: Any = model
    for part in loc:
        current = unwrap_optional(current)
        if isinstance(part, int):
            args = typing.get_args(current)
            current = args[0] if args else Any
        elif isinstance(current, type) and issubclass(current, BaseModel):
            info = fields_by_alias(current).get(part)
            current = info.annotation if info else Any
        else:
            args = typing.get_args(current)
            current = args[-1] if args else Any
    current = unwrap_optional(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return {
            (info.alias or key): ("optional" if not info.is_required() else "required")
            for key, info in current.model_fields.items()
        }
    return {}
