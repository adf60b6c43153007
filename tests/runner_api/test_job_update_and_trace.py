"""PUT /jobs/:id and PATCH /jobs/:id/trace, and the trace archived as the job's artifact."""

from __future__ import annotations

import hmac

import pytest
from sqlalchemy import event, insert
from sqlmodel import select

from app.models import Build, BuildTraceChunk, JobArtifact, ProjectStatistics
from app.services.ci import append_build_trace_service
from app.uploaders.job_artifact_uploader import artifact_key
from tests.runner_api.helpers import lifecycle_scenario, patch_trace, request_job, update_job


async def running_job(c) -> tuple[dict, dict]:
    seeded = await c.seed(lifecycle_scenario())
    res = await request_job(c)
    assert res.status_code == 201, res.text
    return seeded, res.json()


async def build_row(c, job_id: int) -> Build:
    async with c.state.db.session() as session:
        row = await session.get(Build, job_id)
    assert row is not None
    return row


async def test_update_running_then_success(coordinator):
    _, job = await running_job(coordinator)
    res = await update_job(coordinator, job["id"], job["token"], state="running", checksum="crc32:00000000")
    assert res.status_code == 200 and res.text == "200"
    assert res.headers["X-GitLab-Trace-Update-Interval"] == "30"
    assert (await build_row(coordinator, job["id"])).status == "running"

    done = await update_job(coordinator, job["id"], job["token"], state="success", exit_code=0, output={"bytesize": 0})
    assert done.status_code == 200
    row = await build_row(coordinator, job["id"])
    assert row.status == "success" and row.finished_at is not None and row.failure_reason is None

    late = await update_job(coordinator, job["id"], job["token"], state="running")
    assert late.status_code == 403
    assert late.headers["Job-Status"] == "success"
    assert late.json() == {"message": "403 Forbidden - Job is not processing on runner"}
    trace = await patch_trace(coordinator, job["id"], job["token"], b"late", 0)
    assert trace.status_code == 403 and trace.headers["Job-Status"] == "success"


async def test_update_failed(coordinator):
    _, job = await running_job(coordinator)
    res = await update_job(coordinator, job["id"], job["token"], state="failed", failure_reason="script_failure")
    assert res.status_code == 200
    row = await build_row(coordinator, job["id"])
    assert row.status == "failed" and row.failure_reason == "script_failure" and row.finished_at is not None


async def test_update_failed_unknown_reason_form_encoded(coordinator):
    _, job = await running_job(coordinator)
    res = await coordinator.client.put(
        f"/api/v4/jobs/{job['id']}",
        data={"token": job["token"], "state": "failed", "failure_reason": "no_such_reason", "exit_code": "2"},
    )
    assert res.status_code == 200
    assert (await build_row(coordinator, job["id"])).failure_reason == "unknown_failure"


async def test_update_refused(coordinator):
    _, job = await running_job(coordinator)
    wrong = await update_job(coordinator, job["id"], "glcbt-wrong-token", state="success")
    assert wrong.status_code == 403 and wrong.json() == {"message": "403 Forbidden"}
    unknown = await update_job(coordinator, 999999, job["token"], state="success")
    assert unknown.status_code == 403
    bad_state = await update_job(coordinator, job["id"], job["token"], state="exploded")
    assert bad_state.status_code == 400
    by_header = await coordinator.client.put(
        f"/api/v4/jobs/{job['id']}", json={"state": "running"}, headers={"Job-Token": job["token"]}
    )
    assert by_header.status_code == 200
    assert (await build_row(coordinator, job["id"])).status == "running"


async def test_job_token_compared_in_constant_time(coordinator, monkeypatch: pytest.MonkeyPatch):
    """A wrong token of the job's own length goes through ``hmac.compare_digest``, not ``!=``."""
    _, job = await running_job(coordinator)
    compared: list[tuple[bytes, bytes]] = []
    compare_digest = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    forged = job["token"][:-1] + ("x" if job["token"][-1] != "x" else "y")
    wrong = await update_job(coordinator, job["id"], forged, state="success")
    assert wrong.status_code == 403 and wrong.json() == {"message": "403 Forbidden"}
    assert (forged.encode(), job["token"].encode()) in compared
    non_ascii = await coordinator.client.put(f"/api/v4/jobs/{job['id']}", json={"token": "glcbt-é", "state": "success"})
    assert non_ascii.status_code == 403 and non_ascii.json() == {"message": "403 Forbidden"}


async def test_patch_trace(coordinator):
    _, job = await running_job(coordinator)
    first = await patch_trace(coordinator, job["id"], job["token"], b"hello ", 0)
    assert first.status_code == 202
    assert first.headers["Range"] == "0-6"
    assert first.headers["Job-Status"] == "running"
    assert first.headers["X-GitLab-Trace-Update-Interval"] == "30"
    second = await patch_trace(coordinator, job["id"], job["token"], b"world\n", 6)
    assert second.status_code == 202 and second.headers["Range"] == "0-12"

    gap = await patch_trace(coordinator, job["id"], job["token"], b"later", 20)
    assert gap.status_code == 416
    assert gap.headers["Range"] == "0-12"
    assert gap.json() == {"message": "416 Range Not Satisfiable"}
    overlap = await patch_trace(coordinator, job["id"], job["token"], b"again", 3)
    assert overlap.status_code == 416 and overlap.headers["Range"] == "0-12"

    resumed = await patch_trace(coordinator, job["id"], job["token"], b"more", 12)
    assert resumed.status_code == 202 and resumed.headers["Range"] == "0-16"


async def empty_patch(c, job: dict, content_range: str):
    headers = {"JOB-TOKEN": job["token"], "Content-Range": content_range, "Content-Type": "text/plain"}
    return await c.client.patch(f"/api/v4/jobs/{job['id']}/trace?debug_trace=false", headers=headers)


async def test_empty_patch_trace(coordinator):
    """An empty patch where the trace ends appends nothing and says so (202, the size); where it
    does not, 416 with the size, as any misplaced patch."""
    c = coordinator
    _, job = await running_job(c)
    first = await empty_patch(c, job, "0-0")
    assert first.status_code == 202, first.text
    assert (first.headers["Range"], first.headers["Job-Status"]) == ("0-0", "running")
    assert first.headers["X-GitLab-Trace-Update-Interval"] == "30"

    await patch_trace(c, job["id"], job["token"], b"hello", 0)
    at_end = await empty_patch(c, job, "5-5")
    assert at_end.status_code == 202, at_end.text
    assert (at_end.headers["Range"], at_end.headers["Job-Status"]) == ("0-5", "running")
    misplaced = await empty_patch(c, job, "0-0")
    assert (misplaced.status_code, misplaced.headers["Range"]) == (416, "0-5")
    assert misplaced.json() == {"message": "416 Range Not Satisfiable"}


async def test_a_first_patch_that_loses_its_insert_looks_again(coordinator):
    """Another first patch inserts the trace between this one's look and its insert (here in the
    same transaction, so the rollback takes it away again): the failed insert is rolled back and
    the loop looks again, reading nothing of the job the rollback expired."""
    c = coordinator
    _, job = await running_job(c)

    def competing_insert(sync_session, _context, _instances) -> None:
        sync_session.connection().execute(insert(BuildTraceChunk).values(build_id=job["id"], raw_data=b"y"))

    async with c.state.db.session() as session:
        build = await session.get(Build, job["id"])
        event.listen(session.sync_session, "before_flush", competing_insert, once=True)
        result = await append_build_trace_service.append(session, build, b"x", 0)
    assert result == append_build_trace_service.AppendResult(202, 1)
    assert (await patch_trace(c, job["id"], job["token"], b"z", 1)).headers["Range"] == "0-2"


async def test_patch_trace_refused(coordinator):
    _, job = await running_job(coordinator)
    wrong = await patch_trace(coordinator, job["id"], "glcbt-wrong-token", b"x", 0)
    assert wrong.status_code == 403
    no_range = await coordinator.client.patch(
        f"/api/v4/jobs/{job['id']}/trace", content=b"x", headers={"JOB-TOKEN": job["token"]}
    )
    assert no_range.status_code == 400
    assert no_range.json() == {"message": "400 Missing header Content-Range"}


async def test_trace_archived_on_success(coordinator):
    seeded, job = await running_job(coordinator)
    project_id = seeded["projects"]["acme/app"]["id"]
    async with coordinator.state.db.session() as session:
        stats = (await session.exec(select(ProjectStatistics).where(ProjectStatistics.project_id == project_id))).one()
        size_before = stats.build_artifacts_size
    lines = [b"Running with gitlab-runner 19.4.0\n", b"token " + job["token"].encode() + b"\n", b"Job succeeded\n"]
    offset = 0
    for line in lines:
        res = await patch_trace(coordinator, job["id"], job["token"], line, offset)
        assert res.status_code == 202
        offset += len(line)
    done = await update_job(coordinator, job["id"], job["token"], state="success")
    assert done.status_code == 200

    expected = b"".join(lines).replace(job["token"].encode(), b"x" * len(job["token"]))
    async with coordinator.state.db.session() as session:
        trace = (
            await session.exec(select(JobArtifact).where(JobArtifact.job_id == job["id"], JobArtifact.file_type == 3))
        ).one()
        stats = (await session.exec(select(ProjectStatistics).where(ProjectStatistics.project_id == project_id))).one()
    assert (trace.file, trace.file_format, trace.size, trace.expire_at) == ("job.log", 1, len(expected), None)
    assert trace.file_store == (2 if coordinator.state.store.remote else 1)
    stored = b"".join([chunk async for chunk in coordinator.state.store.iter_range(artifact_key(trace))])
    assert stored == expected
    assert job["token"].encode() not in stored
    assert stats.build_artifacts_size == size_before + len(expected)


async def test_no_trace_no_artifact_on_failure(coordinator):
    _, job = await running_job(coordinator)
    assert (await update_job(coordinator, job["id"], job["token"], state="failed")).status_code == 200
    async with coordinator.state.db.session() as session:
        rows = (await session.exec(select(JobArtifact).where(JobArtifact.job_id == job["id"]))).all()
    assert rows == []
