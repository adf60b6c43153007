"""What the runner puts on the wire, against a small recording server: headers and bodies of
jobs/request, trace patches (inclusive ranges, resuming after a 416), the final update and its
retries, and stopping when the coordinator says the job was canceled."""

from __future__ import annotations

import asyncio
import io
import json
import re
import subprocess
import time
import zlib
from pathlib import Path

import pytest

from runner_client.log import RunnerLog
from runner_client.runner.config import RunnerEntry
from runner_client.runner.job import Build
from runner_client.runner.masking import Masker
from runner_client.runner.network import JobsClient
from runner_client.runner.trace import JobTrace
from tests.runner_client.conftest import FailureServer, Recorder, Seen

JOB_TOKEN = "glcbt-64a1b2c3d4e5f6a7b8c9"
JSON = {"Content-Type": "application/json"}


def entry(url: str) -> RunnerEntry:
    return RunnerEntry(name="wire", url=url, token="glrt-wire-runner-0001")


def jobs_client(version: str = "19", sleep: Recorder | None = None) -> JobsClient:
    return JobsClient(runner_version=version, log=RunnerLog(io.StringIO(), color=False), sleep=sleep or Recorder())


def replies(*answers: tuple[int, dict[str, str], bytes]):  # noqa: ANN201
    """Answer the n-th call with the n-th reply (the last one again after that)."""

    async def handler(seen: Seen, n: int) -> tuple[int, dict[str, str], bytes]:
        return answers[min(n, len(answers)) - 1]

    return handler


async def test_request_job_headers_body_and_last_update(failures: FailureServer) -> None:
    job = {"id": 5, "token": JOB_TOKEN, "git_info": {"repo_url": f"http://gitlab-ci-token:{JOB_TOKEN}@h/a/b.git"}}
    failures.on(
        replies(
            (204, {"X-GitLab-Last-Update": "queue-1"}, b""),
            (201, JSON, json.dumps(job).encode()),
            (201, {"Content-Type": "text/plain"}, b"{}"),
        )
    )
    client = jobs_client()
    runner = entry(failures.url + "/ci/")
    first = await client.request_job(runner, "s_0123456789ab")
    second = await client.request_job(runner, "s_0123456789ab")
    third = await client.request_job(runner, "s_0123456789ab")
    await client.aclose()

    assert (first.job, first.healthy) == (None, True)
    assert second.job == job
    assert third.job is None and third.healthy  # a 201 that is not JSON counts as "failed"
    calls = failures.calls
    assert [c.path for c in calls] == ["/api/v4/jobs/request"] * 3
    headers = calls[0].headers
    assert headers["runner-token"] == runner.token and headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json" and headers["user-agent"].startswith("gitlab-runner 19.4.0 (")
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
    bodies = [json.loads(c.body) for c in calls]
    assert list(bodies[0]) == ["info", "token", "system_id"]
    assert bodies[0]["token"] == runner.token and bodies[0]["system_id"] == "s_0123456789ab"
    info = bodies[0]["info"]
    assert (info["name"], info["executor"], info["shell"]) == ("gitlab-runner", "shell", "bash")
    features = info["features"]
    assert features["shared"] and features["masking"] and features["return_exit_code"] and features["trace_checksum"]
    assert not features["image"] and not features["services"]
    assert bodies[1]["last_update"] == "queue-1"
    assert "received" in client.log.lines[0] or any("received" in line for line in client.log.lines)
    assert any(line.startswith("WARNING: Checking for jobs... failed") for line in client.log.lines)


async def test_patches_resume_after_416_then_final_update(failures: FailureServer) -> None:
    failures.on(
        replies(
            (416, {"Range": "0-5"}, b""),
            (202, {"Range": "0-40", "Job-Status": "running", "X-GitLab-Trace-Update-Interval": "30"}, b""),
            (200, {}, b"200"),
        )
    )
    client = jobs_client(sleep=Recorder())
    trace = JobTrace(client, entry(failures.url), 9, JOB_TOKEN, Masker([JOB_TOKEN]), sleep=Recorder())
    trace.write(b"hello " + JOB_TOKEN.encode() + b"\nno newline yet")
    state = await trace.finish("failed", "script_failure", 3)
    await client.aclose()

    data = b"hello [MASKED]\nno newline yet"
    assert state.name == "SUCCEEDED" and bytes(trace.buffer) == data
    first, second, put = failures.calls
    assert (first.method, first.path, first.query) == ("PATCH", "/api/v4/jobs/9/trace", "debug_trace=false")
    assert first.headers["content-range"] == f"0-{len(data) - 1}" and first.body == data
    assert first.headers["job-token"] == JOB_TOKEN and first.headers["content-type"] == "text/plain"
    assert second.headers["content-range"] == f"5-{len(data) - 1}" and second.body == data[5:]
    assert (put.method, put.path, put.headers["job-token"]) == ("PUT", "/api/v4/jobs/9", JOB_TOKEN)
    body = json.loads(put.body)
    checksum = f"crc32:{zlib.crc32(data):08x}"
    assert {k: v for k, v in body.items() if k != "info"} == {
        "token": JOB_TOKEN,
        "state": "failed",
        "failure_reason": "script_failure",
        "checksum": checksum,
        "output": {"checksum": checksum, "bytesize": len(data)},
        "exit_code": 3,
    }
    assert "accept" not in put.headers


async def test_final_update_retries(failures: FailureServer) -> None:
    """500 -> backoff, 202 -> the update interval, 412 -> the whole log again, then 200 (17.x: no transport retry)."""
    failures.on(replies((202, {}, b""), (500, {}, b""), (202, {}, b""), (412, {}, b""), (202, {}, b""), (200, {}, b"")))
    sleep = Recorder()
    client = jobs_client("17", sleep=sleep)
    trace = JobTrace(client, entry(failures.url), 9, JOB_TOKEN, Masker([]), sleep=sleep)
    trace.write(b"line\n")
    assert (await trace.finish("success")).name == "SUCCEEDED"
    await client.aclose()
    assert [f"{c.method} {c.headers.get('content-range', '')}" for c in failures.calls] == [
        "PATCH 0-4",
        "PUT ",
        "PUT ",
        "PUT ",
        "PATCH 0-4",
        "PUT ",
    ]
    assert sleep.waits == [1.0, 3.0, 3.0]
    assert json.loads(failures.calls[1].body)["state"] == "success"
    assert "exit_code" not in json.loads(failures.calls[1].body)


@pytest.mark.parametrize(("status", "event"), [("canceled", "aborted"), ("canceling", "cancel_requested")])
async def test_job_status_from_a_patch(failures: FailureServer, status: str, event: str) -> None:
    failures.on(replies((202, {"Range": "0-3", "Job-Status": status}, b"")))
    client = jobs_client()
    trace = JobTrace(client, entry(failures.url), 9, JOB_TOKEN, Masker([]), sleep=lambda _: asyncio.sleep(0.01))
    trace.write(b"ab\n")
    trace.start()
    for _ in range(100):
        if trace.aborted.is_set() or trace.cancel_requested.is_set():
            break
        await asyncio.sleep(0.01)
    await trace.stop_watching()
    await client.aclose()
    assert getattr(trace, event).is_set()


async def test_canceled_job_stops_its_script(failures: FailureServer, tmp_path: Path) -> None:
    """The coordinator answers a patch with ``Job-Status: canceled``: the running script is killed,
    and the final update says failed (``job_canceled`` is the runner's own, so ``unknown_failure``)."""
    seen_output = False

    async def coordinator(seen: Seen, n: int) -> tuple[int, dict[str, str], bytes]:
        nonlocal seen_output
        if seen.method == "PUT":
            return (200, {}, b"") if n == 1 else (403, {}, b"")
        seen_output = seen_output or b"started\n" in seen.body
        return 202, {"Range": "0-1", "Job-Status": "canceled" if seen_output else "running"}, b""

    failures.on(coordinator)
    payload = {
        "id": 9,
        "token": JOB_TOKEN,
        "job_info": {"name": "sleepy", "project_id": 1},
        "git_info": {"repo_url": "http://h/acme/app.git"},
        "variables": [{"key": "GIT_STRATEGY", "value": "none", "public": True, "masked": False}],
        "steps": [{"name": "script", "script": ["echo started", "sleep 30"], "timeout": 60}],
        "features": {"failure_reasons": ["script_failure"]},
    }
    client = jobs_client()
    build = Build(
        payload,
        entry(failures.url),
        client,
        builds_dir=tmp_path,
        system_id="r_test",
        concurrent_id=0,
        project_concurrent_id=0,
        log=client.log,
    )
    build.trace.update_interval = 0.3
    started = time.monotonic()
    outcome = await build.run()
    await client.aclose()
    assert time.monotonic() - started < 10
    assert (outcome.failure_reason, outcome.message) == ("unknown_failure", "Job failed: canceled")
    put = json.loads(failures.calls[-1].body)
    assert (put["state"], put["failure_reason"]) == ("failed", "unknown_failure")
    assert b"started\n" in bytes(build.trace.buffer)


@pytest.fixture
def local_repo(tmp_path: Path) -> tuple[Path, str]:
    """A repository with one commit on ``main``: its path and the commit's sha."""
    repo = tmp_path / "origin"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@e", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "README").write_text("from git\n")
    subprocess.run([*git, "add", "README"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], check=True)
    return repo, subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()


async def test_fetch_strategy_uses_git(failures: FailureServer, tmp_path: Path, local_repo: tuple[Path, str]) -> None:
    """``GIT_STRATEGY=fetch``: git init, fetch the payload's refspecs, check out the sha (a local repository here)."""
    repo, sha = local_repo
    failures.on(replies((200, {}, b""), (202, {"Range": "0-1"}, b""), (200, {}, b"")))
    payload = {
        "id": 9,
        "token": JOB_TOKEN,
        "allow_git_fetch": True,
        "job_info": {"name": "git", "project_id": 4},
        "git_info": {
            "repo_url": f"file://{repo}",
            "ref": "main",
            "sha": sha,
            "refspecs": ["+refs/heads/main:refs/remotes/origin/main"],
            "depth": 20,
        },
        "variables": [],
        "steps": [{"name": "script", "script": ["cat README", "git rev-parse HEAD"], "timeout": 60}],
    }
    client = jobs_client()
    build = Build(
        payload,
        entry(failures.url),
        client,
        builds_dir=tmp_path / "builds",
        system_id="r_test",
        concurrent_id=0,
        project_concurrent_id=0,
        log=client.log,
    )
    outcome = await build.run()
    await client.aclose()
    log = bytes(build.trace.buffer).decode()
    assert outcome.state == "success", log
    assert "Fetching changes with git depth set to 20...\x1b[0;m\n" in log
    assert "Created fresh repository." in log
    assert f"Checking out {sha[:8]} as detached HEAD (ref is main)..." in log
    assert f"from git\n\x1b[32;1m$ git rev-parse HEAD\x1b[0;m\n{sha}\n" in log
    assert build.project_dir == tmp_path / "builds" / "wire-runn" / "0" / "project-4"
