"""The picture of imports points one way (docs/ARCHITECTURE.md).

Read from the source (``ast``), not by importing: every import of a project module by a
project module (newsroom, flows, tasks), at module level or inside a function — an import
inside a function that closes a cycle only hides it. Imports under ``if TYPE_CHECKING:``
never run and do not count.

- no cycle among the project's modules;
- the domain core (``newsroom`` without ``newsroom.cli`` and ``newsroom.orchestration``)
  imports neither Prefect nor ``flows``/``tasks`` nor the command line, except where this
  file names the one place and why;
- no module imports another module's underscore name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("newsroom", "flows", "tasks")
OUTSIDE_THE_CORE = ("newsroom.cli", "newsroom.orchestration")
# The core's only door to Prefect, and why it is one.
CORE_USES_OF_PREFECT = {
    ("newsroom.channels.credentials", "prefect.blocks.system"):
        "a channel credential may live in a Prefect Secret block (registry: "
        "credential.secret_block); loaded only when one is named",
    ("newsroom.channels.credentials", "newsroom.orchestration.prefect_internals"):
        "the same door, synchronously: Secret.load(_sync=True) is private Prefect API, "
        "named only in the adapter",
}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    names: tuple[str, ...]


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.Module):
    """Every import statement that runs (TYPE_CHECKING blocks left out)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(child for child in ast.iter_child_nodes(node)
                     if isinstance(child, ast.stmt | ast.ExceptHandler))


def _nearest_module(name: str) -> str | None:
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[tuple[str, tuple]]:
    """(absolute name, imported names) for one statement."""
    if isinstance(node, ast.Import):
        return [(alias.name, ()) for alias in node.names]
    if node.level:
        package = module.split(".")
        if MODULES[module].name != "__init__.py":
            package = package[:-1]
        package = package[:len(package) - node.level + 1]
        base = ".".join(package + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    targets = []
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        targets.append((submodule, ()) if submodule in MODULES else (base, (alias.name,)))
    return targets


def _edges() -> list[Edge]:
    edges = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _imports(tree):
            for name, names in _targets(module, node):
                edges.append(Edge(module, name, node.lineno, names))
    return edges


EDGES = _edges()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _project_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for edge in EDGES:
        target = _nearest_module(edge.target)
        if target is not None and target != edge.source:
            graph[edge.source].add(target)
    return graph


def _in_core(module: str) -> bool:
    return module.startswith("newsroom") and not any(
        module == outside or module.startswith(outside + ".") for outside in OUTSIDE_THE_CORE)


def test_the_graph_is_read_from_the_whole_project():
    # The reading itself works: the known layers are there, with imports between them.
    graph = _project_graph()
    assert len(MODULES) > 100
    assert "newsroom.delivery" in graph["newsroom.crisis"]
    assert "newsroom.freeze" in graph["newsroom.delivery"]
    assert "newsroom.cli.crisis" in graph["newsroom.cli.main"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle():
    graph = _project_graph()
    cycles = _cycles(graph)
    where: list[str] = []
    for cycle in cycles:
        members = set(cycle)
        where += [f"  {edge.source} -> {_nearest_module(edge.target)} "
                  f"({MODULES[edge.source].relative_to(ROOT)}:{edge.line})"
                  for edge in EDGES
                  if edge.source in members and _nearest_module(edge.target) in members
                  and _nearest_module(edge.target) != edge.source]
    where = sorted(set(where))
    assert not cycles, ("import cycles (move what both sides need into a module below "
                        "them):\n" + "\n".join(where))


def test_the_core_imports_neither_prefect_nor_flows_nor_the_command_line():
    found = {}
    for edge in EDGES:
        if not _in_core(edge.source):
            continue
        top = edge.target.split(".")[0]
        if top in ("prefect", "flows", "tasks") or not _in_core(edge.target) and (
                edge.target.startswith("newsroom.")):
            found.setdefault((edge.source, edge.target), edge.line)
    unexpected = {key: line for key, line in found.items() if key not in CORE_USES_OF_PREFECT}
    assert not unexpected, "the domain core imports the outer layers:\n" + "\n".join(
        f"  {MODULES[source].relative_to(ROOT)}:{line}: {target}"
        for (source, target), line in unexpected.items())
    gone = set(CORE_USES_OF_PREFECT) - set(found)
    assert not gone, f"no longer imported; remove from CORE_USES_OF_PREFECT: {gone}"


def test_only_flows_import_tasks_and_nothing_imports_flows():
    # flows/ holds the flows and tasks/ their tasks; everything else (the core, the
    # infrastructure in newsroom.orchestration, the command line, the web app) reaches a
    # flow only through its deployment (prefect.yaml), never by import.
    wrong = [f"  {MODULES[edge.source].relative_to(ROOT)}:{edge.line}: {edge.target}"
             for edge in EDGES
             if (edge.target.split(".")[0] == "flows" and not edge.source.startswith("flows"))
             or (edge.target.split(".")[0] == "tasks"
                 and not edge.source.startswith(("flows", "tasks")))]
    assert not wrong, "imports of flows/tasks from outside them:\n" + "\n".join(wrong)


def _module_aliases(module: str, tree: ast.Module) -> dict[str, str]:
    """Names in ``module`` bound to a project module by an import (``from newsroom import
    approval``, ``import newsroom.store as store``)."""
    aliases = {}
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    aliases[alias.asname or alias.name.split(".")[0]] = alias.name
            continue
        for (name, names), alias in zip(_targets(module, node), node.names, strict=True):
            if not names and name in MODULES:
                aliases[alias.asname or alias.name] = name
    return aliases


def test_no_module_reads_another_modules_private_name():
    found = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        aliases = _module_aliases(module, tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                found.append(f"  {path.relative_to(ROOT)}:{node.lineno}: "
                             f"{aliases[node.value.id]}.{node.attr}")
    assert not found, "make the name public where another module needs it:\n" + "\n".join(
        found)


def test_no_module_imports_another_modules_private_name():
    private = [f"  {MODULES[edge.source].relative_to(ROOT)}:{edge.line}: "
               f"{edge.target}.{name}"
               for edge in EDGES if _nearest_module(edge.target)
               for name in edge.names if name.startswith("_") and not name.startswith("__")]
    assert not private, "make the name public where two modules need it:\n" + "\n".join(
        private)
