"""Scenarios and calls for pipelines created from ``.gitlab-ci.yml``, run by a runner."""

from __future__ import annotations

from typing import Any

import httpx
from sqlmodel import col, select

from app.models import Build, JobArtifact, Pipeline, latest
from tests.conftest import ADMIN_TOKEN, Coordinator
from tests.runner_api.helpers import RUNNER_TOKEN, request_job, update_job

ALICE = "glpat-alice-developer-0001"
REPORTER = "glpat-rita-reporter-0001"
GUEST = "glpat-gus-guest-0001"
OUTSIDER = "glpat-mallory-outsider-0001"
BLOCKED = "glpat-blocked-developer-0001"

STAGED = """
stages: [build, test, deploy]
build:
  stage: build
  script: make
  artifacts: {paths: [out/]}
test:
  stage: test
  script: make test
deploy:
  stage: deploy
  script: make deploy
"""


def scenario(ci_config: str | dict | None = STAGED, **project: Any) -> dict[str, Any]:
    """acme/app (private) with ``ci_config``; alice develops, rita reports, gus is a guest,
    mallory is no member, bob is a blocked developer; one untagged runner."""
    users = [
        {"username": "alice", "token": ALICE},
        {"username": "rita", "token": REPORTER},
        {"username": "gus", "token": GUEST},
        {"username": "mallory", "token": OUTSIDER},
        {"username": "bob", "token": BLOCKED, "state": "blocked"},
    ]
    spec: dict[str, Any] = {"path": "acme/app", **project}
    if ci_config is not None:
        spec["ci_config"] = ci_config
    return {
        "users": users,
        "groups": [
            {
                "path": "acme",
                "members": [
                    {"user": "alice", "access_level": "developer"},
                    {"user": "rita", "access_level": "reporter"},
                    {"user": "gus", "access_level": "guest"},
                    {"user": "bob", "access_level": "developer"},
                ],
            }
        ],
        "projects": [spec],
        "runners": [{"token": RUNNER_TOKEN, "description": "untagged"}],
    }


async def create(
    c: Coordinator, ref: str | None = "main", token: str | None = ALICE, project: str = "acme%2Fapp", **body: Any
) -> httpx.Response:
    headers = {"PRIVATE-TOKEN": token} if token else {}
    query = f"?ref={ref}" if ref is not None else ""
    return await c.client.post(f"/api/v4/projects/{project}/pipeline{query}", json=body or None, headers=headers)


async def created(c: Coordinator, ref: str = "main") -> dict[str, Any]:
    res = await create(c, ref)
    assert res.status_code == 201, res.text
    return res.json()


async def put_config(
    c: Coordinator, content: str, project: str = "acme%2Fapp", token: str = ADMIN_TOKEN
) -> httpx.Response:
    return await c.client.put(
        f"/-/mock/projects/{project}/ci_config",
        content=content.encode(),
        headers={"PRIVATE-TOKEN": token, "Content-Type": "application/x-yaml"},
    )


async def show(c: Coordinator, pipeline_id: int, token: str | None = ALICE) -> httpx.Response:
    headers = {"PRIVATE-TOKEN": token} if token else {}
    return await c.client.get(f"/api/v4/projects/acme%2Fapp/pipelines/{pipeline_id}", headers=headers)


async def statuses(c: Coordinator, pipeline_id: int) -> dict[str, str]:
    """Job name -> status of the pipeline's current jobs (not the retried ones: a retried job and its
    clone share a name, and PostgreSQL returns an updated row in no set order), from the database."""
    async with c.state.db.session() as session:
        jobs = (await session.exec(select(Build).where(Build.commit_id == pipeline_id, latest()))).all()
    return {job.name: job.status for job in jobs}


async def pipeline_row(c: Coordinator, pipeline_id: int) -> Pipeline:
    async with c.state.db.session() as session:
        row = await session.get(Pipeline, pipeline_id)
    assert row is not None
    return row


async def job_row(c: Coordinator, job_id: int) -> Build:
    async with c.state.db.session() as session:
        row = await session.get(Build, job_id)
    assert row is not None
    return row


async def artifact_locks(c: Coordinator, pipeline_id: int) -> set[int]:
    async with c.state.db.session() as session:
        jobs = select(Build.id).where(Build.commit_id == pipeline_id)
        rows = (await session.exec(select(JobArtifact.locked).where(col(JobArtifact.job_id).in_(jobs)))).all()
    return set(rows)


async def take(c: Coordinator) -> dict[str, Any] | None:
    """The next job the runner is given (None on 204)."""
    res = await request_job(c)
    if res.status_code == 204:
        return None
    assert res.status_code == 201, res.text
    return res.json()


async def finish(c: Coordinator, job: dict[str, Any], state: str = "success", **body: Any) -> None:
    res = await update_job(c, job["id"], job["token"], state=state, **body)
    assert res.status_code == 200, res.text


async def run(c: Coordinator, results: dict[str, str] | None = None) -> list[str]:
    """Take and finish jobs until none is left; ``results`` says which fail. The names, in
    the order the runner got them."""
    order = []
    while (job := await take(c)) is not None:
        name = job["job_info"]["name"]
        order.append(name)
        await finish(c, job, (results or {}).get(name, "success"))
    return order
