"""Workhorse as ``mockcoord serve`` runs it: its own processes in front of Rails.

The real Workhorse is a separate program that reaches Rails over HTTP; so is ours, which also
keeps proxying CPU off the Rails processes. ``--workhorse-processes N`` starts N on the one
front-door socket serve holds (``mockctl.children``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import httpx

from app.config import Settings
from mockctl.children import Process, exit_reason, spawn
from mockctl.ports import Wanted


def workhorse_faults_file(settings: Settings) -> Path | None:
    """Where several Workhorse processes share the rules Rails hands over; one keeps them in memory."""
    if settings.workhorse_processes == 1:
        return None
    return settings.data_dir.resolve() / "instrument" / "workhorse_faults.json"


def workhorse_env(settings: Settings, listener: socket.socket) -> dict[str, str]:
    """The ``MOCKCOORD_WORKHORSE_*`` settings Workhorse reads, derived from ours."""
    rails_host = "127.0.0.1" if settings.binds_only_loopback() or settings.host == "0.0.0.0" else settings.host
    conn = settings.object_store.connection
    log_dir = settings.data_dir.resolve() / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "MOCKCOORD_WORKHORSE_LISTEN_HOST": settings.host,
        "MOCKCOORD_WORKHORSE_LISTEN_PORT": str(settings.workhorse_port),
        "MOCKCOORD_WORKHORSE_LISTEN_FD": str(listener.fileno()),
        "MOCKCOORD_WORKHORSE_RAILS_URL": f"http://{rails_host}:{settings.rails_port}",
        "MOCKCOORD_WORKHORSE_SECRET_FILE": str(settings.secret_file),
        "MOCKCOORD_WORKHORSE_S3_ACCESS_KEY_ID": conn.aws_access_key_id,
        "MOCKCOORD_WORKHORSE_S3_SECRET_ACCESS_KEY": conn.aws_secret_access_key,
        "MOCKCOORD_WORKHORSE_CLIENT_MAX_BODY_SIZE": str(settings.client_max_body_size),
        "MOCKCOORD_WORKHORSE_LOG_FILE": str(log_dir / "workhorse.log"),
    }
    if faults_file := workhorse_faults_file(settings):
        env["MOCKCOORD_WORKHORSE_FAULTS_FILE"] = str(faults_file)
    return env


def front_door(settings: Settings) -> Wanted:
    return Wanted(settings.host, settings.workhorse_port, "Workhorse, the front door (--port)")


async def start_workhorse(settings: Settings, listener: socket.socket) -> Process:
    """One Workhorse process accepting on ``listener``, the front door serve bound."""
    return await spawn("mockctl.workhorse", workhorse_env(settings, listener), listener)


async def wait_ready(proc: Process, url: str, within: float = 30) -> None:
    """Until a request through the front door reaches Rails; fail as soon as Workhorse exits (a
    request may sit in serve's socket with no process to accept it). With several Workhorse
    processes a sibling may answer first: the port serves either way."""

    async def answered() -> None:
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/-/health")).status_code == 200:
                        return
                await asyncio.sleep(0.05)

    serving, exited = asyncio.create_task(answered()), asyncio.create_task(proc.wait())
    try:
        done, _ = await asyncio.wait({serving, exited}, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        serving.cancel()
        exited.cancel()
    if exited in done:
        raise RuntimeError(f"Workhorse {exit_reason(exited.result())}")
    if serving not in done:
        raise RuntimeError(f"Workhorse did not answer at {url} within {within:.0f}s")
