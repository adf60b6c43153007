"""The control plane: seed (atomic, 422 naming the field), reset, job start, probes."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import func, select

from app.models import Build, JobArtifact, Project, User
from app.storage import StorageError
from tests.conftest import ADMIN_TOKEN, Coordinator
from tests.rails.helpers import job, pipeline_scenario

ADMIN = {"PRIVATE-TOKEN": ADMIN_TOKEN}


async def count(c: Coordinator, model: type) -> int:
    async with c.state.db.session() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


async def object_keys(c: Coordinator) -> list[str]:
    return [o.key async for page in c.state.store.list() for o in page]


async def test_seed_returns_ids_and_tokens(coordinator: Coordinator) -> None:
    seeded = await coordinator.seed(pipeline_scenario())
    assert set(seeded["users"]) == {"alice", "mallory"}
    assert seeded["users"]["alice"]["token"].startswith("glpat-")
    assert seeded["groups"]["acme"]["id"] > 0 and seeded["projects"]["acme/app"]["id"] > 0
    assert [j["name"] for j in seeded["jobs"]] == ["build", "test"]
    assert all(j["token"].startswith("glcbt-") for j in seeded["jobs"])
    (artifact,) = seeded["artifacts"]
    assert artifact["file_type"] == "archive" and artifact["size"] > 0
    assert artifact["key"] in await object_keys(coordinator)
    res = await coordinator.client.get(
        "/api/v4/jobs/1/artifacts", headers={"PRIVATE-TOKEN": seeded["users"]["alice"]["token"]}
    )
    assert res.status_code == 403  # the PAT is real: it authenticates (403, not 401)


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ({"users": [{"username": "bad name"}]}, "users.0.username: String should match pattern"),
        ({"projects": [{"path": "noslash"}]}, "projects.0.path: String should match pattern"),
        (
            {"projects": [{"path": "a/b", "pipelines": [{"jobs": [{"name": "j", "status": "exploded"}]}]}]},
            "projects.0.pipelines.0.jobs.0.status: Input should be",
        ),
        (
            {
                "projects": [
                    {
                        "path": "root/p",
                        "pipelines": [{"jobs": [{"name": "j", "artifacts": [{"file_type": "nonsense"}]}]}],
                    }
                ]
            },
            "projects.0.pipelines.0.jobs.0.artifacts.0.file_type: Value error",
        ),
        ({"plan_limits": {"ci_max_artifact_size_everything": 1}}, "plan_limits: Value error, unknown plan limit"),
        (
            {"settings": {"default_artifacts_expire_in": "8000 years"}},
            "settings.default_artifacts_expire_in: the expiry would fall after the year 9999",
        ),
        (
            {
                "projects": [
                    {
                        "path": "root/p",
                        "pipelines": [
                            {
                                "jobs": [
                                    {"name": "j", "artifacts": [{"file_type": "archive", "expire_in": "8000 years"}]}
                                ]
                            }
                        ],
                    }
                ]
            },
            "projects.0.pipelines.0.jobs.0.artifacts.0.expire_in: the expiry would fall after the year 9999",
        ),
        ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
    ],
)
async def test_invalid_scenarios_are_422_naming_the_field(
    coordinator: Coordinator, scenario: dict, message: str
) -> None:
    res = await coordinator.client.post("/-/mock/seed", json=scenario, headers=ADMIN)
    assert res.status_code == 422
    assert res.json()["message"].startswith(message), res.json()


async def test_seed_is_all_or_nothing(coordinator: Coordinator) -> None:
    """The second project names an unknown user after the first project's objects are stored."""
    c = coordinator
    scenario = pipeline_scenario()
    scenario["projects"].append({"path": "acme/other", "pipelines": [{"user": "nobody", "jobs": []}]})
    users_before, objects_before = await count(c, User), await object_keys(c)
    res = await c.client.post("/-/mock/seed", json=scenario, headers=ADMIN)
    assert (res.status_code, res.json()) == (422, {"message": "projects.1.pipelines.0.user: unknown user 'nobody'"})
    assert await count(c, User) == users_before
    assert await count(c, Project) == 0 and await count(c, JobArtifact) == 0
    assert await object_keys(c) == objects_before


async def test_seed_storage_failure_rolls_back(coordinator: Coordinator, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    c = coordinator
    scenario = pipeline_scenario(extra_jobs=[{"name": "second", "artifacts": [{"file_type": "archive", "size": 5}]}])
    real_put = c.state.store.put_file
    calls = []

    async def flaky_put(key, source):  # type: ignore[no-untyped-def]
        calls.append(key)
        if len(calls) == 2:
            raise StorageError("injected: bucket unreachable")
        await real_put(key, source)

    monkeypatch.setattr(c.state.store, "put_file", flaky_put)
    res = await c.client.post("/-/mock/seed", json=scenario, headers=ADMIN)
    assert res.status_code == 422 and "storing the object failed" in res.json()["message"]
    assert len(calls) == 2
    assert await count(c, JobArtifact) == 0 and await count(c, Build) == 0
    assert await object_keys(c) == []


async def test_duplicate_names_are_refused(coordinator: Coordinator) -> None:
    c = coordinator
    await c.seed({"users": [{"username": "alice"}]})
    res = await c.client.post("/-/mock/seed", json={"users": [{"username": "alice"}]}, headers=ADMIN)
    assert (res.status_code, res.json()) == (422, {"message": "users.0.username: user 'alice' already exists"})
    res = await c.client.post("/-/mock/seed", json={"groups": [{"path": "alice"}]}, headers=ADMIN)
    assert res.json() == {"message": "groups.0.path: namespace 'alice' already exists"}


async def test_control_plane_needs_an_admin(coordinator: Coordinator) -> None:
    c = coordinator
    seeded = await c.seed({"users": [{"username": "alice"}]})
    for headers, status in (
        ({}, 401),
        ({"PRIVATE-TOKEN": "glpat-nope"}, 401),
        ({"PRIVATE-TOKEN": seeded["users"]["alice"]["token"]}, 403),
        ({"Authorization": f"Bearer {ADMIN_TOKEN}"}, 200),
    ):
        res = await c.client.post("/-/mock/reset", headers=headers)
        assert res.status_code == status, headers


async def test_reset_empties_database_and_storage_but_keeps_admin(coordinator: Coordinator) -> None:
    c = coordinator
    await c.seed(pipeline_scenario())
    assert await object_keys(c)
    res = await c.client.post("/-/mock/reset", headers=ADMIN)
    assert (res.status_code, res.json()) == (200, {"message": "reset"})
    assert await object_keys(c) == []
    assert await count(c, Project) == 0 and await count(c, User) == 1
    seeded = await c.seed(pipeline_scenario())
    assert seeded["projects"]["acme/app"]["id"] == 1


@pytest.mark.parametrize("rails", ["local"], indirect=True, scope="session")  # storage plays no part
async def test_the_admin_token_survives_every_moment_of_a_reset(coordinator: Coordinator) -> None:
    """Admin requests running while the instance is reset find the token, old or new: the
    tables are emptied and the bootstrap rows written in one transaction."""
    c = coordinator
    resetting = True
    statuses: list[int] = []

    async def admin_reader() -> None:
        while resetting:
            statuses.append((await c.client.get("/-/mock/clock", headers=ADMIN)).status_code)

    async def resets() -> None:
        nonlocal resetting
        for _ in range(5):
            await c.seed(pipeline_scenario())
            assert (await c.client.post("/-/mock/reset", headers=ADMIN)).status_code == 200
        resetting = False

    await asyncio.wait_for(asyncio.gather(resets(), *(admin_reader() for _ in range(4))), timeout=60)
    assert statuses and set(statuses) == {200}, f"{statuses.count(401)} of {len(statuses)} answered 401"


async def test_start_job_hands_out_a_token(coordinator: Coordinator) -> None:
    c = coordinator
    seeded = await c.seed(
        {
            "projects": [
                {
                    "path": "root/p",
                    "pipelines": [{"status": "pending", "jobs": [{"name": "queued", "status": "pending"}]}],
                }
            ]
        }
    )
    queued = job(seeded, "queued")
    res = await c.client.post(f"/-/mock/jobs/{queued['id']}/start", headers=ADMIN)
    body = res.json()
    assert res.status_code == 200 and body["status"] == "running" and body["token"] == queued["token"]
    auth = await c.client.post(
        f"/api/v4/jobs/{queued['id']}/artifacts/authorize", headers=c.workhorse_headers(**{"JOB-TOKEN": body["token"]})
    )
    assert auth.status_code == 200
    res = await c.client.post("/-/mock/jobs/424242/start", headers=ADMIN)
    assert (res.status_code, res.json()) == (404, {"message": "404 Job Not Found"})


async def test_probes(coordinator: Coordinator) -> None:
    c = coordinator
    health = await c.client.get("/-/health")
    assert (health.status_code, health.text) == (200, "GitLab OK")
    ready = await c.client.get("/-/readiness")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "db_check": [{"status": "ok"}], "object_storage_check": [{"status": "ok"}]}


async def test_unknown_routes_and_correlation_id(coordinator: Coordinator) -> None:
    c = coordinator
    res = await c.client.get("/api/v4/nothing-here", headers={"X-Request-Id": "abc123"})
    assert (res.status_code, res.json()) == (404, {"error": "404 Not Found"})
    assert res.headers["x-request-id"] == "abc123"
    generated = (await c.client.get("/-/health")).headers["x-request-id"]
    assert len(generated) == 26


async def test_oversized_headers_are_refused(coordinator: Coordinator) -> None:
    res = await coordinator.client.get("/-/health", headers={"X-Big": "x" * 200_000})
    assert (res.status_code, res.json()) == (
        400,
        {"message": "400 Bad Request - header x-big is longer than 81920 bytes"},
    )
    many = {f"X-H{i}": "y" * 10_000 for i in range(12)}
    res = await coordinator.client.get("/-/health", headers=many)
    assert res.status_code == 400 and "in all" in res.json()["message"]
    assert res.headers["x-request-id"]
