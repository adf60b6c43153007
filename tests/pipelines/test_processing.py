"""Pipelines run by a runner: jobs handed out in stage order through POST /jobs/request,
finished with PUT /jobs/:id, and what that does to later jobs and the pipeline."""

from __future__ import annotations

import asyncio

from tests.pipelines.helpers import (
    created,
    finish,
    job_row,
    pipeline_row,
    put_config,
    run,
    scenario,
    show,
    statuses,
    take,
)
from tests.rails.helpers import upload, zip_bytes


async def start(c, config: str) -> dict:
    await c.seed(scenario(config))
    return await created(c)


async def test_stage_order_and_all_success(coordinator):
    pipeline = await start(
        coordinator,
        """
stages: [build, test]
compile: {stage: build, script: make}
docs: {stage: build, script: make docs}
unit: {stage: test, script: make test}
""",
    )
    pid = pipeline["id"]
    assert pipeline["status"] == "pending"
    first, second = await take(coordinator), await take(coordinator)
    assert first and second and [first["job_info"]["name"], second["job_info"]["name"]] == ["compile", "docs"]
    assert await take(coordinator) is None  # unit waits for the whole build stage
    assert (await pipeline_row(coordinator, pid)).status == "running"
    assert (await pipeline_row(coordinator, pid)).started_at is not None

    await finish(coordinator, first)
    assert await statuses(coordinator, pid) == {"compile": "success", "docs": "running", "unit": "created"}
    assert await take(coordinator) is None
    await finish(coordinator, second, exit_code=0)
    assert (await statuses(coordinator, pid))["unit"] == "pending"
    unit = await job_row(coordinator, (await take(coordinator) or {})["id"])
    assert unit.queued_at is not None and unit.started_at is not None and unit.stage_idx == 2
    await finish(coordinator, {"id": unit.id, "token": unit.token})

    row = await pipeline_row(coordinator, pid)
    assert row.status == "success" and row.finished_at is not None and row.duration is not None
    shown = (await show(coordinator, pid)).json()
    assert shown["status"] == "success" and shown["detailed_status"]["text"] == "Passed"
    assert shown["finished_at"] is not None and shown["duration"] == row.duration
    assert (await job_row(coordinator, second["id"])).exit_code == 0


async def test_failure_runs_on_failure_and_skips_the_rest(coordinator):
    pipeline = await start(
        coordinator,
        """
stages: [build, test, cleanup]
build: {stage: build, script: make}
test: {stage: test, script: make test}
notify: {stage: cleanup, script: notify, when: on_failure}
deploy: {stage: cleanup, script: deploy}
report: {stage: cleanup, script: report, when: always}
""",
    )
    order = await run(coordinator, {"build": "failed"})
    assert order == ["build", "notify", "report"]
    assert await statuses(coordinator, pipeline["id"]) == {
        "build": "failed",
        "test": "skipped",
        "notify": "success",
        "deploy": "skipped",
        "report": "success",
    }
    row = await pipeline_row(coordinator, pipeline["id"])
    assert row.status == "failed" and row.finished_at is not None
    assert (await show(coordinator, pipeline["id"])).json()["detailed_status"]["group"] == "failed"


async def test_on_failure_is_skipped_when_all_pass(coordinator):
    pipeline = await start(
        coordinator,
        """
build: {stage: build, script: make}
notify: {stage: test, script: notify, when: on_failure}
report: {stage: deploy, script: report, when: always}
""",
    )
    assert await run(coordinator) == ["build", "report"]
    assert await statuses(coordinator, pipeline["id"]) == {"build": "success", "notify": "skipped", "report": "success"}
    assert (await pipeline_row(coordinator, pipeline["id"])).status == "success"


async def test_allow_failure_counts_as_success_with_warnings(coordinator):
    pipeline = await start(
        coordinator,
        """
lint: {stage: build, script: lint, allow_failure: true}
flaky: {stage: build, script: flaky, allow_failure: {exit_codes: [3, 4]}}
test: {stage: test, script: make test}
""",
    )
    lint, flaky = await take(coordinator), await take(coordinator)
    assert lint and flaky
    await finish(coordinator, lint, "failed", failure_reason="script_failure", exit_code=1)
    await finish(coordinator, flaky, "failed", failure_reason="script_failure", exit_code=3)
    flaky_row = await job_row(coordinator, flaky["id"])
    assert flaky_row.allow_failure is True and flaky_row.exit_code == 3  # conditionally_allow_failure!
    assert await run(coordinator) == ["test"]
    shown = (await show(coordinator, pipeline["id"])).json()
    assert shown["status"] == "success"
    assert {k: shown["detailed_status"][k] for k in ("text", "label", "group", "icon")} == {
        "text": "Warning",
        "label": "passed with warnings",
        "group": "success-with-warnings",
        "icon": "status_warning",
    }


async def test_exit_code_not_allowed_fails_the_pipeline(coordinator):
    pipeline = await start(
        coordinator,
        """
flaky: {stage: build, script: flaky, allow_failure: {exit_codes: 3}}
test: {stage: test, script: make test}
""",
    )
    flaky = await take(coordinator)
    assert flaky
    await finish(coordinator, flaky, "failed", exit_code=1)
    assert (await job_row(coordinator, flaky["id"])).allow_failure is False
    assert await statuses(coordinator, pipeline["id"]) == {"flaky": "failed", "test": "skipped"}
    assert (await pipeline_row(coordinator, pipeline["id"])).status == "failed"
    bad = await coordinator.client.put(f"/api/v4/jobs/{flaky['id']}", json={"token": flaky["token"], "exit_code": "x"})
    assert bad.status_code == 400 and bad.json() == {"error": "exit_code is invalid"}


async def test_manual_jobs(coordinator):
    pipeline = await start(
        coordinator,
        """
build: {stage: build, script: make}
review: {stage: test, script: review, when: manual}
test: {stage: test, script: make test}
deploy: {stage: deploy, script: deploy}
""",
    )
    assert await run(coordinator) == ["build", "test", "deploy"]  # an optional manual job does not block
    assert await statuses(coordinator, pipeline["id"]) == {
        "build": "success",
        "review": "manual",
        "test": "success",
        "deploy": "success",
    }
    assert (await pipeline_row(coordinator, pipeline["id"])).status == "success"

    await put_config(
        coordinator,
        """
build: {stage: build, script: make}
approve: {stage: test, script: approve, when: manual, allow_failure: false}
deploy: {stage: deploy, script: deploy}
""",
    )
    blocked = await created(coordinator)
    assert await run(coordinator) == ["build"]
    assert await statuses(coordinator, blocked["id"]) == {"build": "success", "approve": "manual", "deploy": "created"}
    row = await pipeline_row(coordinator, blocked["id"])
    assert row.status == "manual" and row.finished_at is None and row.duration is not None
    detailed = (await show(coordinator, blocked["id"])).json()["detailed_status"]
    assert (detailed["text"], detailed["label"], detailed["group"]) == (
        "Blocked",
        "waiting for manual action",
        "manual",
    )


async def test_needs_run_as_soon_as_their_needs_finish(coordinator):
    pipeline = await start(
        coordinator,
        """
stages: [build, test, deploy]
build_a: {stage: build, script: a, artifacts: {paths: [a/]}}
build_b: {stage: build, script: b, artifacts: {paths: [b/]}}
lint: {stage: test, script: lint, needs: []}
test_a:
  stage: test
  script: t
  needs: [build_a, {job: build_b, artifacts: false}]
deploy_a: {stage: deploy, script: d, needs: [test_a], dependencies: []}
wrap_up: {stage: deploy, script: w}
""",
    )
    pid = pipeline["id"]
    assert await statuses(coordinator, pid) == {
        "build_a": "pending",
        "build_b": "pending",
        "lint": "pending",  # needs: [] starts at once
        "test_a": "created",
        "deploy_a": "created",
        "wrap_up": "created",
    }
    build_a, build_b, lint = await take(coordinator), await take(coordinator), await take(coordinator)
    assert build_a and build_b and lint
    assert [j["job_info"]["name"] for j in (build_a, build_b, lint)] == ["build_a", "build_b", "lint"]
    assert lint["dependencies"] == []
    res = await upload(coordinator, build_a["id"], build_a["token"], zip_bytes({"a/file.txt": "A"}))
    assert res.status_code == 201, res.text
    res = await upload(coordinator, build_b["id"], build_b["token"], zip_bytes({"b/file.txt": "B"}))
    assert res.status_code == 201, res.text
    await finish(coordinator, build_a)
    assert (await statuses(coordinator, pid))["test_a"] == "created"  # build_b still runs
    await finish(coordinator, build_b)
    assert (await statuses(coordinator, pid))["test_a"] == "pending"
    assert (await statuses(coordinator, pid))["wrap_up"] == "created"  # lint (stage test) still runs

    test_a = await take(coordinator)
    assert test_a and test_a["job_info"]["name"] == "test_a"
    deps = test_a["dependencies"]
    assert [(d["id"], d["name"]) for d in deps] == [(build_a["id"], "build_a")]  # artifacts: false left out
    assert deps[0]["token"] == test_a["token"] and deps[0]["artifacts_file"]["filename"] == "artifacts.zip"
    await finish(coordinator, test_a)
    assert (await statuses(coordinator, pid))["deploy_a"] == "pending"  # before the test stage is done
    deploy_a = await take(coordinator)
    assert deploy_a and deploy_a["job_info"]["name"] == "deploy_a"
    assert deploy_a["dependencies"] == []  # dependencies: [] asks for none
    await finish(coordinator, deploy_a)
    await finish(coordinator, lint)
    assert await run(coordinator) == ["wrap_up"]
    assert (await pipeline_row(coordinator, pid)).status == "success"


async def test_needs_of_a_failed_job_are_skipped(coordinator):
    pipeline = await start(
        coordinator,
        """
build: {stage: build, script: make}
other: {stage: build, script: other}
test: {stage: test, script: t, needs: [build]}
cleanup: {stage: test, script: c, needs: [build], when: on_failure}
""",
    )
    assert await run(coordinator, {"build": "failed"}) == ["build", "other", "cleanup"]
    assert await statuses(coordinator, pipeline["id"]) == {
        "build": "failed",
        "other": "success",
        "test": "skipped",
        "cleanup": "success",
    }


async def test_stage_jobs_get_earlier_successful_jobs_as_dependencies(coordinator):
    await start(
        coordinator,
        """
build: {stage: build, script: make, artifacts: {paths: [out/]}}
lint: {stage: build, script: lint, allow_failure: true}
test: {stage: test, script: t}
""",
    )
    build, lint = await take(coordinator), await take(coordinator)
    assert build and lint
    await finish(coordinator, build)
    await finish(coordinator, lint, "failed")
    test = await take(coordinator)
    assert test and [d["name"] for d in test["dependencies"]] == ["build"]


async def test_jobs_finishing_together_move_the_pipeline_once(coordinator):
    pipeline = await start(
        coordinator,
        """
stages: [build, test]
a: {stage: build, script: a}
b: {stage: build, script: b}
c: {stage: build, script: c}
test: {stage: test, script: t}
""",
    )
    jobs = [await take(coordinator) for _ in range(3)]
    await asyncio.gather(*(finish(coordinator, job) for job in jobs if job))
    assert (await statuses(coordinator, pipeline["id"]))["test"] == "pending"
    assert await run(coordinator) == ["test"]
    assert (await pipeline_row(coordinator, pipeline["id"])).status == "success"
