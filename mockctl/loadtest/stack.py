"""The coordinator a run loads: one started here (the stack ``mockcoord serve`` starts, on free
ports, as separate processes so each is sampled alone) or one already running (``--url``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from mockctl.ports import free_port

ADMIN_TOKEN = "glpat-loadtest-admin-token"
START_TIMEOUT = 60.0


class TargetError(RuntimeError):
    """The coordinator cannot be used: unreachable, a bad token, or it would not start."""


@dataclass
class Target:
    url: str
    admin_token: str
    processes: dict[str, int] = field(default_factory=dict)  # workhorse / rails / object store -> pid
    object_store: str = ""  # the S3 endpoint of a stack started here


def check_target(url: str, admin_token: str) -> None:
    """The control plane answers with this token, or a one-line reason why not."""
    try:
        res = httpx.get(f"{url.rstrip('/')}/-/mock/faults", headers={"PRIVATE-TOKEN": admin_token}, timeout=10)
    except httpx.HTTPError as exc:
        raise TargetError(f"--url {url}: unreachable ({exc})") from None
    if res.status_code in (401, 403):
        raise TargetError(f"--admin-token: {url} refused it ({res.status_code} {res.json().get('message', '')})")
    if res.status_code != 200:
        raise TargetError(f"--url {url}: /-/mock/faults answered {res.status_code}; is it a mockcoord coordinator?")


def _wait_line(proc: subprocess.Popen[str], want: str, what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if want in line:
            return
        if not line and proc.poll() is not None:
            break
    raise TargetError(f"{what} did not start (see {log})")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def local_stack(work: Path) -> Iterator[Target]:
    """moto in its own process, then ``mockcoord serve`` (Rails; Workhorse its child) against it."""
    work.mkdir(parents=True, exist_ok=True)
    s3_port, port, rails_port = free_port(), free_port(), free_port()
    env = {**os.environ, "MOCKCOORD_ADMIN_TOKEN": ADMIN_TOKEN, "PYTHONUNBUFFERED": "1"}
    store_log = work / "object-store.log"
    store = subprocess.Popen(
        [sys.executable, "-m", "mockctl.loadtest.object_store", str(s3_port)],
        stdout=subprocess.PIPE,
        stderr=store_log.open("w"),
        text=True,
        env=env,
    )
    try:
        _wait_line(store, "ready", "the object store", store_log)
        serve_log = work / "serve.log"
        serve = subprocess.Popen(
            [
                *(sys.executable, "-m", "app", "serve", "--no-demo", "--no-cron", "--log-level", "warning"),
                *("--port", str(port), "--rails-port", str(rails_port), "--data-dir", str(work / "data")),
                *("--s3-endpoint", f"http://127.0.0.1:{s3_port}", "--path-style"),
            ],
            stdout=subprocess.PIPE,
            stderr=serve_log.open("w"),
            text=True,
            env=env,
        )
        try:
            _wait_line(serve, "mockcoord is ready", "mockcoord serve", serve_log)
            children = psutil.Process(serve.pid).children()
            processes = {"workhorse": children[0].pid} if children else {}
            yield Target(
                f"http://127.0.0.1:{port}",
                ADMIN_TOKEN,
                processes | {"rails": serve.pid, "object store": store.pid},
                f"http://127.0.0.1:{s3_port}",
            )
        finally:
            _stop(serve)
    finally:
        _stop(store)
