"""Cancel, retry and play jobs, cancel and retry pipelines, read a job's log; and what the
runner then sees on its own API (Job-Status on the trace and state updates)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from app.models import Build, latest
from tests.pipelines.helpers import (
    ALICE,
    REPORTER,
    created,
    finish,
    job_row,
    pipeline_row,
    run,
    scenario,
    statuses,
    take,
)
from tests.runner_api.helpers import patch_trace, request_job, update_job

THREE_STAGES = """
stages: [build, test, deploy]
build: {stage: build, script: make}
test: {stage: test, script: make test}
deploy: {stage: deploy, script: deploy}
"""
MAINTAINER = "glpat-maria-maintainer-0001"


async def start(c, config: str = THREE_STAGES) -> dict[str, Any]:
    spec = scenario(config)
    spec["users"].append({"username": "maria", "token": MAINTAINER})
    spec["groups"][0]["members"].append({"user": "maria", "access_level": "maintainer"})
    await c.seed(spec)
    return await created(c)


async def job_ids(c, pipeline_id: int) -> dict[str, int]:
    """Job name -> id of the latest job of that name."""
    async with c.state.db.session() as session:
        jobs = (await session.exec(select(Build).where(Build.commit_id == pipeline_id, latest()))).all()
    return {j.name: j.id for j in jobs}  # type: ignore[misc]


async def post(c, path: str, token: str | None = ALICE, **body: Any):
    headers = {"PRIVATE-TOKEN": token} if token else {}
    return await c.client.post(f"/api/v4/projects/acme%2Fapp/{path}", json=body or None, headers=headers)


async def take_gracefully(c) -> dict[str, Any]:
    """A job taken by a runner that says it cancels gracefully (runs after_script first)."""
    res = await request_job(
        c, info={"name": "gitlab-runner", "version": "19.4.0", "features": {"cancel_gracefully": True}}
    )
    assert res.status_code == 201, res.text
    return res.json()


async def test_cancel_a_running_job_the_runner_then_aborts(coordinator):
    pipeline = await start(coordinator)
    job = await take(coordinator)
    assert job is not None
    assert (await patch_trace(coordinator, job["id"], job["token"], b"building\n", 0)).status_code == 202

    res = await post(coordinator, f"jobs/{job['id']}/cancel")
    assert res.status_code == 201, res.text
    assert (res.json()["id"], res.json()["status"]) == (job["id"], "canceled")
    assert res.json()["finished_at"] is not None

    trace = await patch_trace(coordinator, job["id"], job["token"], b"more\n", 9)
    assert (trace.status_code, trace.headers["Job-Status"]) == (403, "canceled")
    update = await update_job(coordinator, job["id"], job["token"], state="success")
    assert (update.status_code, update.headers["Job-Status"]) == (403, "canceled")
    assert update.json() == {"message": "403 Forbidden - Job is not processing on runner"}

    assert await statuses(coordinator, pipeline["id"]) == {"build": "canceled", "test": "skipped", "deploy": "skipped"}
    assert (await pipeline_row(coordinator, pipeline["id"])).status == "canceled"
    log = await coordinator.client.get(
        f"/api/v4/projects/acme%2Fapp/jobs/{job['id']}/trace", headers={"PRIVATE-TOKEN": ALICE}
    )
    assert (log.status_code, log.text) == (200, "building\n")  # archived as the trace artifact on cancel
    assert log.headers["content-disposition"] == f'infile; filename="{job["id"]}.log"'


async def test_graceful_cancel_waits_for_the_runner(coordinator):
    pipeline = await start(coordinator)
    job = await take_gracefully(coordinator)

    res = await post(coordinator, f"jobs/{job['id']}/cancel")
    assert (res.status_code, res.json()["status"]) == (201, "canceling")
    trace = await patch_trace(coordinator, job["id"], job["token"], b"after_script\n", 0)
    assert (trace.status_code, trace.headers["Job-Status"]) == (202, "canceling")
    running = await update_job(coordinator, job["id"], job["token"], state="running")
    assert running.status_code == 200

    # The runner ran after_script and reports the job failed: GitLab records it as canceled.
    done = await update_job(coordinator, job["id"], job["token"], state="failed", failure_reason="job_canceled")
    assert done.status_code == 200
    row = await job_row(coordinator, job["id"])
    assert row.status == "canceled" and row.finished_at is not None
    assert (await pipeline_row(coordinator, pipeline["id"])).status == "canceled"


async def test_force_cancel_needs_a_maintainer(coordinator):
    await start(coordinator)
    job = await take_gracefully(coordinator)
    assert (await post(coordinator, f"jobs/{job['id']}/cancel")).json()["status"] == "canceling"

    denied = await post(coordinator, f"jobs/{job['id']}/cancel", force=True)
    assert (denied.status_code, denied.json()) == (403, {"message": "403 Forbidden"})
    forced = await post(coordinator, f"jobs/{job['id']}/cancel", token=MAINTAINER, force=True)
    assert (forced.status_code, forced.json()["status"]) == (201, "canceled")
    late = await update_job(coordinator, job["id"], job["token"], state="success")
    assert late.status_code == 403  # the runner is told the job is gone


async def test_cancel_pending_and_finished_jobs(coordinator):
    pipeline = await start(coordinator, "a: {stage: build, script: a}\nb: {stage: build, script: b}\n")
    first = await take(coordinator)
    assert first is not None
    await finish(coordinator, first)
    other = await job_row(
        coordinator, next(i for i in (await job_ids(coordinator, pipeline["id"])).values() if i != first["id"])
    )
    assert other.status == "pending"

    res = await post(coordinator, f"jobs/{other.id}/cancel")
    assert (res.status_code, res.json()["status"]) == (201, "canceled")
    assert await take(coordinator) is None  # nothing left to hand out
    again = await post(coordinator, f"jobs/{first['id']}/cancel")  # a finished job: nothing changes
    assert (again.status_code, again.json()["status"]) == (201, "success")
    assert (await pipeline_row(coordinator, pipeline["id"])).status == "canceled"


async def test_job_action_refusals(coordinator):
    await start(coordinator)
    job = await take(coordinator)
    assert job is not None
    for action in ("cancel", "retry", "play"):
        assert (await post(coordinator, f"jobs/{job['id']}/{action}", token=None)).status_code == 401
        assert (await post(coordinator, f"jobs/{job['id']}/{action}", token=REPORTER)).json() == {
            "message": "403 Forbidden"
        }
        missing = await post(coordinator, f"jobs/999/{action}")
        assert (missing.status_code, missing.json()) == (404, {"message": "404 Not found"})
    not_retryable = await post(coordinator, f"jobs/{job['id']}/retry")
    assert (not_retryable.status_code, not_retryable.json()) == (
        403,
        {"message": "403 Forbidden - Job is not retryable"},
    )
    unplayable = await post(coordinator, f"jobs/{job['id']}/play")
    assert (unplayable.status_code, unplayable.json()) == (400, {"message": "400 Bad request - Unplayable Job"})
    bad = await post(coordinator, f"jobs/{job['id']}/cancel", force="maybe")
    assert (bad.status_code, bad.json()) == (400, {"error": "force is invalid"})
    job_token = await coordinator.client.post(
        f"/api/v4/projects/acme%2Fapp/jobs/{job['id']}/cancel", headers={"JOB-TOKEN": job["token"]}
    )
    assert job_token.status_code == 401  # these routes take users only


async def test_retry_a_failed_job_reruns_what_it_skipped(coordinator):
    pipeline = await start(coordinator)
    assert await run(coordinator, {"build": "failed"}) == ["build"]
    assert (await pipeline_row(coordinator, pipeline["id"])).status == "failed"
    ids = await job_ids(coordinator, pipeline["id"])
    failed_id = ids["build"]

    res = await post(coordinator, f"jobs/{failed_id}/retry")
    assert res.status_code == 201, res.text
    clone = res.json()
    assert clone["id"] != failed_id and (clone["name"], clone["stage"], clone["status"]) == (
        "build",
        "build",
        "pending",
    )
    assert clone["user"]["username"] == "alice"
    assert (await job_row(coordinator, failed_id)).retried is True
    assert (await pipeline_row(coordinator, pipeline["id"])).status == "pending"
    assert await statuses(coordinator, pipeline["id"]) == {"build": "pending", "test": "created", "deploy": "created"}

    listed = await coordinator.client.get(
        f"/api/v4/projects/acme%2Fapp/pipelines/{pipeline['id']}/jobs", headers={"PRIVATE-TOKEN": ALICE}
    )
    assert [j["id"] for j in listed.json()] == [clone["id"], ids["deploy"], ids["test"]]  # the retried one is history
    everything = await coordinator.client.get(
        f"/api/v4/projects/acme%2Fapp/pipelines/{pipeline['id']}/jobs?include_retried=true",
        headers={"PRIVATE-TOKEN": ALICE},
    )
    assert failed_id in [j["id"] for j in everything.json()]

    again = await take(coordinator)
    assert again is not None and again["id"] == clone["id"] and again["token"] != ""
    await finish(coordinator, again)
    assert await run(coordinator) == ["test", "deploy"]
    assert (await pipeline_row(coordinator, pipeline["id"])).status == "success"
    twice = await post(coordinator, f"jobs/{failed_id}/retry")
    assert twice.json() == {"message": "403 Forbidden - Job is not retryable"}  # retried once already


async def test_play_a_manual_job_with_variables(coordinator):
    pipeline = await start(
        coordinator,
        """
build: {stage: build, script: make}
deploy: {stage: deploy, script: deploy, when: manual, allow_failure: false}
""",
    )
    assert await run(coordinator) == ["build"]
    assert (await pipeline_row(coordinator, pipeline["id"])).status == "manual"
    assert (await statuses(coordinator, pipeline["id"]))["deploy"] == "manual"
    deploy_id = (await job_ids(coordinator, pipeline["id"]))["deploy"]

    res = await post(
        coordinator, f"jobs/{deploy_id}/play", job_variables_attributes=[{"key": "TARGET", "value": "staging"}]
    )
    assert (res.status_code, res.json()["status"], res.json()["user"]["username"]) == (200, "pending", "alice")
    assert (await pipeline_row(coordinator, pipeline["id"])).status == "running"  # success + pending
    job = await take(coordinator)
    assert job is not None and job["id"] == deploy_id
    variables = {v["key"]: v for v in job["variables"]}
    assert (variables["TARGET"]["value"], variables["TARGET"]["public"]) == ("staging", False)
    await finish(coordinator, job)
    assert (await pipeline_row(coordinator, pipeline["id"])).status == "success"

    # Played again once finished: GitLab retries it, keeping the variables.
    replay = await post(coordinator, f"jobs/{deploy_id}/play")
    assert (replay.status_code, replay.json()["id"]) == (200, deploy_id)
    assert (await job_row(coordinator, deploy_id)).retried is True
    rerun = await take(coordinator)
    assert rerun is not None and rerun["id"] != deploy_id
    assert {v["key"]: v["value"] for v in rerun["variables"]}["TARGET"] == "staging"

    bad = await post(coordinator, f"jobs/{deploy_id}/play", job_variables_attributes=[{"key": "A"}])
    assert (bad.status_code, bad.json()) == (400, {"error": "job_variables_attributes[0][value] is missing"})


async def test_cancel_and_retry_a_pipeline(coordinator):
    pipeline = await start(coordinator)
    pid = pipeline["id"]
    build = await take(coordinator)
    assert build is not None

    res = await post(coordinator, f"pipelines/{pid}/cancel")
    assert res.status_code == 200, res.text
    assert (res.json()["id"], res.json()["status"]) == (pid, "canceled")
    assert await statuses(coordinator, pid) == {"build": "canceled", "test": "canceled", "deploy": "canceled"}
    assert (await update_job(coordinator, build["id"], build["token"], state="success")).status_code == 403

    retried = await post(coordinator, f"pipelines/{pid}/retry")
    assert retried.status_code == 201, retried.text
    assert retried.json()["status"] == "pending"
    assert await run(coordinator) == ["build", "test", "deploy"]
    assert (await pipeline_row(coordinator, pid)).status == "success"

    assert (await post(coordinator, f"pipelines/{pid}/cancel", token=REPORTER)).status_code == 403
    assert (await post(coordinator, "pipelines/999/retry")).json() == {"message": "404 Not found"}


async def test_python_gitlab_drives_the_actions(coordinator):
    """The real client: job.cancel/retry/play/trace, pipeline.cancel/retry."""
    import asyncio

    import gitlab

    pipeline = await start(
        coordinator,
        """
build: {stage: build, script: make}
ship: {stage: deploy, script: ship, when: manual, allow_failure: false}
""",
    )
    gl = gitlab.Gitlab(coordinator.url, private_token=ALICE)
    project = gl.projects.get("acme/app", lazy=True)
    build = await take(coordinator)
    assert build is not None
    await patch_trace(coordinator, build["id"], build["token"], b"$ make\n", 0)

    job = await asyncio.to_thread(project.jobs.get, build["id"])
    assert await asyncio.to_thread(job.trace) == b"$ make\n"
    await asyncio.to_thread(job.cancel)
    await asyncio.to_thread(job.refresh)
    assert job.status == "canceled"

    retried = await asyncio.to_thread(job.retry)
    assert retried["status"] == "pending" and retried["id"] != build["id"]
    await finish(coordinator, await take(coordinator) or {})

    ship = await asyncio.to_thread(project.jobs.get, (await job_ids(coordinator, pipeline["id"]))["ship"])
    assert ship.status == "manual"
    await asyncio.to_thread(ship.play)
    await asyncio.to_thread(ship.refresh)
    assert ship.status == "pending"

    remote = await asyncio.to_thread(project.pipelines.get, pipeline["id"])
    await asyncio.to_thread(remote.cancel)
    await asyncio.to_thread(remote.refresh)
    assert remote.status == "canceled"
    await asyncio.to_thread(remote.retry)
    await asyncio.to_thread(remote.refresh)
    assert remote.status == "manual"  # the canceled manual job comes back waiting for its play
    with pytest.raises(gitlab.GitlabJobRetryError) as refused:
        await asyncio.to_thread(project.jobs.get(build["id"], lazy=True).retry)
    assert refused.value.response_code == 403
