"""``job.keep_artifacts()``, ``job.delete_artifacts()`` and ``project.artifacts.delete()`` with
GitLab's semantics: keep clears every expiry of the job; deleting a job's artifacts turns
their rows into ``ci_deleted_objects`` (files stay until picked up) and lowers the project's
usage; deleting a project's artifacts only expires the unlocked ones."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import gitlab
import pytest
from sqlmodel import select

from app import clock
from app.models import (
    ArtifactLocked,
    BuildArtifactsSizeRefresh,
    DeletedObject,
    FileType,
    JobArtifact,
    ProjectStatistics,
)
from app.uploaders.job_artifact_uploader import artifact_key
from tests.conftest import ADMIN_TOKEN
from tests.e2e.conftest import Stack
from tests.project_jobs.helpers import call, client, jobs_by, scenario, token

REFRESH_MESSAGE = "Action temporarily disabled. The project this pipeline belongs to is undergoing stats refresh."


async def rows(stack: Stack, model, *where):  # type: ignore[no-untyped-def]
    async with stack.rails.state.db.session() as session:
        return list((await session.exec(select(model).where(*where))).all())


async def usage(stack: Stack) -> int:
    """``build_artifacts_size`` of demo/app (seeded first: project id 1)."""
    (stats,) = await rows(stack, ProjectStatistics, ProjectStatistics.project_id == 1)
    return stats.build_artifacts_size


async def test_keep_artifacts_clears_every_expiry_of_the_job(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    build = jobs_by(seeded, "build")[1]
    job = await call(lambda: client(stack).projects.get("demo/app", lazy=True).jobs.get(build["id"]))
    assert job.artifacts_expire_at is not None
    await call(job.keep_artifacts)
    await call(job.refresh)
    assert job.artifacts_expire_at is None and "artifacts_file" in job.attributes
    kept = await rows(stack, JobArtifact, JobArtifact.job_id == build["id"])
    assert len(kept) == 3 and all(a.expire_at is None for a in kept)
    res = await stack.client.post(
        f"/api/v4/projects/demo%2Fapp/jobs/{build['id']}/artifacts/keep", headers={"PRIVATE-TOKEN": token("dev")}
    )
    assert res.status_code == 200 and res.json()["id"] == build["id"] and res.json()["artifacts_expire_at"] is None


async def test_keep_needs_artifacts_that_have_not_expired(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    project = client(stack).projects.get("demo/app", lazy=True)
    test = jobs_by(seeded, "test")[0]
    with pytest.raises(gitlab.GitlabCreateError) as error:
        await call(lambda: project.jobs.get(test["id"], lazy=True).keep_artifacts())
    assert (error.value.response_code, error.value.error_message) == (404, "404 Not Found")
    build = jobs_by(seeded, "build")[0]
    clock.advance(timedelta(days=8))
    with pytest.raises(gitlab.GitlabCreateError) as error:
        await call(lambda: project.jobs.get(build["id"], lazy=True).keep_artifacts())
    assert error.value.response_code == 404


async def test_delete_job_artifacts_goes_through_deleted_objects(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    build = jobs_by(seeded, "build")[1]
    before = {a.file_type: a for a in await rows(stack, JobArtifact, JobArtifact.job_id == build["id"])}
    usage_before = await usage(stack)
    project = client(stack, "maria").projects.get("demo/app", lazy=True)
    await call(lambda: project.jobs.get(build["id"], lazy=True).delete_artifacts())

    left = await rows(stack, JobArtifact, JobArtifact.job_id == build["id"])
    assert [a.file_type for a in left] == [FileType.trace]  # traces are not erasable
    gone = [before[FileType.archive], before[FileType.junit]]
    assert await usage(stack) == usage_before - sum(a.size or 0 for a in gone)
    deleted = {(d.store_dir, d.file): d for d in await rows(stack, DeletedObject)}
    now = clock.now()
    for artifact in gone:
        key = artifact_key(artifact)
        record = deleted[tuple(key.rsplit("/", 1))]
        assert record.file_store == artifact.file_store and record.project_id == artifact.project_id
        # expire_at is a week away; pick_up_at is clamped to at most an hour from now
        assert timedelta(minutes=59) < record.pick_up_at - now <= timedelta(hours=1)
        assert await stack.rails.state.store.head(key) is not None  # the file waits for DeleteObjectsService

    job = await call(lambda: project.jobs.get(build["id"]))
    assert "artifacts_file" not in job.attributes and [a["file_type"] for a in job.attributes["artifacts"]] == ["trace"]
    with pytest.raises(gitlab.GitlabGetError) as error:
        await call(job.artifacts)
    assert error.value.response_code == 404


async def test_delete_project_artifacts_expires_the_unlocked_ones(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    unlocked_build = jobs_by(seeded, "build")[0]
    all_before = await rows(stack, JobArtifact)
    project = client(stack, "maria").projects.get("demo/app", lazy=True)
    await call(project.artifacts.delete)
    now = clock.now()
    after = {a.id: a for a in await rows(stack, JobArtifact)}
    assert len(after) == len(all_before)  # expired, not deleted: housekeeping deletes them later
    for artifact in all_before:
        changed = after[artifact.id]
        if artifact.locked == ArtifactLocked.unlocked and artifact.file_type != FileType.trace:
            assert artifact.job_id == unlocked_build["id"]
            assert timedelta(0) <= now - changed.expire_at < timedelta(minutes=1)
        else:
            assert changed.expire_at == artifact.expire_at
    res = await stack.client.delete("/api/v4/projects/1/artifacts", headers={"PRIVATE-TOKEN": token("maria")})
    assert (res.status_code, res.json()) == (202, {"message": "202 Accepted"})


async def test_deletes_wait_while_usage_is_recounted(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    build = jobs_by(seeded, "build")[1]
    async with stack.rails.state.db.session() as session:
        session.add(BuildArtifactsSizeRefresh(project_id=seeded["projects"]["demo/app"]["id"], state=2))
        await session.commit()
    headers = {"PRIVATE-TOKEN": token("maria")}
    for url in (f"/api/v4/projects/demo%2Fapp/jobs/{build['id']}/artifacts", "/api/v4/projects/demo%2Fapp/artifacts"):
        res = await stack.client.delete(url, headers=headers)
        assert (res.status_code, res.json()) == (409, {"message": REFRESH_MESSAGE})
    assert len(await rows(stack, JobArtifact, JobArtifact.job_id == build["id"])) == 3
    assert await rows(stack, DeletedObject) == []


@pytest.mark.parametrize(
    ("user", "method", "path", "status"),
    [
        ("gus", "POST", "jobs/{id}/artifacts/keep", 403),
        ("rita", "POST", "jobs/{id}/artifacts/keep", 403),
        ("dev", "DELETE", "jobs/{id}/artifacts", 403),
        ("gus", "DELETE", "jobs/{id}/artifacts", 403),
        ("dev", "DELETE", "artifacts", 403),
        ("eve", "DELETE", "artifacts", 404),
        (None, "DELETE", "artifacts", 401),
        (None, "POST", "jobs/{id}/artifacts/keep", 401),
    ],
)
async def test_who_may_keep_and_delete(stack: Stack, user: str | None, method: str, path: str, status: int) -> None:
    seeded = await stack.rails.seed(scenario())
    build = jobs_by(seeded, "build")[1]
    headers = {"PRIVATE-TOKEN": token(user)} if user else {}
    res = await stack.client.request(method, f"/api/v4/projects/1/{path.format(id=build['id'])}", headers=headers)
    message = {401: "401 Unauthorized", 403: "403 Forbidden", 404: "404 Project Not Found"}[status]
    assert (res.status_code, res.json()) == (status, {"message": message})
    assert len(await rows(stack, JobArtifact, JobArtifact.job_id == build["id"])) == 3
    assert all(a.expire_at is not None for a in await rows(stack, JobArtifact, JobArtifact.job_id == build["id"]))


async def test_job_token_cannot_keep_or_delete(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    build = jobs_by(seeded, "build")[1]
    job_token = jobs_by(seeded, "test")[1]["token"]
    res = await stack.client.post(
        f"/api/v4/projects/1/jobs/{build['id']}/artifacts/keep", headers={"JOB-TOKEN": job_token}
    )
    assert (res.status_code, res.json()) == (401, {"message": "401 Unauthorized"})
    admin = await stack.client.delete(
        f"/api/v4/projects/1/jobs/{build['id']}/artifacts", headers={"PRIVATE-TOKEN": ADMIN_TOKEN}
    )
    assert admin.status_code == 204 and admin.content == b""


async def test_concurrent_deletes_record_each_object_once(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    build = jobs_by(seeded, "build")[1]
    usage_before = await usage(stack)
    url = f"/api/v4/projects/1/jobs/{build['id']}/artifacts"
    answers = await asyncio.gather(
        *(stack.client.delete(url, headers={"PRIVATE-TOKEN": token("maria")}) for _ in range(4))
    )
    assert [a.status_code for a in answers] == [204] * 4
    assert len(await rows(stack, DeletedObject)) == 2  # archive and junit, once each
    gone = [a for a in seeded["artifacts"] if a["job_id"] == build["id"] and a["file_type"] != "trace"]
    assert await usage(stack) == usage_before - sum(a["size"] for a in gone)
