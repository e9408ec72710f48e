"""Read YAML and remember the line of every value, so errors can point at it.

PyYAML's composer gives each node its position; we build plain Python data from the
nodes ourselves and keep a map from the path of each value (``("slots", 0, "at")``) to its
line. Timestamps are kept as strings: times are parsed by :mod:`newsroom.timeutil`,
which knows about Europe/Berlin, not by YAML, which does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from newsroom.errors import NewsroomError

Path_ = tuple[str | int, ...]

# Aliases (*name) are expanded; a file that expands to more values than this is refused
# rather than built ("billion laughs"). Campaign files have a few hundred.
MAX_VALUES = 100_000


class _Loader(yaml.SafeLoader):
    pass


# Drop the implicit timestamp resolver: "2027-01-27 09:00" must stay a string.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class YamlProblem(NewsroomError):
    def __init__(self, message: str, line: int, hint: str):
        self.line = line
        self.hint = hint
        super().__init__(message)


@dataclass
class SourceDocument:
    """Parsed YAML plus the line of each value's key (1-based)."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    duplicate_keys: list[tuple[Path_, int]] = field(default_factory=list)
    # The first content line of each literal block scalar (``text: |``), so a line in a
    # template can be mapped to a line of the file.
    literal_blocks: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int:
        """The line of the value at ``path``, or of its nearest parent that has one."""
        path = tuple(p for p in path if isinstance(p, (str, int)))
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


def parse_yaml(text: str) -> SourceDocument:
    try:
        loader = _Loader(text)  # the reader checks the first characters already
    except yaml.reader.ReaderError as exc:
        raise _reader_problem(exc, text) from None
    try:
        node = loader.get_single_node()
    except yaml.reader.ReaderError as exc:
        raise _reader_problem(exc, text) from None
    except RecursionError:
        raise YamlProblem(
            "YAML nests too deeply", 1, "write the file as plain `key: value` lines"
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        raise YamlProblem(
            f"YAML syntax error: {problem}{context}",
            line,
            _yaml_hint(problem),
        ) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(
            f"YAML error: {exc}", 1, "check the file's indentation and quoting"
        ) from None
    finally:
        loader.dispose()
    doc = SourceDocument(data=None)
    if node is None:
        doc.data = None
        return doc
    doc.lines[()] = node.start_mark.line + 1
    try:
        doc.data = _build(node, (), doc, loader, [0], set())
    except RecursionError:
        raise YamlProblem(
            "YAML nests too deeply", 1, "write the file as plain `key: value` lines"
        ) from None
    return doc


def _reader_problem(exc: yaml.reader.ReaderError, text: str) -> YamlProblem:
    """A character YAML does not accept (a control character, say) at its line."""
    line = text[: max(exc.position, 0)].count("\n") + 1
    return YamlProblem(
        f"the file contains a character YAML does not allow (#x{exc.character:04x})",
        line,
        "delete it (most editors do not show it) or write it as an escape in double quotes",
    )


def _yaml_hint(problem: str) -> str:
    if "tab" in problem or "'\\t'" in problem:
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in problem:
        return "a value containing ': ' must be quoted, e.g. text: \"Achtung: Sturm\""
    if "could not find expected ':'" in problem:
        return "every key needs a colon; check the line above for a missing colon or quote"
    if "found character" in problem and "start" in problem:
        return "quote values that begin with special characters such as @, ` or %"
    return "check indentation (spaces only) and that quotes are closed"


def _build(
    node: yaml.Node,
    path: Path_,
    doc: SourceDocument,
    loader: _Loader,
    count: list[int],
    active: set[int],
) -> Any:
    """Plain data from ``node``; ``count`` values built so far, ``active`` the nodes above."""
    count[0] += 1
    if count[0] > MAX_VALUES:
        raise YamlProblem(
            f"the file expands to more than {MAX_VALUES} values",
            node.start_mark.line + 1,
            "do not repeat aliases (*name) inside aliases; write the values out",
        )
    if id(node) in active:
        raise YamlProblem(
            "an alias (*name) refers to the value it is part of",
            node.start_mark.line + 1,
            "remove the alias or the anchor (&name)",
        )
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        active.add(id(node))
        try:
            return _build_collection(node, path, doc, loader, count, active)
        finally:
            active.discard(id(node))
    if isinstance(node, yaml.ScalarNode) and node.style == "|":
        doc.literal_blocks[path] = node.start_mark.line + 2
    return _construct(node, loader)


def _construct(node: yaml.Node, loader: _Loader) -> Any:
    try:
        value = loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as exc:
        raise YamlProblem(
            f"YAML value cannot be read: {exc.problem}",
            node.start_mark.line + 1,
            "remove the YAML tag (the word starting with !) and write a plain value",
        ) from None
    if isinstance(value, str) and any("\ud800" <= c <= "\udfff" for c in value):
        # "\ud83c\udf89" (JSON's way of writing 🎉) gives two halves, not one character.
        try:
            return value.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            raise YamlProblem(
                "the text contains an escape \\uD800–\\uDFFF that is half a character",
                node.start_mark.line + 1,
                "write the character itself, or as \\U0001F389 (eight digits); a lone "
                "\\uD83C is only half of one",
            ) from None
    return value


def _build_collection(
    node: yaml.Node,
    path: Path_,
    doc: SourceDocument,
    loader: _Loader,
    count: list[int],
    active: set[int],
) -> Any:
    if isinstance(node, yaml.MappingNode):
        try:
            loader.flatten_mapping(node)
        except yaml.constructor.ConstructorError as exc:
            mark = exc.problem_mark or node.start_mark
            raise YamlProblem(
                f"YAML merge (<<) cannot be read: {exc.problem}",
                mark.line + 1,
                "write the fields out instead of merging with <<",
            ) from None
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(key_node, loader) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key_node, yaml.ScalarNode) or (
                not isinstance(key, (str, int, bool, float)) and key is not None
            ):
                raise YamlProblem(
                    "a key must be a plain word",
                    key_node.start_mark.line + 1,
                    "write keys as simple names such as title: or channels:",
                )
            key = str(key) if not isinstance(key, str) else key
            child = (*path, key)
            line = key_node.start_mark.line + 1
            if key in result:
                doc.duplicate_keys.append((child, line))
            doc.lines[child] = line
            result[key] = _build(value_node, child, doc, loader, count, active)
        return result
    items = []
    for index, item_node in enumerate(node.value):
        child = (*path, index)
        doc.lines[child] = item_node.start_mark.line + 1
        items.append(_build(item_node, child, doc, loader, count, active))
    return items
