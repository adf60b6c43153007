"""Nothing listening at the coordinator's address: the helpers name the refused connection in
gitlab-runner's words (Go's ``dial tcp HOST:PORT: connect: connection refused``), then end as
gitlab-runner does: the uploader (19.3+) with that transport error, the downloader with
``FATAL: invalid argument`` (``os.ErrInvalid`` for ``DownloadFailed``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mockctl.ports import free_port
from runner_client.cli import app


def refused_env() -> dict[str, str]:
    return {"CI_SERVER_URL": f"http://127.0.0.1:{free_port()}", "CI_JOB_TOKEN": "glcbt-refused", "CI_JOB_ID": "2"}


def test_uploader_ends_with_the_refused_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = refused_env()
    monkeypatch.chdir(tmp_path)
    Path("out.txt").write_text("x")
    result = CliRunner().invoke(app, ["artifacts-uploader", "--path", "out.txt"], env=env)
    assert result.exit_code == 1
    host = env["CI_SERVER_URL"].removeprefix("http://")
    url = f"{env['CI_SERVER_URL']}/api/v4/jobs/2/artifacts?"
    fatal = [line for line in result.output.splitlines() if line.startswith("FATAL: ")]
    assert fatal == [
        f'FATAL: couldn\'t execute POST against {url}: Post "{url}": dial tcp {host}: connect: connection refused '
    ]


def test_downloader_names_the_refused_connection_before_its_fatal(tmp_path: Path) -> None:
    env = refused_env()
    result = CliRunner().invoke(app, ["artifacts-downloader", "--retry", "0", "--target-dir", str(tmp_path)], env=env)
    assert result.exit_code == 1
    host = env["CI_SERVER_URL"].removeprefix("http://")
    error = next(line for line in result.output.splitlines() if line.startswith("ERROR: "))
    assert f'error Get "{env["CI_SERVER_URL"]}/api/v4/jobs/2/artifacts?direct_download=true": dial tcp {host}:' in error
    assert "connect: connection refused" in error
    assert result.output.splitlines()[-1].strip() == "FATAL: invalid argument"
