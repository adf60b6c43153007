"""Workhorse as ``mockcoord serve`` runs it: its own process in front of Rails.

The real Workhorse is a separate program that reaches Rails over HTTP; so is ours,
which also keeps proxying CPU off the Rails process.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys

import httpx

from app.config import Settings
from mockctl.ports import Wanted, check_ports

PR_SET_PDEATHSIG = 1


def workhorse_env(settings: Settings) -> dict[str, str]:
    """The ``MOCKCOORD_WORKHORSE_*`` settings Workhorse reads, derived from ours."""
    rails_host = "127.0.0.1" if settings.binds_only_loopback() or settings.host == "0.0.0.0" else settings.host
    conn = settings.object_store.connection
    log_dir = settings.data_dir.resolve() / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    return {
        "MOCKCOORD_WORKHORSE_LISTEN_HOST": settings.host,
        "MOCKCOORD_WORKHORSE_LISTEN_PORT": str(settings.workhorse_port),
        "MOCKCOORD_WORKHORSE_RAILS_URL": f"http://{rails_host}:{settings.rails_port}",
        "MOCKCOORD_WORKHORSE_SECRET_FILE": str(settings.secret_file),
        "MOCKCOORD_WORKHORSE_S3_ACCESS_KEY_ID": conn.aws_access_key_id,
        "MOCKCOORD_WORKHORSE_S3_SECRET_ACCESS_KEY": conn.aws_secret_access_key,
        "MOCKCOORD_WORKHORSE_CLIENT_MAX_BODY_SIZE": str(settings.client_max_body_size),
        "MOCKCOORD_WORKHORSE_LOG_FILE": str(log_dir / "workhorse.log"),
    }


def _die_with_parent() -> None:
    """Linux: Workhorse gets SIGTERM if serve dies without cleaning up (SIGKILL, a crash)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def front_door(settings: Settings) -> Wanted:
    return Wanted(settings.host, settings.workhorse_port, "Workhorse, the front door (--port)")


async def start_workhorse(settings: Settings) -> asyncio.subprocess.Process:
    """Refuses a busy front-door port (again: a restart may find it taken meanwhile) rather
    than let a runner talk to whatever holds it."""
    check_ports([front_door(settings)])
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mockctl.workhorse",
        env={**os.environ, **workhorse_env(settings)},
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        start_new_session=True,  # a terminal's Ctrl-C goes to serve, which stops Workhorse itself
    )


def exit_reason(returncode: int) -> str:
    """``exited with status 1`` or ``was killed by signal SIGKILL``."""
    if returncode < 0:
        try:
            return f"was killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


async def wait_ready(proc: asyncio.subprocess.Process, url: str, within: float = 30) -> None:
    """Until a request through Workhorse reaches Rails; fail fast if Workhorse exits."""
    deadline = asyncio.get_running_loop().time() + within
    async with httpx.AsyncClient(timeout=2) as client:
        while asyncio.get_running_loop().time() < deadline:
            if proc.returncode is not None:
                raise RuntimeError(f"Workhorse {exit_reason(proc.returncode)}")
            try:
                if (await client.get(f"{url}/-/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"Workhorse did not answer at {url} within {within:.0f}s")


async def stop_workhorse(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
