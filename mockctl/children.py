"""The processes ``mockcoord serve`` starts beside itself (Workhorse, further Rails processes):
started alike, on a listening socket serve bound and keeps, stopped alike.

Serve binding the socket once means every process behind a port accepts from one queue, and a
restarted process finds its port still held for it, never taken meanwhile by something else.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import sys

Process = asyncio.subprocess.Process
PR_SET_PDEATHSIG = 1


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket its children may inherit (as uvicorn binds one for its workers)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if serve dies without cleaning up (SIGKILL, a crash)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


async def spawn(module: str, env: dict[str, str], listener: socket.socket, stdout: int | None = None) -> Process:
    """``python -m module``, handed ``listener`` (its descriptor number in ``env`` is the caller's)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        env={**os.environ, **env},
        pass_fds=(listener.fileno(),),
        stdout=stdout,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        start_new_session=True,  # a terminal's Ctrl-C goes to serve, which stops its children itself
    )


def exit_reason(returncode: int) -> str:
    """``exited with status 1`` or ``was killed by signal SIGKILL``."""
    if returncode < 0:
        try:
            return f"was killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


async def stop(proc: Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
