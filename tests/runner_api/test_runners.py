"""POST /runners, POST /runners/verify, DELETE /runners."""

from __future__ import annotations

from sqlmodel import select

from app.models import Build, Runner
from tests.runner_api.helpers import (
    REGISTRATION_TOKEN,
    RUNNER_TOKEN,
    lifecycle_scenario,
    request_job,
    update_job,
)

REGISTER_BODY = {
    "description": "ci-box",
    "maintenance_note": "",
    "tag_list": "docker, linux",
    "run_untagged": False,
    "locked": True,
    "access_level": "not_protected",
    "maximum_timeout": 600,
    "paused": False,
    "info": {"name": "gitlab-runner", "version": "19.4.0"},
}


async def runner_row(c, runner_id: int) -> Runner | None:
    async with c.state.db.session() as session:
        return await session.get(Runner, runner_id)


async def test_register_with_the_instance_token(coordinator):
    await coordinator.seed(lifecycle_scenario())
    res = await coordinator.client.post("/api/v4/runners", json={**REGISTER_BODY, "token": REGISTRATION_TOKEN})
    assert res.status_code == 201, res.text
    assert res.headers["content-type"] == "application/json"
    body = res.json()
    assert list(body) == ["id", "token", "token_expires_at"]
    assert body["token"].startswith("glrt-") and body["token_expires_at"] is None
    row = await runner_row(coordinator, body["id"])
    assert row is not None and row.token == body["token"]
    assert row.tag_list == ["docker", "linux"] and row.run_untagged is False and row.locked is True
    assert row.maximum_timeout == 600 and row.active is True and row.description == "ci-box"

    verified = await coordinator.client.post(
        "/api/v4/runners/verify", json={"token": body["token"], "system_id": "s_0123456789ab"}
    )
    assert verified.status_code == 200
    assert verified.json() == {"id": body["id"], "token": body["token"], "token_expires_at": None}


async def test_register_form_encoded_paused(coordinator):
    await coordinator.seed(lifecycle_scenario())
    res = await coordinator.client.post(
        "/api/v4/runners",
        data={"token": REGISTRATION_TOKEN, "description": "form", "tag_list": "a,b", "paused": "true"},
    )
    assert res.status_code == 201, res.text
    row = await runner_row(coordinator, res.json()["id"])
    assert row is not None and row.active is False and row.tag_list == ["a", "b"] and row.run_untagged is True


async def test_register_refused(coordinator):
    await coordinator.seed(lifecycle_scenario())
    res = await coordinator.client.post("/api/v4/runners", json={**REGISTER_BODY, "token": "wrong"})
    assert res.status_code == 403
    assert res.json() == {"message": "403 Forbidden"}
    # A token that is not ASCII is a wrong token too, not a 500 from the comparison.
    res = await coordinator.client.post("/api/v4/runners", json={**REGISTER_BODY, "token": "GR1348941-é"})
    assert res.status_code == 403
    assert res.json() == {"message": "403 Forbidden"}
    res = await coordinator.client.post("/api/v4/runners", json={"description": "no token"})
    assert res.status_code == 400
    assert res.json() == {"error": "token is missing"}
    res = await coordinator.client.post("/api/v4/runners", json={"token": REGISTRATION_TOKEN, "access_level": "x"})
    assert res.status_code == 400
    assert res.json() == {"error": "access_level does not have a valid value"}


async def test_register_without_a_configured_token(coordinator):
    scenario = lifecycle_scenario()
    del scenario["settings"]
    await coordinator.seed(scenario)
    res = await coordinator.client.post("/api/v4/runners", json={"token": REGISTRATION_TOKEN})
    assert res.status_code == 403


async def test_verify_seeded_runner_and_header_token(coordinator):
    seeded = await coordinator.seed(lifecycle_scenario())
    runner_id = seeded["runners"][0]["id"]
    res = await coordinator.client.post("/api/v4/runners/verify", json={"token": RUNNER_TOKEN, "system_id": "s_1"})
    assert res.status_code == 200
    assert res.json() == {"id": runner_id, "token": RUNNER_TOKEN, "token_expires_at": None}
    res = await coordinator.client.post("/api/v4/runners/verify", json={}, headers={"Runner-Token": RUNNER_TOKEN})
    assert res.status_code == 200
    row = await runner_row(coordinator, runner_id)
    assert row is not None and row.contacted_at is not None
    res = await coordinator.client.post("/api/v4/runners/verify", json={"token": "glrt-unknown"})
    assert res.status_code == 403
    assert res.json() == {"message": "403 Forbidden"}


async def test_delete(coordinator):
    seeded = await coordinator.seed(lifecycle_scenario())
    got = await request_job(coordinator)
    assert got.status_code == 201
    job = got.json()
    assert (await update_job(coordinator, job["id"], job["token"], state="success")).status_code == 200

    res = await coordinator.client.request("DELETE", "/api/v4/runners", json={"token": RUNNER_TOKEN})
    assert res.status_code == 204
    assert res.content == b""
    assert await runner_row(coordinator, seeded["runners"][0]["id"]) is None
    async with coordinator.state.db.session() as session:
        build = await session.get(Build, job["id"])
        assert build is not None and build.runner_id is None and build.status == "success"
        left = (await session.exec(select(Runner.token))).all()
    assert RUNNER_TOKEN not in left and len(left) == 3

    again = await coordinator.client.request("DELETE", "/api/v4/runners", json={"token": RUNNER_TOKEN})
    assert again.status_code == 403
    verify = await coordinator.client.post("/api/v4/runners/verify", json={"token": RUNNER_TOKEN})
    assert verify.status_code == 403


async def test_delete_form_encoded(coordinator):
    await coordinator.seed(lifecycle_scenario())
    res = await coordinator.client.request(
        "DELETE",
        "/api/v4/runners",
        content=f"token={RUNNER_TOKEN}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert res.status_code == 204
