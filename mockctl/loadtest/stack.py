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


def answer_message(res: httpx.Response) -> str:
    """GitLab's ``{"message": ...}``, or the start of whatever else came back."""
    try:
        return str(res.json().get("message", ""))
    except ValueError:
        return res.text[:200]


@dataclass
class Target:
    url: str
    admin_token: str
    processes: dict[str, int] = field(default_factory=dict)  # workhorse / rails / object store -> pid
    object_store: str = ""  # the S3 endpoint of a stack started here
    rails: str = ""  # and its Rails, behind Workhorse


def check_target(url: str, admin_token: str) -> None:
    """The control plane answers with this token, or a one-line reason why not."""
    try:
        res = httpx.get(f"{url.rstrip('/')}/-/mock/faults", headers={"PRIVATE-TOKEN": admin_token}, timeout=10)
    except httpx.HTTPError as exc:
        raise TargetError(f"--url {url}: unreachable ({exc})") from None
    if res.status_code in (401, 403):
        raise TargetError(f"--admin-token: {url} refused it ({res.status_code} {answer_message(res)})")
    if res.status_code != 200:
        raise TargetError(f"--url {url}: /-/mock/faults answered {res.status_code}; is it a mockcoord coordinator?")


def _start(args: list[str], log: Path, ready: str, what: str) -> subprocess.Popen[str]:
    """A process of the stack, once it has printed ``ready`` (its stderr in ``log``)."""
    env = {**os.environ, "MOCKCOORD_ADMIN_TOKEN": ADMIN_TOKEN, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log.open("w"), text=True, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if ready in line:
            return proc
        if not line and proc.poll() is not None:
            break
    _stop(proc)
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
    store_args = [sys.executable, "-m", "mockctl.loadtest.object_store", str(s3_port)]
    store = _start(store_args, work / "object-store.log", "ready", "the object store")
    try:
        serve_args = [
            *(sys.executable, "-m", "app", "serve", "--no-demo", "--no-cron", "--log-level", "warning"),
            *("--port", str(port), "--rails-port", str(rails_port), "--data-dir", str(work / "data")),
            *("--s3-endpoint", f"http://127.0.0.1:{s3_port}", "--path-style"),
        ]
        serve = _start(serve_args, work / "serve.log", "mockcoord is ready", "mockcoord serve")
        try:
            children = psutil.Process(serve.pid).children()
            processes = {"workhorse": children[0].pid} if children else {}
            yield Target(
                f"http://127.0.0.1:{port}",
                ADMIN_TOKEN,
                processes | {"rails": serve.pid, "object store": store.pid},
                f"http://127.0.0.1:{s3_port}",
                f"http://127.0.0.1:{rails_port}",
            )
        finally:
            _stop(serve)
    finally:
        _stop(store)
