"""Run ``python -m runner_client runner ...`` as its own process against the stack, and read
what the coordinator kept (job rows, traces)."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import select

from app.models import Build, FileType, JobArtifact
from app.uploaders.job_artifact_uploader import artifact_key
from tests.conftest import Coordinator

REGISTRATION_TOKEN = "GR1348941-builtin-runner"
RUNNER_TOKEN = "glrt-builtin-runner-0001"
SHA = "b" * 40


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str


async def runner_cli(*args: str, cwd: Path, limit: float = 120, env: dict[str, str] | None = None) -> Finished:
    """The runner as its own process; the coordinator keeps serving in this event loop meanwhile."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runner_client",
        "runner",
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(f"runner still running after {limit}s:\n{err.decode()}") from None
    assert proc.returncode is not None
    return Finished(proc.returncode, out.decode(), err.decode())


def pipeline_scenario(jobs: list[dict[str, Any]], **settings: Any) -> dict[str, Any]:
    """acme/app with one running pipeline of ``jobs``; the instance registration token and one runner."""
    return {
        "settings": {"runner_registration_token": REGISTRATION_TOKEN, **settings},
        "users": [{"username": "alice"}],
        "groups": [{"path": "acme", "members": [{"user": "alice", "access_level": "developer"}]}],
        "projects": [
            {
                "path": "acme/app",
                "pipelines": [{"user": "alice", "status": "running", "sha": SHA, "jobs": jobs}],
            }
        ],
        "runners": [{"token": RUNNER_TOKEN, "description": "seeded"}],
    }


def write_config(path: Path, url: str, token: str = RUNNER_TOKEN, **extra: Any) -> Path:
    """A config.toml as ``register`` writes it, polling every second."""
    lines = [f"concurrent = {extra.pop('concurrent', 1)}", "check_interval = 1", "", "[[runners]]"]
    lines += ['  name = "test-runner"', f'  url = "{url}"', f'  token = "{token}"', '  executor = "shell"']
    lines += [f"  {k} = {v!r}".replace("'", '"') for k, v in extra.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


async def job_row(c: Coordinator, job_id: int) -> Build:
    async with c.state.db.session() as session:
        row = await session.get(Build, job_id)
    assert row is not None
    return row


async def artifacts_of(c: Coordinator, job_id: int) -> dict[FileType, JobArtifact]:
    async with c.state.db.session() as session:
        rows = (await session.exec(select(JobArtifact).where(JobArtifact.job_id == job_id))).all()
    return {row.file_type: row for row in rows}


async def stored_bytes(c: Coordinator, artifact: JobArtifact) -> bytes:
    return b"".join([chunk async for chunk in c.state.store.iter_range(artifact_key(artifact))])


async def trace_of(c: Coordinator, job_id: int) -> str:
    """The archived log (``job.log``), as the coordinator stored it."""
    return (await stored_bytes(c, (await artifacts_of(c, job_id))[FileType.trace])).decode()


def job_named(seeded: dict[str, Any], name: str) -> dict[str, Any]:
    return next(j for j in seeded["jobs"] if j["name"] == name)


async def run_jobs(stack_url: str, tmp: Path, jobs: int, *, wait: float = 20, **config: Any) -> Finished:
    """``runner run --max-jobs N --wait-timeout W`` with a fresh config.toml for the seeded runner."""
    path = write_config(tmp / "config.toml", stack_url, **config)
    return await runner_cli("run", "--config", str(path), "--max-jobs", str(jobs), "--wait-timeout", str(wait), cwd=tmp)
