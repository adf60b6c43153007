"""Every case of GitLab's troubleshooting page: its scenario shows the page's symptom, and
the page's fix makes the same upload succeed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mockctl import troubleshooting
from mockctl.cli import cli

SCENARIOS = troubleshooting.available()


def test_every_request_path_case_of_the_page_has_a_scenario() -> None:
    sections = {troubleshooting.load(path).section for path in SCENARIOS}
    assert sections == {
        "`413 Request Entity Too Large` error",
        "Job artifact upload fails with error 500",
        "Job artifact upload fails with `500 Internal Server Error (Missing file)`",
        "Job artifacts fail to upload with `FATAL: invalid argument` when using Windows mount",
    }
    page = Path(__file__).resolve().parents[3] / "shared/reference/gitlab-job-artifacts-troubleshooting.md"
    if page.exists():
        headings = {line.lstrip("#").strip() for line in page.read_text().splitlines() if line.startswith("## ")}
        assert sections <= headings


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
async def test_symptom_and_fix(path: Path) -> None:
    case = troubleshooting.load(path)
    broken, fixed = await asyncio.gather(troubleshooting.run(case), troubleshooting.run(case, fixed=True))
    assert broken.missing(case.symptom) == [], broken.runner + broken.workhorse[-6:]
    assert fixed.missing(case.fix.expect) == [], fixed.runner
    assert broken.exit_code == 1 and fixed.exit_code == 0


def test_expectations_must_appear_in_order() -> None:
    outcome = troubleshooting.Outcome(runner=["a b", "c"], workhorse=[], exit_code=1)
    assert outcome.missing(troubleshooting.Expectation(runner=["a", "b", "c"], exit_code=1)) == []
    assert outcome.missing(troubleshooting.Expectation(runner=["c", "a"], exit_code=1)) == ["runner: a"]
    assert outcome.missing(troubleshooting.Expectation(exit_code=0)) == ["exit code 1, expected 0"]


def test_cli_lists_and_runs_a_scenario() -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["troubleshoot"])
    assert listed.exit_code == 0
    assert "413-maximum-artifacts-size.yaml  413 from the maximum artifacts size" in listed.output
    ran = runner.invoke(cli, ["troubleshoot", str(SCENARIOS[0])])
    assert ran.exit_code == 0, ran.output
    assert "413 Request Entity Too Large" in ran.output and "✓ symptom reproduced" in ran.output


def test_cli_names_what_is_wrong_in_a_scenario_file(tmp_path: Path) -> None:
    data = yaml.safe_load(SCENARIOS[0].read_text())
    data["upload"]["sise"] = "1MiB"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(cli, ["troubleshoot", str(bad)])
    assert res.exit_code == 2 and "upload.sise" in res.output


async def test_a_job_missing_from_the_seed_is_named() -> None:
    case = troubleshooting.load(SCENARIOS[0]).model_copy(deep=True)
    case.upload.job = "deploy"
    with pytest.raises(ValueError, match="upload.job: no job named 'deploy'"):
        await troubleshooting.run(case)
