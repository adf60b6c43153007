"""The short loadtest runs' helpers, and one real ``compare`` run shared by the tests that read its
report (the figures in ``test_loadtest``, the page in a browser in ``test_report_in_browser``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mockctl.cli import cli

SHORT = ("--users", "2", "--duration", "1s", "--artifact-size", "1MiB")


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["loadtest", *args], env={"COLUMNS": "200"})
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def report_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "report.json").read_text())


@dataclass
class Run:
    out: Path  # report.json, report.html, ...
    code: int
    output: str


@pytest.fixture(scope="package")
def compare_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """``mockcoord loadtest --mode compare`` on a stack it starts: a few seconds, run once."""
    out = tmp_path_factory.mktemp("loadtest-compare")
    return Run(out, *invoke("--mode", "compare", *SHORT, "--out", str(out)))
