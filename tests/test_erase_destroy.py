"""Erasing a job (``POST /projects/:id/jobs/:job_id/erase``) and deleting a pipeline
(``DELETE /projects/:id/pipelines/:pipeline_id``) through the front door, with GitLab's
statuses and bodies; what each leaves in the database: artifacts become
``ci_deleted_objects`` (files wait for ``DeleteObjectsService``), usage drops by their sizes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import gitlab
import pytest
from sqlmodel import select

from app import clock
from app.lib import gitlab_version
from app.models import (
    Build,
    BuildArtifactsSizeRefresh,
    BuildNeed,
    BuildTraceChunk,
    DeletedObject,
    FileType,
    JobArtifact,
    JobVariable,
    Pipeline,
    PipelineVariable,
    ProjectStatistics,
    RefreshState,
)
from app.services.ci import destroy_pipeline_service
from app.services.projects.statistics import increment_build_artifacts_size
from app.uploaders.job_artifact_uploader import artifact_key
from tests.e2e import conftest as e2e
from tests.e2e.conftest import Stack
from tests.project_jobs.helpers import call, client, job_token, token

REFRESH_MESSAGE = "Action temporarily disabled. The project this pipeline belongs to is undergoing stats refresh."
NOT_ERASABLE = {"message": "403 Forbidden - Job is not erasable!"}
FORBIDDEN = {"message": "403 Forbidden"}
ROLES = {"olga": "owner", "maria": "maintainer", "dev": "developer", "dora": "developer", "rita": "reporter"}
WEEK = {"expire_in": "1 week"}

stack_session, stack = e2e.stack_session, e2e.stack  # the whole stack's fixtures


def scenario() -> dict[str, Any]:
    """``demo/app``: a finished pipeline (``build`` with archive, junit and trace; ``test``
    without any) and a running one (``build`` done with an archive, ``test`` running,
    ``deploy`` waiting). Every job is dev's."""
    return {
        "users": [{"username": u, "token": token(u)} for u in ROLES],
        "groups": [{"path": "demo", "members": [{"user": u, "access_level": r} for u, r in ROLES.items()]}],
        "projects": [
            {
                "path": "demo/app",
                "pipelines": [
                    {
                        "user": "dev",
                        "jobs": [
                            {
                                "name": "build",
                                "stage": "build",
                                "artifacts": [
                                    {"file_type": "archive", "files": {"out/a.txt": "built\n"}, **WEEK},
                                    {"file_type": "junit", "content": "<testsuites/>", **WEEK},
                                    {"file_type": "trace", "content": "job log\n", **WEEK},
                                ],
                            },
                            {"name": "test", "stage": "test"},
                        ],
                    },
                    {
                        "user": "dev",
                        "status": "running",
                        "jobs": [
                            {
                                "name": "build",
                                "stage": "build",
                                "artifacts": [
                                    {"file_type": "archive", "files": {"out/a.txt": "again\n"}, **WEEK},
                                    {"file_type": "trace", "content": "build log\n", **WEEK},
                                ],
                            },
                            {"name": "test", "stage": "test", "status": "running", "token": job_token("erase")},
                            {"name": "deploy", "stage": "deploy", "status": "created"},
                        ],
                    },
                ],
            }
        ],
    }


def auth(user: str) -> dict[str, str]:
    return {"PRIVATE-TOKEN": token(user)}


def job(seeded: dict[str, Any], name: str, pipeline: int) -> dict[str, Any]:
    pipeline_id = seeded["pipelines"][pipeline]["id"]
    return next(j for j in seeded["jobs"] if j["name"] == name and j["pipeline_id"] == pipeline_id)


async def rows(stack: Stack, model, *where):  # type: ignore[no-untyped-def]
    async with stack.rails.state.db.session() as session:
        return list((await session.exec(select(model).where(*where))).all())


async def add(stack: Stack, *records: Any) -> None:
    async with stack.rails.state.db.session() as session:
        session.add_all(records)
        await session.commit()


async def usage(stack: Stack, project_id: int) -> int:
    (stats,) = await rows(stack, ProjectStatistics, ProjectStatistics.project_id == project_id)
    return stats.build_artifacts_size


async def remaining_size(stack: Stack, project_id: int) -> int:
    return sum(a.size or 0 for a in await rows(stack, JobArtifact, JobArtifact.project_id == project_id))


async def refreshing(stack: Stack, project_id: int) -> None:
    await add(stack, BuildArtifactsSizeRefresh(project_id=project_id, state=RefreshState.running))


def erase_url(job_id: int | str) -> str:
    return f"/api/v4/projects/demo%2Fapp/jobs/{job_id}/erase"


def pipeline_url(pipeline_id: int | str) -> str:
    return f"/api/v4/projects/demo%2Fapp/pipelines/{pipeline_id}"


# --- erase ---------------------------------------------------------------------------------


async def test_erase_destroys_every_artifact_and_the_trace(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    project_id = seeded["projects"]["demo/app"]["id"]
    build = job(seeded, "build", 0)
    await add(stack, BuildTraceChunk(build_id=build["id"], raw_data=b"a live trace\n"))  # never archived
    before = await rows(stack, JobArtifact, JobArtifact.job_id == build["id"])
    assert sorted(a.file_type for a in before) == [FileType.archive, FileType.trace, FileType.junit]
    usage_before = await usage(stack, project_id)

    res = await stack.client.post(erase_url(build["id"]), headers=auth("dev"))
    assert res.status_code == 201, res.text
    body = res.json()
    assert (body["id"], body["status"], body["artifacts"], body["artifacts_expire_at"]) == (
        build["id"],
        "success",
        [],
        None,
    )
    assert "artifacts_file" not in body
    now = clock.now()
    erased_at = datetime.fromisoformat(body["erased_at"])
    assert timedelta(0) <= now - erased_at < timedelta(minutes=1)

    assert await rows(stack, JobArtifact, JobArtifact.job_id == build["id"]) == []
    assert await rows(stack, BuildTraceChunk, BuildTraceChunk.build_id == build["id"]) == []
    (row,) = await rows(stack, Build, Build.id == build["id"])
    assert row.erased_by_id == seeded["users"]["dev"]["id"] and row.erased_at is not None
    assert row.artifacts_expire_at is None
    assert await usage(stack, project_id) == usage_before - sum(a.size or 0 for a in before)

    deleted = {(d.store_dir, d.file): d for d in await rows(stack, DeletedObject)}
    assert len(deleted) == 3
    for artifact in before:
        key = artifact_key(artifact)
        record = deleted[tuple(key.rsplit("/", 1))]
        assert (record.project_id, record.file_store) == (project_id, artifact.file_store)
        # expire_at is a week away: pick_up_at is clamped to an hour from now
        assert timedelta(minutes=59) < record.pick_up_at - now <= timedelta(hours=1)
        assert await stack.rails.state.store.head(key) is not None  # the file waits for DeleteObjectsService

    trace = await stack.client.get(f"/api/v4/projects/demo%2Fapp/jobs/{build['id']}/trace", headers=auth("dev"))
    assert (trace.status_code, trace.text) == (200, "")
    shown = await stack.client.get(f"/api/v4/projects/demo%2Fapp/jobs/{build['id']}", headers=auth("dev"))
    assert shown.json()["erased_at"] == body["erased_at"] and shown.json()["artifacts"] == []
    # Erased, it has nothing left to erase.
    again = await stack.client.post(erase_url(build["id"]), headers=auth("dev"))
    assert (again.status_code, again.json()) == (403, NOT_ERASABLE)


async def test_a_job_that_is_not_erasable(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    running = job(seeded, "test", 1)
    await add(stack, BuildTraceChunk(build_id=running["id"], raw_data=b"running\n"))
    for job_id in (running["id"], job(seeded, "test", 0)["id"]):  # running; finished without artifacts or trace
        res = await stack.client.post(erase_url(job_id), headers=auth("maria"))
        assert (res.status_code, res.json()) == (403, NOT_ERASABLE), job_id
    assert len(await rows(stack, BuildTraceChunk)) == 1
    assert await rows(stack, DeletedObject) == []
    (row,) = await rows(stack, Build, Build.id == running["id"])
    assert row.erased_at is None


async def test_a_finished_job_with_only_a_live_trace_is_erasable(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    test = job(seeded, "test", 0)
    await add(stack, BuildTraceChunk(build_id=test["id"], raw_data=b"log\n"))
    res = await stack.client.post(erase_url(test["id"]), headers=auth("dev"))
    assert res.status_code == 201, res.text
    assert await rows(stack, BuildTraceChunk) == []


@pytest.mark.parametrize(("user", "status"), [("rita", 403), ("dora", 403), ("maria", 201), ("olga", 201)])
async def test_who_may_erase(stack: Stack, user: str, status: int) -> None:
    """``update_build`` (developers) first, then ``erase_build``: maintainers and up, or the
    developer who triggered the job (dev, not dora)."""
    seeded = await stack.rails.seed(scenario())
    build = job(seeded, "build", 0)
    res = await stack.client.post(erase_url(build["id"]), headers=auth(user))
    assert res.status_code == status, res.text
    left = await rows(stack, JobArtifact, JobArtifact.job_id == build["id"])
    if status == 403:
        assert res.json() == FORBIDDEN
        assert len(left) == 3 and await rows(stack, DeletedObject) == []
    else:
        assert left == [] and res.json()["erased_at"] is not None


async def test_erase_waits_while_usage_is_recounted(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    project_id = seeded["projects"]["demo/app"]["id"]
    build = job(seeded, "build", 0)
    await add(stack, BuildTraceChunk(build_id=build["id"], raw_data=b"live\n"))
    await refreshing(stack, project_id)
    usage_before = await usage(stack, project_id)
    res = await stack.client.post(erase_url(build["id"]), headers=auth("dev"))
    assert (res.status_code, res.json()) == (409, {"message": REFRESH_MESSAGE})
    assert len(await rows(stack, JobArtifact, JobArtifact.job_id == build["id"])) == 3
    assert len(await rows(stack, BuildTraceChunk)) == 1
    assert await rows(stack, DeletedObject) == []
    assert await usage(stack, project_id) == usage_before
    (row,) = await rows(stack, Build, Build.id == build["id"])
    assert row.erased_at is None


async def test_erase_of_an_unknown_job_or_bad_id(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    for job_id in (10**6, 2**63):
        res = await stack.client.post(erase_url(job_id), headers=auth("dev"))
        assert (res.status_code, res.json()) == (404, {"message": "404 Not found"}), job_id
    # update_build is checked before the lookup: a reporter hears 403 even for an unknown job.
    res = await stack.client.post(erase_url(10**6), headers=auth("rita"))
    assert (res.status_code, res.json()) == (403, FORBIDDEN)
    res = await stack.client.post(erase_url("abc"), headers=auth("dev"))
    assert (res.status_code, res.json()) == (400, {"error": "job_id is invalid"})
    assert (await stack.client.post(erase_url(job(seeded, "build", 0)["id"]))).status_code == 401


# --- pipeline DELETE -----------------------------------------------------------------------


async def test_delete_a_pipeline(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The running job is canceled (its live trace archived), then every artifact, trace
    included, becomes a ``ci_deleted_objects`` row picked up now, 100 at a time; then the
    jobs, chunks, variables, needs and the pipeline go. The other pipeline stays whole."""
    seeded = await stack.rails.seed(scenario())
    project_id = seeded["projects"]["demo/app"]["id"]
    pipeline_id = seeded["pipelines"][1]["id"]
    running, deploy = job(seeded, "test", 1), job(seeded, "deploy", 1)
    kept = await rows(stack, JobArtifact, JobArtifact.job_id == job(seeded, "build", 0)["id"])
    # A log the cancel archives, variables and needs, and enough artifacts for two batches.
    taken = {running["id"]: {FileType.trace}, job(seeded, "build", 1)["id"]: {FileType.archive, FileType.trace}}
    extra = [
        JobArtifact(project_id=project_id, job_id=job_id, file_type=t, size=job_id % 7 + 1, file=f"{t.name}.bin")
        for job_id in (deploy["id"], running["id"], job(seeded, "build", 1)["id"])
        for t in FileType
        if t not in taken.get(job_id, set())
    ]
    await add(
        stack,
        BuildTraceChunk(build_id=running["id"], raw_data=b"running log\n"),
        BuildNeed(build_id=deploy["id"], name="test"),
        JobVariable(job_id=deploy["id"], key="TARGET", value="staging"),
        PipelineVariable(pipeline_id=pipeline_id, key="DEPLOY", value="1"),
        *extra,
    )
    async with stack.rails.state.db.session() as session:
        await increment_build_artifacts_size(session, project_id, sum(a.size or 0 for a in extra))
        await session.commit()
    assert await usage(stack, project_id) == await remaining_size(stack, project_id)
    doomed = len(await rows(stack, JobArtifact, JobArtifact.project_id == project_id)) - len(kept) + 1  # + the log
    assert doomed > destroy_pipeline_service.BATCH_SIZE

    frozen = clock.now() + timedelta(days=2)
    monkeypatch.setattr(clock, "now", lambda: frozen)
    batches: list[tuple[int, datetime | None]] = []
    destroy_batch = destroy_pipeline_service.destroy_batch

    async def recording(session, artifacts, given=None):  # type: ignore[no-untyped-def]
        batches.append((len(artifacts), given))
        return await destroy_batch(session, artifacts, given)

    monkeypatch.setattr(destroy_pipeline_service, "destroy_batch", recording)

    res = await stack.client.delete(pipeline_url(pipeline_id), headers=auth("olga"))
    assert (res.status_code, res.content) == (204, b"")

    assert sum(n for n, _ in batches) == doomed
    assert all(n <= destroy_pipeline_service.BATCH_SIZE for n, _ in batches) and len(batches) >= 2
    assert {given for _, given in batches} == {frozen}
    deleted = await rows(stack, DeletedObject)
    assert len(deleted) == doomed
    assert {d.pick_up_at for d in deleted} == {frozen}
    assert {d.project_id for d in deleted} == {project_id}
    assert "job.log" in {d.file for d in deleted}  # the log the cancel archived went too
    assert await rows(stack, Pipeline, Pipeline.id == pipeline_id) == []
    assert await rows(stack, Build, Build.commit_id == pipeline_id) == []
    for model in (BuildTraceChunk, BuildNeed, JobVariable, PipelineVariable):
        assert await rows(stack, model) == [], model
    assert {a.id for a in await rows(stack, JobArtifact)} == {a.id for a in kept}
    assert await usage(stack, project_id) == sum(a.size or 0 for a in kept)
    # The runner of the canceled job hears nothing of it any more.
    gone = await stack.client.get(pipeline_url(pipeline_id), headers=auth("olga"))
    assert (gone.status_code, gone.json()) == (404, {"message": "404 Not found"})
    again = await stack.client.delete(pipeline_url(pipeline_id), headers=auth("olga"))
    assert (again.status_code, again.json()) == (404, {"message": "404 Not found"})


async def test_delete_with_if_unmodified_since(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    pipeline_id = seeded["pipelines"][0]["id"]
    (pipeline,) = await rows(stack, Pipeline, Pipeline.id == pipeline_id)
    updated = pipeline.updated_at.astimezone(UTC)
    for stale in (updated - timedelta(days=1), updated - timedelta(seconds=2)):
        res = await stack.client.delete(
            pipeline_url(pipeline_id), headers={**auth("olga"), "If-Unmodified-Since": format_datetime(stale, True)}
        )
        assert (res.status_code, res.json()) == (412, {"message": "412 Precondition Failed"})
    assert len(await rows(stack, Pipeline, Pipeline.id == pipeline_id)) == 1
    assert len(await rows(stack, JobArtifact)) == 5 and await rows(stack, DeletedObject) == []
    # An unparsable date is no condition (Time.parse's rescue nil); a later one holds.
    for header in ("not a date", format_datetime(updated + timedelta(seconds=2), True)):
        pipeline_id = seeded["pipelines"].pop(0)["id"]
        res = await stack.client.delete(
            pipeline_url(pipeline_id), headers={**auth("olga"), "If-Unmodified-Since": header}
        )
        assert res.status_code == 204, (header, res.text)
    assert await rows(stack, Pipeline) == []


async def test_delete_waits_while_usage_is_recounted(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    project_id = seeded["projects"]["demo/app"]["id"]
    pipeline_id = seeded["pipelines"][1]["id"]
    await refreshing(stack, project_id)
    res = await stack.client.delete(pipeline_url(pipeline_id), headers=auth("olga"))
    assert (res.status_code, res.json()) == (409, {"message": REFRESH_MESSAGE})
    assert len(await rows(stack, Pipeline)) == 2 and len(await rows(stack, JobArtifact)) == 5
    assert await rows(stack, DeletedObject) == []
    (running,) = await rows(stack, Build, Build.id == job(seeded, "test", 1)["id"])
    assert running.status == "running"  # not even canceled


@pytest.mark.parametrize("user", ["dev", "maria", "rita"])
async def test_only_owners_delete_pipelines(stack: Stack, user: str) -> None:
    seeded = await stack.rails.seed(scenario())
    pipeline_id = seeded["pipelines"][0]["id"]
    res = await stack.client.delete(pipeline_url(pipeline_id), headers=auth(user))
    assert (res.status_code, res.json()) == (403, FORBIDDEN)
    assert len(await rows(stack, Pipeline)) == 2 and len(await rows(stack, JobArtifact)) == 5
    assert await rows(stack, DeletedObject) == []


async def test_delete_an_unknown_pipeline(stack: Stack) -> None:
    await stack.rails.seed(scenario())
    for pipeline_id in (10**6, 2**63):
        res = await stack.client.delete(pipeline_url(pipeline_id), headers=auth("olga"))
        assert (res.status_code, res.json()) == (404, {"message": "404 Not found"}), pipeline_id
    # Looked up before the ability: a developer hears 404 as well.
    res = await stack.client.delete(pipeline_url(10**6), headers=auth("dev"))
    assert (res.status_code, res.json()) == (404, {"message": "404 Not found"})
    res = await stack.client.delete(pipeline_url("abc"), headers=auth("olga"))
    assert (res.status_code, res.json()) == (400, {"error": "pipeline_id is invalid"})
    assert len(await rows(stack, Pipeline)) == 2


async def test_a_failed_delete_leaves_the_rest_whole(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure while the rows go rolls them all back; artifacts already destroyed stay
    destroyed, consistently (rows gone, ``ci_deleted_objects`` there, usage matching)."""
    seeded = await stack.rails.seed(scenario())
    project_id = seeded["projects"]["demo/app"]["id"]
    pipeline_id = seeded["pipelines"][0]["id"]
    await add(stack, BuildTraceChunk(build_id=job(seeded, "test", 0)["id"], raw_data=b"log\n"))
    delete = destroy_pipeline_service.delete

    def failing(model):  # type: ignore[no-untyped-def]
        if model is Build:
            raise RuntimeError("the database went away")
        return delete(model)

    monkeypatch.setattr(destroy_pipeline_service, "delete", failing)
    res = await stack.client.delete(pipeline_url(pipeline_id), headers=auth("olga"))
    assert res.status_code == 500
    assert len(await rows(stack, Pipeline, Pipeline.id == pipeline_id)) == 1
    assert len(await rows(stack, Build, Build.commit_id == pipeline_id)) == 2
    assert len(await rows(stack, BuildTraceChunk)) == 1  # deleted before the failure, rolled back
    assert len(await rows(stack, DeletedObject)) == 3  # the destroyed artifacts, each once
    assert await rows(stack, JobArtifact, JobArtifact.job_id == job(seeded, "build", 0)["id"]) == []
    assert await usage(stack, project_id) == await remaining_size(stack, project_id)

    monkeypatch.setattr(destroy_pipeline_service, "delete", delete)
    res = await stack.client.delete(pipeline_url(pipeline_id), headers=auth("olga"))
    assert res.status_code == 204
    assert len(await rows(stack, DeletedObject)) == 3
    assert await rows(stack, Pipeline, Pipeline.id == pipeline_id) == []
    assert await usage(stack, project_id) == await remaining_size(stack, project_id)


async def test_an_artifact_arriving_meanwhile_goes_the_same_way(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``canceling`` job's runner may still upload while the artifacts go: the rows wait
    until that artifact has gone through ``destroy_batch`` as well."""
    seeded = await stack.rails.seed(scenario())
    project_id = seeded["projects"]["demo/app"]["id"]
    pipeline_id = seeded["pipelines"][1]["id"]
    late_job = job(seeded, "test", 1)["id"]
    destroy_artifacts = destroy_pipeline_service.destroy_artifacts
    passes: list[int] = []

    async def upload_after_first_pass(session, pipeline_id):  # type: ignore[no-untyped-def]
        declined = await destroy_artifacts(session, pipeline_id)
        passes.append(len(await rows(stack, DeletedObject)))
        if len(passes) == 1:
            late = JobArtifact(project_id=project_id, job_id=late_job, file_type=FileType.junit, size=5, file="j.xml")
            await add(stack, late)
            async with stack.rails.state.db.session() as other:
                await increment_build_artifacts_size(other, project_id, 5)
                await other.commit()
        return declined

    monkeypatch.setattr(destroy_pipeline_service, "destroy_artifacts", upload_after_first_pass)
    res = await stack.client.delete(pipeline_url(pipeline_id), headers=auth("olga"))
    assert res.status_code == 204, res.text
    assert passes == [2, 3]  # the late one went through destroy_batch in a second pass
    assert "j.xml" in {d.file for d in await rows(stack, DeletedObject)}
    assert await rows(stack, Pipeline, Pipeline.id == pipeline_id) == []
    assert await usage(stack, project_id) == await remaining_size(stack, project_id)


async def test_python_gitlab_erases_and_deletes(stack: Stack) -> None:
    """python-gitlab's ``job.erase()`` and ``pipelines.delete()`` against the front door."""
    seeded = await stack.rails.seed(scenario())
    project_id = seeded["projects"]["demo/app"]["id"]
    build = job(seeded, "build", 0)
    project = client(stack, "dev").projects.get(project_id, lazy=True)
    await call(lambda: project.jobs.get(build["id"], lazy=True).erase())
    erased = await call(lambda: project.jobs.get(build["id"]))
    assert erased.erased_at is not None and erased.attributes["artifacts"] == []
    with pytest.raises(gitlab.GitlabDeleteError) as error:
        await call(lambda: project.pipelines.delete(seeded["pipelines"][1]["id"]))
    assert error.value.response_code == 403
    owned = client(stack, "olga").projects.get(project_id, lazy=True)
    await call(lambda: owned.pipelines.delete(seeded["pipelines"][1]["id"]))
    remaining = await call(lambda: owned.pipelines.list(get_all=True))
    assert [p.id for p in remaining] == [seeded["pipelines"][0]["id"]]


@pytest.mark.parametrize("release", ["15.2", "16.5"])
async def test_releases_whose_destroy_batch_keeps_traces(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, release: str
) -> None:
    """15.x and 16.x's ``DestroyBatchService`` never took traces: erase's ``trace.erase!`` and
    the pipeline's destroy remove them as a record's ``destroy!`` does (row and usage in the
    transaction, the file right after it), so nothing is left behind."""
    monkeypatch.setattr(gitlab_version, "_current", gitlab_version.parse(release))
    seeded = await stack.rails.seed(scenario())
    project_id = seeded["projects"]["demo/app"]["id"]
    build = job(seeded, "build", 0)
    trace = next(a for a in await rows(stack, JobArtifact, JobArtifact.job_id == build["id"]) if a.file_type == 3)
    res = await stack.client.post(erase_url(build["id"]), headers=auth("dev"))
    assert res.status_code == 201, res.text
    assert await rows(stack, JobArtifact, JobArtifact.job_id == build["id"]) == []
    assert await stack.rails.state.store.head(artifact_key(trace)) is None  # removed, not waiting
    assert len(await rows(stack, DeletedObject)) == 2  # archive and junit
    assert await usage(stack, project_id) == await remaining_size(stack, project_id)

    pipeline_id = seeded["pipelines"][1]["id"]
    traces = [a for a in await rows(stack, JobArtifact) if a.file_type == FileType.trace]
    res = await stack.client.delete(pipeline_url(pipeline_id), headers=auth("olga"))
    assert res.status_code == 204, res.text
    assert await rows(stack, JobArtifact) == [] and await rows(stack, Pipeline, Pipeline.id == pipeline_id) == []
    assert len(await rows(stack, DeletedObject)) == 3  # and the archive of pipeline 1's build
    for artifact in traces:
        assert await stack.rails.state.store.head(artifact_key(artifact)) is None
    assert await usage(stack, project_id) == 0
