"""A mistake on the command line is one clear line naming the file, field or flag, with exit
code 1 or 2: never a traceback. Nothing here reaches a network or starts a coordinator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mockctl.cli import cli
from mockctl.ports import free_port

BROKEN_YAML = "users: [alice\n"


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN_YAML)
    return path


def test_seed_names_a_broken_file(broken: Path) -> None:
    code, out = invoke("seed", str(broken), "--url", "http://127.0.0.1:9")
    assert code == 2
    assert out.strip() == f"{broken}: not valid YAML: expected ',' or ']', but got '<stream end>' (line 2, column 1)"


def test_serve_checks_its_scenario_before_starting(broken: Path, tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    code, out = invoke("serve", *data, "--scenario", str(broken))
    assert (code, out.count("\n")) == (2, 1)
    assert out.startswith(f"--scenario {broken}: not valid YAML")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("users: 3\n")
    code, out = invoke("serve", *data, "--scenario", str(wrong))
    assert (code, out.strip()) == (2, f"--scenario {wrong}: users: Input should be a valid list")
    code, out = invoke("serve", *data, "--scenario", str(tmp_path / "missing.yaml"))
    assert code == 2 and "'--scenario'" in out and "does not exist" in out
    assert not (tmp_path / "data").exists()  # nothing started


def test_register_refuses_the_docs_placeholder(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    code, out = invoke(
        "runner",
        "register",
        "--url",
        "http://127.0.0.1:9",
        "--registration-token",
        "GR1348941…",
        "--config",
        str(config),
    )
    assert code == 1
    assert "PANIC: --registration-token: 'GR1348941…' is not a token: it contains '…'" in out
    assert not config.exists()


def test_run_names_the_config_field_with_a_placeholder_token(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[runners]]\nname = "box"\nurl = "http://127.0.0.1:9"\ntoken = "glrt-…"\nexecutor = "shell"\n')
    code, out = invoke("runner", "run", "--config", str(config))
    assert code == 1
    assert f"FATAL: {config}: runners[0].token: 'glrt-…' is not a token" in out


@pytest.mark.parametrize("command", ["artifacts-uploader", "artifacts-downloader"])
def test_helpers_refuse_a_placeholder_job_token(command: str, tmp_path: Path) -> None:
    env = {"CI_SERVER_URL": "http://127.0.0.1:9", "CI_JOB_TOKEN": "glcbt-…", "CI_JOB_ID": "2"}
    code, out = (
        invoke(command, "--path", str(tmp_path), env=env)
        if command == "artifacts-uploader"
        else invoke(command, env=env)
    )
    assert code == 1
    assert "FATAL: --token (CI_JOB_TOKEN): 'glcbt-…' is not a token" in out


def test_troubleshoot_names_an_unknown_scenario() -> None:
    code, out = invoke("troubleshoot", "no-such-case")
    assert (code, out.strip()) == (2, "no-such-case: no such file, nor a scenario of `mockcoord troubleshoot`")


@pytest.mark.parametrize("command", ["serve", "rails"])
def test_a_wrong_or_unreachable_database_is_named_before_anything_starts(command: str, tmp_path: Path) -> None:
    unreachable = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x"
    ports = ["--port", str(free_port())]
    if command == "serve":
        ports += ["--rails-port", str(free_port()), "--s3-port", str(free_port())]
    for url, problem in (("nonsense://x", "Can't load plugin"), (unreachable, "Connect call failed")):
        # a process with a deadline: without the check, the servers would start and wait
        done = subprocess.run(
            [sys.executable, "-m", "app", command, "--data-dir", str(tmp_path), "--database-url", url, *ports],
            capture_output=True,
            text=True,
            timeout=60,
        )
        code, out = done.returncode, done.stdout + done.stderr
        assert code == 2 and out.count("\n") == 1, out
        assert out.startswith(f"--database-url {url}: ") and problem in out


def test_workhorse_names_a_missing_secret_file(tmp_path: Path) -> None:
    code, out = invoke("workhorse", "--secret-file", str(tmp_path / "missing"))
    words = " ".join(out.replace("│", " ").split())  # Rich wraps the panel at the temp path's length
    assert code == 2 and "'--secret-file'" in words and "does not exist" in words


def test_flows_names_an_unreachable_coordinator() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out = invoke("flows", "reproduce", "direct", "--url", url)
    assert (code, out.strip()) == (1, f"{url}: All connection attempts failed")
