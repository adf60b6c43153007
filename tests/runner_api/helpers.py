"""Scenarios and calls for the runner job-lifecycle API."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Coordinator

REGISTRATION_TOKEN = "GR1348941-registration"
RUNNER_TOKEN = "glrt-runner-untagged-0001"
DOCKER_RUNNER_TOKEN = "glrt-runner-docker-0001"
STRICT_RUNNER_TOKEN = "glrt-runner-strict-0001"
PAUSED_RUNNER_TOKEN = "glrt-runner-paused-0001"


def lifecycle_scenario(jobs: list[dict[str, Any]] | None = None, **pipeline: Any) -> dict[str, Any]:
    """acme/app with one pipeline: ``build`` done (with an archive), then ``jobs`` (default: a
    pending ``test`` job with a script and CI artifacts); four runners."""
    default_jobs = [
        {
            "name": "test",
            "stage": "test",
            "status": "pending",
            "before_script": ["echo before"],
            "script": ["echo hello", "make test"],
            "after_script": ["echo cleanup"],
            "ci_artifacts": {"paths": ["out/"], "exclude": ["out/*.tmp"], "expire_in": "1 week", "when": "always"},
        }
    ]
    return {
        "settings": {"runner_registration_token": REGISTRATION_TOKEN},
        "users": [{"username": "alice"}],
        "groups": [{"path": "acme", "members": [{"user": "alice", "access_level": "developer"}]}],
        "projects": [
            {
                "path": "acme/app",
                "pipelines": [
                    {
                        "user": "alice",
                        "status": "running",
                        "sha": "a" * 40,
                        **pipeline,
                        "jobs": [
                            {
                                "name": "build",
                                "stage": "build",
                                "status": "success",
                                "artifacts": [{"file_type": "archive", "files": {"out/a.txt": "hello"}}],
                            },
                            *(default_jobs if jobs is None else jobs),
                        ],
                    }
                ],
            }
        ],
        "runners": [
            {"token": RUNNER_TOKEN, "description": "untagged"},
            {"token": DOCKER_RUNNER_TOKEN, "description": "docker", "tags": ["docker", "linux"]},
            {"token": STRICT_RUNNER_TOKEN, "description": "strict", "tags": ["docker"], "run_untagged": False},
            {"token": PAUSED_RUNNER_TOKEN, "description": "paused", "active": False},
        ],
    }


def job(seeded: dict, name: str) -> dict:
    return next(j for j in seeded["jobs"] if j["name"] == name)


async def request_job(c: Coordinator, token: str | None = RUNNER_TOKEN, **body: Any) -> httpx.Response:
    payload = {"info": {"name": "gitlab-runner", "version": "19.4.0"}, "system_id": "s_0123456789ab", **body}
    headers = {"Accept": "application/json"}
    if token is not None:
        payload["token"] = token
    return await c.client.post("/api/v4/jobs/request", json=payload, headers=headers)


async def update_job(c: Coordinator, job_id: int, token: str, **body: Any) -> httpx.Response:
    return await c.client.put(f"/api/v4/jobs/{job_id}", json={"token": token, **body}, headers={"JOB-TOKEN": token})


async def patch_trace(c: Coordinator, job_id: int, token: str, data: bytes, start: int) -> httpx.Response:
    return await c.client.patch(
        f"/api/v4/jobs/{job_id}/trace?debug_trace=false",
        content=data,
        headers={
            "JOB-TOKEN": token,
            "Content-Range": f"{start}-{start + len(data) - 1}",
            "Content-Type": "text/plain",
        },
    )
