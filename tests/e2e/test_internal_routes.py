"""Rails' internal routes are Workhorse's alone: a client reaching one through the front door
gets GitLab's 403, signed header or not (server_facts.md section 7)."""

from __future__ import annotations

import time

import jwt

from tests.e2e.conftest import Stack
from tests.e2e.test_runner_flows import RUNNER_HEADERS, artifacts, runner_upload
from tests.rails.helpers import job, pipeline_scenario, zip_bytes


async def test_authorize_through_the_front_door_is_403(stack: Stack) -> None:
    test = job(await stack.rails.seed(pipeline_scenario()), "test")
    res = await stack.client.post(
        f"/api/v4/jobs/{test['id']}/artifacts/authorize?artifact_type=archive", headers={"Job-Token": test["token"]}
    )
    assert (res.status_code, res.json()) == (403, {"message": "403 Forbidden"})
    assert "RemoteObject" not in res.text and "TempPath" not in res.text


async def test_a_client_supplied_workhorse_jwt_does_not_pass(stack: Stack) -> None:
    test = job(await stack.rails.seed(pipeline_scenario()), "test")
    key = stack.rails.state.secret
    valid = jwt.encode({"iss": "gitlab-workhorse", "iat": int(time.time())}, key, algorithm="HS256")
    res = await stack.client.post(
        f"/api/v4/jobs/{test['id']}/artifacts/authorize?artifact_type=archive",
        headers={"Job-Token": test["token"], "Gitlab-Workhorse-Api-Request": valid, "Gitlab-Workhorse": "1"},
    )
    assert (res.status_code, res.json()) == (403, {"message": "403 Forbidden"})


async def test_the_upload_route_itself_is_still_signed(stack: Stack) -> None:
    test = job(await stack.rails.seed(pipeline_scenario()), "test")
    res = await runner_upload(stack, test["id"], test["token"], zip_bytes({"a": "b"}), "artifact_type=archive")
    assert (res.status_code, res.text) == (201, "201")
    assert set(await artifacts(stack, test["id"])) == {1, 2}  # archive and metadata
    res = await stack.client.post(
        f"/api/v4/jobs/{test['id']}/artifacts?artifact_type=archive",
        headers={**RUNNER_HEADERS, "Content-Type": "application/json", "Job-Token": test["token"]},
        content=b"{}",
    )
    assert (res.status_code, res.json()) == (400, {"error": "file is missing"})  # proxied signed: Rails took it
