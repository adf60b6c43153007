"""The python-gitlab example in docs/project_jobs_api.md runs, against this stack."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from tests.conftest import ADMIN_TOKEN
from tests.e2e.conftest import Stack
from tests.project_jobs.helpers import call

DOC = Path(__file__).resolve().parents[2] / "docs" / "project_jobs_api.md"
MARKER = "<!-- example: python-gitlab -->\n```python\n"


def example() -> str:
    text = DOC.read_text()
    start = text.index(MARKER) + len(MARKER)
    return text[start : text.index("```", start)]


async def test_the_documented_example_runs(stack: Stack) -> None:
    code = example()
    code = code.replace('URL = "http://127.0.0.1:3000"', f'URL = "{stack.url}"', 1)
    code = code.replace("glpat-mockcoord-admin-token", ADMIN_TOKEN, 1)
    out = io.StringIO()

    def run() -> None:
        with contextlib.redirect_stdout(out):
            exec(compile(code, str(DOC), "exec"), {})  # noqa: S102 - our own documentation

    await call(run)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("build success {'filename': 'artifacts.zip'")
    assert lines[1] == "b'<h1>hi</h1>\\n'"
    assert lines[3] == "['build']"
