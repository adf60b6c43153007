"""``--help`` of every ``mockcoord`` command reads as click's: no Python type placeholders, real
help texts for the commands the README features, the default ports shown."""

from __future__ import annotations

import re

import pytest
import typer.main
from typer.testing import CliRunner

from mockctl.cli import cli


def command_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(cli), [])
    return paths


def help_of(*path: str) -> str:
    result = CliRunner().invoke(cli, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "mockcoord")
def test_no_python_type_placeholders(path: list[str]) -> None:
    text = help_of(*path)
    assert not re.search(r"<(str|int|float|bool|path|file|list\[[^\]]*\])>", text), text
    assert "{" not in text.splitlines()[1]  # the usage line: FILE, not {file}
    assert "(internal)" not in text


def test_flags_have_no_metavar_and_values_read_as_click() -> None:
    text = help_of("artifacts-uploader")
    assert re.search(r"--untracked\s+Add git untracked files", text)
    assert re.search(r"--path\s+TEXT\s+Add paths to archive", text)
    assert re.search(r"--id\s+INTEGER\s+The job ID", text)


def test_serve_and_rails_show_their_default_ports() -> None:
    serve = help_of("serve")
    for flag, port in (("--port", 3000), ("--rails-port", 3001), ("--s3-port", 3002)):
        assert re.search(rf"{flag}\s.*\[default: \(?{port}\)?\]", serve), flag
    assert re.search(r"--port\s.*\[default: \(?3001\)?\]", help_of("rails"))


def test_the_artifact_helpers_say_what_they_do() -> None:
    assert "Archive a job's files and upload them" in help_of("artifacts-uploader")
    downloader = help_of("artifacts-downloader")
    assert "Download a job's artifacts archive and extract it here" in downloader
    assert re.search(r"--retry\s+INTEGER\s+How many times to retry the download", downloader)
