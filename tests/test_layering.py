"""The rooms keep their imports (docs/architecture.md, "The tree"): GitLab's parts never reach
into mockcoord's instrument, services never climb up into the wire layer, and nothing runs in
a circle. Every import counts: module level, inside functions and under ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "mockctl", "workhorse", "runner_client")
# The one module of app/ that may import the instrument: ``python -m app`` is the CLI's door.
APP_DOORS_TO_MOCKCTL = {"app/__main__.py"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> Iterator[str]:
    """Every module ``path`` names in an import, resolved to its absolute dotted name."""
    name = module_name(path) if path.is_relative_to(ROOT) else path.stem
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)  # ``from pkg import module``


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def offenders(package: str, forbidden: tuple[str, ...], allowed: set[str] = frozenset()) -> list[str]:
    found = []
    for path in sources(package):
        rel = str(path.relative_to(ROOT))
        if rel in allowed:
            continue
        for name in imported_modules(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{rel} imports {name}")
    return sorted(set(found))


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("workhorse", ("app", "mockctl", "runner_client")),  # it talks to Rails over HTTP, as the real one
        ("runner_client", ("app", "mockctl", "workhorse")),  # a runner knows only the wire
    ],
)
def test_gitlab_s_parts_stand_alone(package: str, forbidden: tuple[str, ...]) -> None:
    assert offenders(package, forbidden) == []


def test_rails_reaches_the_instrument_only_through_its_hook() -> None:
    """app/ offers ``app.instrumentation``; mockctl plugs into it. No import the other way."""
    assert offenders("app", ("mockctl",), APP_DOORS_TO_MOCKCTL) == []


def test_services_never_climb_into_the_wire_layer() -> None:
    assert offenders("app/services", ("app.api",)) == []


def import_graph(package: str) -> dict[str, set[str]]:
    modules = {module_name(p): p for p in sources(package)}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {m for m in imported_modules(path) if m in modules and m != name}
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str]:
    """One import circle (module names, the first repeated at the end), or [] when there is none.
    A module naming its own package is no edge: Python has imported the package first."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_circle(package: str) -> None:
    assert cycle_in(import_graph(package)) == []


def test_the_checks_see_a_circle_and_a_climb(tmp_path: Path) -> None:
    """The rules above would fail on the layout they replaced."""
    assert cycle_in({"a.client": {"a.upload"}, "a.upload": {"a.client"}}) == ["a.client", "a.upload", "a.client"]
    assert cycle_in({"a": {"a.b"}, "a.b": {"a"}}) == []
    climb = tmp_path / "climb.py"
    climb.write_text("def f():\n    from app.api import file_helpers\n")
    assert "app.api" in set(imported_modules(climb))
