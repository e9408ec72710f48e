"""A fresh machine gets what CI tested: `make` installs requirements.lock (exact versions,
with hashes), so the lock must hold every requirement of pyproject.toml's dependencies and
its test extra at a version the specifier allows — a dependency added to pyproject.toml
without `make lock` fails here, not on someone else's machine. Prefect is pinned to one
minor version (docs/PREFECT-UPGRADE.md), and the lock to that same minor. And what
newsroom/, flows/ and tasks/ import comes from the runtime dependencies, not from an extra
that only the tests install."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCKED_EXTRAS = ("test",)
OWN_PACKAGES = ("newsroom", "flows", "tasks")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _runtime_requirements() -> list[Requirement]:
    return [Requirement(line) for line in _project()["dependencies"]]


def _locked_requirements() -> list[Requirement]:
    extras = _project()["optional-dependencies"]
    lines = list(_project()["dependencies"])
    for extra in LOCKED_EXTRAS:
        lines += extras[extra]
    return [Requirement(line) for line in lines]


def _lock() -> dict[str, list[tuple[Version, Requirement]]]:
    """Each package of requirements.lock with its pins: more than one where the lock forks
    by environment marker (e.g. another version for a newer Python)."""
    pins: dict[str, list[tuple[Version, Requirement]]] = {}
    entry: Requirement | None = None
    hashes = 0
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith((" ", "\t")):
            hashes += "--hash=" in line
            continue
        if entry is not None:
            assert hashes, f"requirements.lock: {entry} has no --hash (pip refuses it)"
        entry, hashes = Requirement(line.removesuffix("\\").strip()), 0
        (specifier,) = entry.specifier
        assert specifier.operator == "==", f"requirements.lock: {line} is not an exact pin"
        pins.setdefault(canonicalize_name(entry.name), []).append(
            (Version(specifier.version), entry))
    assert entry is not None and hashes, "requirements.lock: empty, or its last entry unhashed"
    return pins


def _requires(name: str) -> list[str]:
    """An installed distribution's requirements; none for one not installed yet (a new
    dependency before `make lock`, which the lock test names)."""
    try:
        return importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return []


def _extra_packages(requirement: Requirement) -> set[str]:
    """The packages an extra like ``psycopg[binary]`` adds, read from the installed
    distribution's metadata (no network)."""
    added = set()
    for line in _requires(requirement.name):
        dependency = Requirement(line)
        if dependency.marker is None:
            continue
        if any(dependency.marker.evaluate({"extra": extra}) for extra in requirement.extras) \
                and not dependency.marker.evaluate({"extra": ""}):
            added.add(canonicalize_name(dependency.name))
    return added


def test_the_lock_holds_every_requirement_at_an_allowed_version():
    lock = _lock()
    assert len(lock) > 50  # the parser read the file
    problems = []
    for requirement in _locked_requirements():
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        if name not in lock:
            problems.append(f"{requirement}: not in requirements.lock")
            continue
        for version, pin in lock[name]:
            if not requirement.specifier.contains(version, prereleases=True):
                problems.append(f"{requirement}: the lock has {pin}")
        for extra_package in _extra_packages(requirement):
            if extra_package not in lock:
                problems.append(f"{requirement}: {extra_package} not in requirements.lock")
    assert not problems, ("requirements.lock does not match pyproject.toml; run `make lock`:\n"
                          + "\n".join(problems))


def test_prefect_is_pinned_to_one_minor_and_the_lock_to_that_minor():
    (prefect,) = [r for r in _runtime_requirements() if canonicalize_name(r.name) == "prefect"]
    lower = [Version(s.version) for s in prefect.specifier if s.operator == ">="]
    upper = [Version(s.version) for s in prefect.specifier if s.operator == "<"]
    assert len(lower) == 1 and len(upper) == 1, f"{prefect}: want >=X.Y.Z,<X.(Y+1)"
    major, minor = lower[0].release[:2]
    assert upper[0].release == (major, minor + 1), f"{prefect}: more than one minor version"
    locked = [version for version, _ in _lock()["prefect"]]
    assert locked and all(v.release[:2] == (major, minor) for v in locked), (
        f"pyproject.toml pins Prefect {major}.{minor}, requirements.lock has {locked}")


def _runtime_distributions() -> set[str]:
    """The runtime dependencies and everything they pull in, by the installed metadata."""
    seen: set[str] = set()
    todo = [(r, ()) for r in _runtime_requirements()]
    while todo:
        requirement, extras = todo.pop()
        if requirement.marker is not None and not any(
                requirement.marker.evaluate({"extra": extra}) for extra in ("", *extras)):
            continue
        name = canonicalize_name(requirement.name)
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        for line in _requires(name):
            todo.append((Requirement(line), tuple(requirement.extras)))
    return {key.split("[")[0] for key in seen}


def _third_party_imports() -> dict[str, str]:
    """Top-level module name -> first file:line importing it, function-local imports too."""
    found: dict[str, str] = {}
    for package in OWN_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in OWN_PACKAGES:
                        continue
                    found.setdefault(top, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_runtime_code_imports_only_runtime_dependencies():
    runtime = _runtime_distributions()
    providers = importlib.metadata.packages_distributions()
    imports = _third_party_imports()
    assert "prefect" in imports  # the walk found the imports
    outside = []
    for module, where in sorted(imports.items()):
        distributions = {canonicalize_name(d) for d in providers.get(module, [])}
        if not distributions & runtime:
            outside.append(f"{where}: {module} ({', '.join(sorted(distributions)) or '?'})")
    assert not outside, ("imported at run time but not a runtime dependency in "
                         "pyproject.toml (only in an extra, or not declared):\n"
                         + "\n".join(outside))
