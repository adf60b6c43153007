"""POST /projects/:id/pipeline, GET /projects/:id/pipelines[/:id], the config endpoint and
the scenario key: GitLab's entities, errors and permissions over real HTTP."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.finders.project_finder import lookup_project
from app.models import Build, BuildNeed, PipelineVariable, SchedulingType
from app.services.ci.config_source import store_ci_config
from tests.conftest import ADMIN_TOKEN
from tests.pipelines.helpers import (
    ALICE,
    BLOCKED,
    GUEST,
    OUTSIDER,
    REPORTER,
    STAGED,
    create,
    created,
    put_config,
    scenario,
    show,
    statuses,
    take,
)
from tests.runner_api.helpers import request_job

PIPELINE_KEYS = [
    "id",
    "iid",
    "project_id",
    "sha",
    "ref",
    "status",
    "source",
    "created_at",
    "updated_at",
    "web_url",
    "before_sha",
    "tag",
    "yaml_errors",
    "user",
    "started_at",
    "finished_at",
    "committed_at",
    "duration",
    "queued_duration",
    "coverage",
    "detailed_status",
]


async def test_create_answers_gitlabs_pipeline_entity(coordinator):
    seeded = await coordinator.seed(scenario())
    project_id = seeded["projects"]["acme/app"]["id"]
    res = await create(coordinator, "main")
    assert res.status_code == 201, res.text
    body = res.json()
    assert list(body) == PIPELINE_KEYS
    assert body["iid"] == 1 and body["project_id"] == project_id
    assert (body["ref"], body["source"], body["status"], body["tag"]) == ("main", "api", "pending", False)
    assert len(body["sha"]) == 40 and body["before_sha"] == "0" * 40
    assert body["web_url"] == f"{coordinator.url}/acme/app/-/pipelines/{body['id']}"
    assert body["user"]["username"] == "alice" and body["user"]["web_url"] == f"{coordinator.url}/alice"
    assert list(body["user"]) == ["id", "username", "name", "state", "locked", "avatar_url", "web_url"]
    assert body["started_at"] is None and body["finished_at"] is None and body["yaml_errors"] is None
    assert body["created_at"].endswith("Z")
    assert body["detailed_status"] == {
        "icon": "status_pending",
        "text": "Pending",
        "label": "pending",
        "group": "pending",
        "tooltip": "pending",
        "has_details": True,
        "details_path": f"/acme/app/-/pipelines/{body['id']}",
        "illustration": None,
        "favicon": "/assets/ci_favicons/favicon_status_pending.png",
    }
    assert await statuses(coordinator, body["id"]) == {"build": "pending", "test": "created", "deploy": "created"}

    # by numeric id, with ref in a JSON body; then a form body; iid counts per project
    second = await coordinator.client.post(
        f"/api/v4/projects/{project_id}/pipeline", json={"ref": "feature"}, headers={"Authorization": f"Bearer {ALICE}"}
    )
    assert second.status_code == 201, second.text
    assert second.json()["iid"] == 2 and second.json()["ref"] == "feature"
    assert second.json()["sha"] != body["sha"]
    third = await coordinator.client.post(
        "/api/v4/projects/acme%2Fapp/pipeline", data={"ref": "main"}, headers={"PRIVATE-TOKEN": ALICE}
    )
    assert third.status_code == 201 and third.json()["sha"] == body["sha"]  # one ref, one commit


async def test_show_and_list(coordinator):
    await coordinator.seed(scenario())
    first, second = await created(coordinator, "main"), await created(coordinator, "feature")

    res = await show(coordinator, first["id"])
    assert res.status_code == 200
    assert list(res.json()) == [*PIPELINE_KEYS, "name"]
    assert res.json()["id"] == first["id"] and res.json()["name"] is None
    assert (await show(coordinator, first["id"], REPORTER)).status_code == 200
    missing = await show(coordinator, 999999)
    assert missing.status_code == 404 and missing.json() == {"message": "404 Not found"}
    bad = await show(coordinator, "abc")  # type: ignore[arg-type]
    assert bad.status_code == 400 and bad.json() == {"error": "pipeline_id is invalid"}

    headers = {"PRIVATE-TOKEN": ALICE}
    listed = await coordinator.client.get("/api/v4/projects/acme%2Fapp/pipelines", headers=headers)
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()] == [second["id"], first["id"]]
    assert list(listed.json()[0]) == [
        "id",
        "iid",
        "project_id",
        "sha",
        "ref",
        "status",
        "source",
        "created_at",
        "updated_at",
        "web_url",
        "name",
    ]
    assert listed.headers["X-Total"] == "2" and listed.headers["X-Page"] == "1"
    by_ref = await coordinator.client.get("/api/v4/projects/acme%2Fapp/pipelines?ref=feature", headers=headers)
    assert [p["id"] for p in by_ref.json()] == [second["id"]]
    paged = await coordinator.client.get(
        "/api/v4/projects/acme%2Fapp/pipelines?per_page=1&page=2&sort=asc", headers=headers
    )
    assert [p["id"] for p in paged.json()] == [second["id"]]
    assert paged.headers["X-Total-Pages"] == "2" and paged.headers["X-Prev-Page"] == "1"
    assert paged.headers["X-Next-Page"] == ""
    finished = await coordinator.client.get("/api/v4/projects/acme%2Fapp/pipelines?scope=finished", headers=headers)
    assert finished.json() == []
    wrong = await coordinator.client.get("/api/v4/projects/acme%2Fapp/pipelines?status=great", headers=headers)
    assert wrong.status_code == 400 and wrong.json() == {"error": "status does not have a valid value"}


async def test_missing_config_is_gitlabs_error(coordinator):
    await coordinator.seed(scenario(ci_config=None))
    res = await create(coordinator)
    assert res.status_code == 400
    assert res.json() == {"message": {"base": ["Missing CI config file"]}}
    listed = await coordinator.client.get("/api/v4/projects/acme%2Fapp/pipelines", headers={"PRIVATE-TOKEN": ALICE})
    assert listed.json() == []  # nothing saved


async def test_invalid_config_first_linter_message(coordinator):
    await coordinator.seed(scenario())
    assert (await put_config(coordinator, STAGED)).status_code == 200
    async with coordinator.state.db.session() as session:
        project = await lookup_project(session, "acme/app")
        assert project is not None
        # stored behind the linter's back, as a repository file could be
        await store_ci_config(session, project, "build: {script: make, foo: 1}\ntest: {script: []}\n")
        await session.commit()
    res = await create(coordinator)
    assert res.status_code == 400
    assert res.json() == {"message": {"base": ["jobs:build config contains unknown keys: foo"]}}


async def test_ref_is_required(coordinator):
    await coordinator.seed(scenario())
    res = await create(coordinator, ref=None)
    assert res.status_code == 400 and res.json() == {"error": "ref is missing"}
    empty = await create(coordinator, ref="")
    assert empty.status_code == 400 and empty.json() == {"message": {"base": ["Reference not found"]}}


@pytest.mark.parametrize(
    ("token", "project", "status", "body"),
    [
        (None, "acme%2Fapp", 401, {"message": "401 Unauthorized"}),
        ("glpat-nobody-knows-this", "acme%2Fapp", 401, {"message": "401 Unauthorized"}),
        (BLOCKED, "acme%2Fapp", 403, {"message": "403 Forbidden - Your account has been blocked."}),
        (OUTSIDER, "acme%2Fapp", 404, {"message": "404 Project Not Found"}),
        (ALICE, "acme%2Fnothing", 404, {"message": "404 Project Not Found"}),
        (ALICE, "999999", 404, {"message": "404 Project Not Found"}),
        (GUEST, "acme%2Fapp", 403, {"message": "403 Forbidden"}),
        (REPORTER, "acme%2Fapp", 403, {"message": "403 Forbidden"}),
    ],
)
async def test_create_auth_failures(coordinator, token, project, status, body):
    await coordinator.seed(scenario())
    res = await create(coordinator, "main", token, project)
    assert res.status_code == status, res.text
    assert res.json() == body


async def test_read_auth(coordinator):
    seeded = await coordinator.seed(scenario())
    pipeline = await created(coordinator)
    # private project: strangers and anonymous users do not see it; guests may not read pipelines
    assert (await show(coordinator, pipeline["id"], None)).json() == {"message": "404 Project Not Found"}
    assert (await show(coordinator, pipeline["id"], OUTSIDER)).status_code == 404
    assert (await show(coordinator, pipeline["id"], "glpat-nobody-knows-this")).status_code == 401
    guest = await show(coordinator, pipeline["id"], GUEST)
    assert guest.status_code == 200  # public pipelines (public_builds) is on by default
    assert (await show(coordinator, pipeline["id"], ADMIN_TOKEN)).status_code == 200

    await coordinator.seed(
        {
            "groups": [{"path": "open"}],
            "projects": [{"path": "open/site", "visibility": "public", "public_builds": False}],
        }
    )
    res = await coordinator.client.get("/api/v4/projects/open%2Fsite/pipelines")
    assert res.status_code == 403 and res.json() == {"message": "403 Forbidden"}
    assert seeded["projects"]["acme/app"]["id"]


async def test_pipeline_variables_reach_the_job(coordinator):
    await coordinator.seed(scenario())
    variables = [
        {"key": "DEPLOY_TO", "value": "staging"},
        {"key": "KUBECONFIG", "value": "apiVersion: v1", "variable_type": "file"},
    ]
    res = await create(coordinator, "main", variables=variables)
    assert res.status_code == 201, res.text
    assert "variables" not in res.json()
    async with coordinator.state.db.session() as session:
        rows = (await session.exec(select(PipelineVariable))).all()
    assert {(r.key, r.value, r.variable_type) for r in rows} == {
        ("DEPLOY_TO", "staging", 1),
        ("KUBECONFIG", "apiVersion: v1", 2),
    }
    job = await take(coordinator)
    assert job is not None
    given = {v["key"]: v for v in job["variables"]}
    assert given["DEPLOY_TO"] == {"key": "DEPLOY_TO", "value": "staging", "public": False, "masked": False}
    assert given["KUBECONFIG"] == {
        "key": "KUBECONFIG",
        "value": "apiVersion: v1",
        "public": False,
        "file": True,
        "masked": False,
    }

    form = await coordinator.client.post(
        "/api/v4/projects/acme%2Fapp/pipeline",
        data={"ref": "main", "variables[][key]": "A", "variables[][value]": "1"},
        headers={"PRIVATE-TOKEN": ALICE},
    )
    assert form.status_code == 201, form.text

    bad_type = await create(coordinator, "main", variables=[{"key": "A", "value": "1", "variable_type": "secret"}])
    assert bad_type.status_code == 400
    assert bad_type.json() == {"error": "variables[0][variable_type] does not have a valid value"}
    not_list = await create(coordinator, "main", variables="A=1")
    assert not_list.status_code == 400 and not_list.json() == {"error": "variables is invalid"}
    bad_key = await create(coordinator, "main", variables=[{"key": "NO SPACES", "value": "1"}])
    assert bad_key.status_code == 400
    assert bad_key.json() == {
        "message": {"base": ["Failed to persist the pipeline: Validation failed: Variables is invalid"]}
    }


async def test_put_ci_config(coordinator):
    seeded = await coordinator.seed(scenario(ci_config=None))
    project_id = seeded["projects"]["acme/app"]["id"]
    res = await put_config(coordinator, "build: {stage: build, script: make}\ntest: {script: t, needs: [build]}\n")
    assert res.status_code == 200, res.text
    assert res.json() == {
        "project_id": project_id,
        "stages": [".pre", "build", "test", "deploy", ".post"],
        "jobs": [
            {
                "name": "build",
                "stage": "build",
                "stage_idx": 1,
                "when": "on_success",
                "allow_failure": False,
                "needs": None,
            },
            {
                "name": "test",
                "stage": "test",
                "stage_idx": 2,
                "when": "on_success",
                "allow_failure": False,
                "needs": ["build"],
            },
        ],
    }
    pipeline = await created(coordinator)
    assert await statuses(coordinator, pipeline["id"]) == {"build": "pending", "test": "created"}
    async with coordinator.state.db.session() as session:
        needs = (await session.exec(select(BuildNeed))).all()
        test = (await session.exec(select(Build).where(Build.name == "test"))).one()
    assert [(n.build_id, n.name, n.artifacts) for n in needs] == [(test.id, "build", True)]
    assert test.scheduling_type == SchedulingType.dag

    invalid = await put_config(coordinator, "build: {script: make, foo: 1}\ntest: {script: []}\n")
    assert invalid.status_code == 422
    assert invalid.json() == {
        "message": "jobs:build config contains unknown keys: foo",
        "errors": ["jobs:build config contains unknown keys: foo", "jobs:test script can't be blank"],
    }
    unreadable = await put_config(coordinator, "build: [x")
    assert unreadable.status_code == 400
    assert unreadable.json()["message"].startswith("(<unknown>): did not find expected")
    empty = await put_config(coordinator, "")
    assert empty.status_code == 400 and empty.json()["errors"] == ["Please provide content of .gitlab-ci.yml"]
    # the rejected configs changed nothing
    assert (await create(coordinator)).status_code == 201

    assert (await put_config(coordinator, STAGED, project="acme%2Fnothing")).status_code == 404
    assert (await put_config(coordinator, STAGED, token=ALICE)).status_code == 403
    assert (await put_config(coordinator, STAGED, token="glpat-nobody-knows-this")).status_code == 401

    gone = await coordinator.client.delete(
        "/-/mock/projects/acme%2Fapp/ci_config", headers={"PRIVATE-TOKEN": ADMIN_TOKEN}
    )
    assert gone.status_code == 204
    assert (await create(coordinator)).json() == {"message": {"base": ["Missing CI config file"]}}


async def test_scenario_ci_config(coordinator):
    as_mapping = scenario(ci_config={"compile": {"script": ["make"], "tags": ["docker"]}})
    await coordinator.seed(as_mapping)
    pipeline = await created(coordinator)
    assert await statuses(coordinator, pipeline["id"]) == {"compile": "pending"}
    assert (await request_job(coordinator)).status_code == 204  # the untagged runner may not take it

    res = await coordinator.client.post(
        "/-/mock/seed",
        json={
            "groups": [{"path": "other"}],
            "projects": [{"path": "other/app", "ci_config": "build: {script: x, foo: 1}"}],
        },
        headers={"PRIVATE-TOKEN": ADMIN_TOKEN},
    )
    assert res.status_code == 422
    assert res.json() == {"message": "projects.0.ci_config: jobs:build config contains unknown keys: foo"}
    nothing = await coordinator.client.get(
        "/api/v4/projects/other%2Fapp/pipelines", headers={"PRIVATE-TOKEN": ADMIN_TOKEN}
    )
    assert nothing.status_code == 404  # the whole scenario was rolled back
