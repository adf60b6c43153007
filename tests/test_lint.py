"""The tree stays ruff clean (lint and format), as the style guide asks."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]])
def test_ruff(command: list[str]) -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    out = subprocess.run([ruff, *command], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


# Package -> top-level packages it must never import. Workhorse is plain GitLab Workhorse: mockcoord's
# instrument (mockctl) reaches it only through workhorse/instrumentation.py, plugged in from mockctl/workhorse.py.
LAYERS = {"workhorse": ("app", "mockctl"), "runner_client": ("app", "workhorse")}


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """Every absolute module an import statement names, wherever it stands (functions,
    ``if TYPE_CHECKING:``): ``import a.b`` gives ``a.b``, ``from a.b import c`` gives ``a.b``."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def layer_offenders(root: Path) -> list[str]:
    offenders = []
    for package, forbidden in LAYERS.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, module in imported_modules(path):
                if module.split(".")[0] in forbidden:
                    offenders.append(f"{path.relative_to(root)}:{line}: {module}")
    return offenders


def test_layers_keep_their_imports() -> None:
    """workhorse/ imports neither app/ nor mockctl/; runner_client/ neither app/ nor workhorse/ (they talk HTTP)."""
    assert layer_offenders(ROOT) == []
