"""The shell executor with bash (shells/bash.go, executors/shell): each stage becomes one bash
script, fed to ``bash -l`` on standard input, that exports the job's variables, changes to
the project directory and runs the commands under ``errexit``/``pipefail``, echoing each as
``$ command`` in bold green first. Output (stdout and stderr together) streams into the job log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
from dataclasses import dataclass
from pathlib import Path

from runner_client.runner.trace import JobTrace

BOLD_GREEN, YELLOW, BOLD_RED, BOLD_CYAN, RESET, CLEAR = (
    "\033[32;1m",
    "\033[0;33m",
    "\033[31;1m",
    "\033[36;1m",
    "\033[0;m",
    "\033[0K",
)
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL when a stage is stopped
READ_SIZE = 16 * 1024
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Variable:
    """A job variable (``spec.Variable``); ``file`` ones are exported as the path of a file."""

    key: str
    value: str
    public: bool = True
    masked: bool = False
    file: bool = False
    raw: bool = False


class BashScript:
    """``BashWriter``: lines of the script body, then ``finish`` wraps them as gitlab-runner does."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text)

    def notice(self, text: str) -> None:
        self.line("echo " + shlex.quote(BOLD_GREEN + text + RESET))

    def warning(self, text: str) -> None:
        self.line("echo " + shlex.quote(YELLOW + text + RESET))

    def command(self, *args: str) -> None:
        self.line(" ".join(shlex.quote(a) for a in args))

    def cd(self, path: str | os.PathLike[str]) -> None:
        self.command("cd", str(path))

    def exports(self, variables: list[Variable], tmp_dir: Path) -> None:
        for var in variables:
            if not _NAME.match(var.key):
                continue  # bash could not export it; the script would stop on the first one
            value = str(tmp_dir / var.key) if var.file else var.value
            self.line(f"export {var.key}={shlex.quote(value)}")

    def user_commands(self, commands: list[str]) -> None:
        """``writeCommands``: ``$ <first line>`` (``# collapsed multi-line command`` for more), then the command."""
        for command in commands:
            command = command.strip()
            if command:
                first, *rest = command.split("\n", 1)
                self.notice(f"$ {first}" + (" # collapsed multi-line command" if rest else ""))
            else:
                self.line("echo")
            self.line(command)

    def finish(self, shell: str) -> str:
        body = "\n".join(self.lines) + "\n"
        return (
            f"#!/usr/bin/env {shell}\n\n"
            "trap exit 1 TERM\n\n"
            "if set -o | grep pipefail > /dev/null; then set -o pipefail; fi; set -o errexit\n"
            "set +o noclobber\n"
            f": | eval {shlex.quote(body)}\n"
            "exit 0\n"
        )


@dataclass(frozen=True)
class ShellResult:
    exit_code: int | None  # None when the process was stopped by a signal
    error: str  # Go's exec error text: "exit status 2", "signal: killed"; "" on success

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


async def run_script(script: str, *, shell: str, cwd: Path, trace: JobTrace) -> ShellResult:
    """Run one stage's script; cancelling the caller stops the whole process group (SIGTERM, then SIGKILL)."""
    proc = await asyncio.create_subprocess_exec(
        shell,
        "-l",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=cwd,
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdout = proc.stdout

    async def feed() -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(script.encode())
            await proc.stdin.drain()
            proc.stdin.close()

    async def pump() -> None:
        while chunk := await stdout.read(READ_SIZE):
            trace.write(chunk)

    feeder, reader = asyncio.create_task(feed()), asyncio.create_task(pump())
    try:
        await asyncio.gather(feeder, reader)
        code = await proc.wait()
    except BaseException:
        await _stop(proc)
        feeder.cancel()
        reader.cancel()
        raise
    finally:
        trace.flush()
    if code < 0:
        return ShellResult(None, f"signal: {(signal.strsignal(-code) or str(-code)).lower()}")
    return ShellResult(code, "" if code == 0 else f"exit status {code}")


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            await asyncio.shield(asyncio.wait_for(proc.wait(), wait))
            return
        except TimeoutError:
            continue
