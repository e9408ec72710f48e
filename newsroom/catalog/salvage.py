"""Keep what parsed when part of a file has the wrong shape, so one run reports every error.

pydantic refuses a whole model for one bad field: a single image without alt text makes
all of ``content`` invalid, and every check after it (channels, approvers, rendering)
would have waited for the next run. :func:`salvage` reports pydantic's errors of the file
as written and then removes, for each error, the smallest part around it that can go
(a list item, an optional field, a mapping entry), validates again, and remembers what
it removed. A required section that cannot go is left out (None in the model).

The checks ask :meth:`Salvaged.intact` before they read a part. A check that would read
a removed part (or the default that took its place) is skipped, so an error never brings
errors that follow from it.
"""

from __future__ import annotations

import copy
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError, create_model
from pydantic_core import ErrorDetails

Path_ = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

# Each round removes what the last refused; removing can expose a parent's rule (a slot
# without its only timing field), so a few rounds.
MAX_ROUNDS = 8


@dataclass
class Salvaged(Generic[M]):
    """``model`` built from what was left; ``removed`` in the file's own paths."""

    model: M
    errors: list[ErrorDetails]  # pydantic's errors of the file as written
    removed: set[Path_] = field(default_factory=set)
    # For each list that lost items (by its path in the file): the file's index of each
    # item the model still has, so `model.slots[1]` can be reported as `slots[2]`.
    kept: dict[Path_, list[int]] = field(default_factory=dict)

    def intact(self, *path: str | int) -> bool:
        """Whether nothing at, inside or around ``path`` was removed (paths of the model)."""
        here = self.original(tuple(path))
        return not any(_overlaps(here, gone) for gone in self.removed)

    def original(self, path: Path_) -> Path_:
        """The file's path of the model's ``path`` (list indices shifted back)."""
        out: Path_ = ()
        for part in path:
            if isinstance(part, int) and out in self.kept and 0 <= part < len(self.kept[out]):
                part = self.kept[out][part]
            out = (*out, part)
        return out


def _overlaps(a: Path_, b: Path_) -> bool:
    n = min(len(a), len(b))
    return a[:n] == b[:n]


def salvage(model: type[M], data: Any) -> Salvaged[M] | None:
    """``model`` from ``data`` with the refused parts removed; None if nothing is left."""
    try:
        return Salvaged(model.model_validate(data), [])
    except ValidationError as exc:
        first = exc.errors()
    if not isinstance(data, dict):
        return None
    result: Salvaged[M] = Salvaged(model.model_construct(), first)
    work = copy.deepcopy(data)
    errors = first
    stood_in: set[str] = set()
    for _ in range(MAX_ROUNDS):
        targets: dict[Path_, str] = {}
        for error in errors:
            loc = tuple(p for p in error["loc"] if isinstance(p, (str, int)))
            target = _target(model, work, loc, missing=error["type"] == "missing")
            if target is None:
                return None
            targets[target[0]] = target[1]
        for path in _outermost_last(targets):
            result.removed.add(result.original(path))
            if targets[path] == "stand-in":
                stood_in.add(str(path[0]))
                work.pop(path[0], None)
            else:
                _remove(work, path, result)
        try:
            result.model = _without(model, stood_in).model_validate(work)
            return result
        except ValidationError as exc:
            errors = exc.errors()
    return None


def _without(model: type[M], names: set[str]) -> type[M]:
    """``model`` whose required fields ``names`` may be absent (None): the stand-ins."""
    if not names:
        return model
    by_alias = {(info.alias or key): key for key, info in model.model_fields.items()}
    overrides: dict[str, Any] = {by_alias.get(n, n): (Any, None) for n in names}
    return create_model(model.__name__, __base__=model, **overrides)


def _target(
    model: type[BaseModel], work: Any, loc: Path_, *, missing: bool
) -> tuple[Path_, str] | None:
    """What to remove for an error at ``loc``: the deepest removable part, or a stand-in."""
    start = loc[:-1] if missing else loc
    for end in range(len(start), 0, -1):
        path = start[:end]
        if _exists(work, path) and _removable(model, path):
            return path, "remove"
    top = loc[:1]
    if top and isinstance(top[0], str) and top[0] in fields_by_alias(model):
        return top, "stand-in"
    return None


def _exists(work: Any, path: Path_) -> bool:
    current = work
    for part in path:
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
        else:
            return False
    return True


def _removable(model: type[BaseModel], path: Path_) -> bool:
    """A list item, a mapping entry, an optional or unknown field: it can go."""
    if isinstance(path[-1], int):
        return True
    parent = _annotation_at(model, path[:-1])
    if isinstance(parent, type) and issubclass(parent, BaseModel):
        info = fields_by_alias(parent).get(path[-1])
        return info is None or not info.is_required()
    return typing.get_origin(parent) is dict or parent is Any


def _annotation_at(model: type[BaseModel], path: Path_) -> Any:
    current: Any = model
    for part in path:
        current = unwrap_optional(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = fields_by_alias(current).get(str(part))
            current = info.annotation if info else Any
        else:
            args = typing.get_args(current)
            current = args[-1] if args else Any
    return unwrap_optional(current)


def fields_by_alias(model: type[BaseModel]) -> dict[str, Any]:
    """A model's fields under the names a YAML file uses (their aliases)."""
    return {(info.alias or key): info for key, info in model.model_fields.items()}


def unwrap_optional(annotation: Any) -> Any:
    """``X | None`` (also nested) as ``X``; any other annotation unchanged."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return unwrap_optional(args[0]) if len(args) == 1 else annotation
    return annotation


def _sort_key(path: Path_) -> tuple:
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in path)


def _outermost_last(targets: dict[Path_, str]) -> list[Path_]:
    """Targets not inside another, later list items first (earlier indices stay valid)."""
    paths = [p for p in targets if not any(q != p and p[: len(q)] == q for q in targets)]
    return sorted(paths, key=_sort_key, reverse=True)


def _remove(work: Any, path: Path_, result: Salvaged) -> None:
    container = work
    for part in path[:-1]:
        container = container[part]
    last = path[-1]
    if isinstance(container, list) and isinstance(last, int):
        original = result.original(path[:-1])
        kept = result.kept.setdefault(original, list(range(len(container))))
        kept.pop(last)
    del container[last]
