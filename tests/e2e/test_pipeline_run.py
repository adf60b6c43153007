"""A pipeline from .gitlab-ci.yml run through Workhorse as a runner runs it: create it,
take the first job, upload its archive, finish it; the job that needs it gets the archive
as a dependency and downloads it; the pipeline ends successful."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import Stack
from tests.e2e.test_runner_flows import runner_upload
from tests.pipelines.helpers import ALICE, scenario
from tests.rails.helpers import zip_bytes
from tests.runner_api.helpers import RUNNER_TOKEN

CONFIG = """
build:
  stage: build
  script: make
  artifacts: {paths: [out/], expire_in: 1 week}
test:
  stage: test
  script: make test
  needs: [build]
"""


async def request_job(stack: Stack) -> httpx.Response:
    body = {"token": RUNNER_TOKEN, "info": {"name": "gitlab-runner", "version": "19.4.0"}}
    return await stack.client.post("/api/v4/jobs/request", json=body)


async def finish(stack: Stack, job: dict) -> None:
    res = await stack.client.put(
        f"/api/v4/jobs/{job['id']}", json={"token": job["token"], "state": "success", "exit_code": 0}
    )
    assert res.status_code == 200, res.text


async def test_pipeline_through_workhorse(stack: Stack):
    await stack.rails.seed(scenario(CONFIG))
    created = await stack.client.post("/api/v4/projects/acme%2Fapp/pipeline?ref=main", headers={"PRIVATE-TOKEN": ALICE})
    assert created.status_code == 201, created.text
    pipeline_id = created.json()["id"]

    build = (await request_job(stack)).json()
    assert build["job_info"]["name"] == "build" and build["job_info"]["pipeline_id"] == pipeline_id
    assert build["artifacts"][0]["paths"] == ["out/"] and build["artifacts"][0]["expire_in"] == "1 week"
    assert (await request_job(stack)).status_code == 204  # test waits for build
    archive = zip_bytes({"out/app.bin": "binary"})
    uploaded = await runner_upload(
        stack, build["id"], build["token"], archive, "artifact_format=zip&artifact_type=archive&expire_in=1+week"
    )
    assert uploaded.status_code == 201, uploaded.text
    await finish(stack, build)

    test = (await request_job(stack)).json()
    assert test["job_info"]["name"] == "test"
    [dependency] = test["dependencies"]
    assert dependency["id"] == build["id"] and dependency["artifacts_file"]["size"] == len(archive)
    async with httpx.AsyncClient(base_url=stack.url, follow_redirects=True, timeout=60) as client:
        download = await client.get(f"/api/v4/jobs/{build['id']}/artifacts", headers={"JOB-TOKEN": dependency["token"]})
    assert download.status_code == 200 and download.content == archive
    await finish(stack, test)

    shown = await stack.client.get(
        f"/api/v4/projects/acme%2Fapp/pipelines/{pipeline_id}", headers={"PRIVATE-TOKEN": ALICE}
    )
    assert shown.json()["status"] == "success"
