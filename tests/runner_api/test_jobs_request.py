"""POST /jobs/request: the job payload, 204 and X-GitLab-Last-Update, tags, concurrency."""

from __future__ import annotations

import asyncio

from app.models import Build
from tests.runner_api.helpers import (
    DOCKER_RUNNER_TOKEN,
    PAUSED_RUNNER_TOKEN,
    RUNNER_TOKEN,
    STRICT_RUNNER_TOKEN,
    job,
    lifecycle_scenario,
    request_job,
)

PAYLOAD_KEYS = [
    "id",
    "token",
    "allow_git_fetch",
    "job_info",
    "git_info",
    "runner_info",
    "variables",
    "steps",
    "image",
    "services",
    "artifacts",
    "cache",
    "credentials",
    "features",
    "dependencies",
]


def variables(payload: dict) -> dict[str, dict]:
    return {v["key"]: v for v in payload["variables"]}


async def build_row(c, job_id: int) -> Build:
    async with c.state.db.session() as session:
        row = await session.get(Build, job_id)
    assert row is not None
    return row


async def test_payload(coordinator):
    seeded = await coordinator.seed(lifecycle_scenario())
    test, build = job(seeded, "test"), job(seeded, "build")
    res = await request_job(coordinator)
    assert res.status_code == 201, res.text
    assert res.headers["content-type"] == "application/json"
    payload = res.json()
    assert list(payload) == PAYLOAD_KEYS
    host = coordinator.url.removeprefix("http://")
    token = test["token"]
    assert payload["id"] == test["id"] and payload["token"] == token and payload["allow_git_fetch"] is True

    info = payload["job_info"]
    assert {k: info[k] for k in ("id", "name", "stage", "project_id", "project_name", "project_full_path")} == {
        "id": test["id"],
        "name": "test",
        "stage": "test",
        "project_id": seeded["projects"]["acme/app"]["id"],
        "project_name": "app",
        "project_full_path": "acme/app",
    }
    assert info["pipeline_id"] == test["pipeline_id"]

    assert payload["git_info"] == {
        "repo_url": f"http://gitlab-ci-token:{token}@{host}/acme/app.git",
        "ref": "main",
        "sha": "a" * 40,
        "before_sha": "0" * 40,
        "ref_type": "branch",
        "refspecs": [
            f"+refs/pipelines/{test['pipeline_id']}:refs/pipelines/{test['pipeline_id']}",
            "+refs/heads/main:refs/remotes/origin/main",
        ],
        "depth": 20,
        "repo_object_format": "sha1",
        "protected": False,
    }
    assert payload["runner_info"] == {"timeout": 3600, "runner_session_url": None}

    env = variables(payload)
    assert env["CI_JOB_TOKEN"] == {"key": "CI_JOB_TOKEN", "value": token, "public": False, "masked": True}
    expected = {
        "CI_JOB_ID": str(test["id"]),
        "CI_JOB_NAME": "test",
        "CI_JOB_STAGE": "test",
        "CI_SERVER_URL": coordinator.url,
        "CI_PROJECT_ID": str(seeded["projects"]["acme/app"]["id"]),
        "CI_PROJECT_PATH": "acme/app",
        "CI_PIPELINE_ID": str(test["pipeline_id"]),
        "CI_COMMIT_SHA": "a" * 40,
        "CI_COMMIT_REF_NAME": "main",
        "GIT_STRATEGY": "none",
    }
    assert {k: env[k]["value"] for k in expected} == expected
    assert all(list(v) == ["key", "value", "public", "masked"] for v in payload["variables"])

    assert payload["steps"] == [
        {
            "name": "script",
            "script": ["echo before", "echo hello", "make test"],
            "timeout": 3600,
            "when": "on_success",
            "allow_failure": False,
        },
        {"name": "after_script", "script": ["echo cleanup"], "timeout": 3600, "when": "always", "allow_failure": True},
    ]
    assert payload["image"] is None and payload["services"] == [] and payload["cache"] == []
    assert payload["credentials"] == []
    assert payload["artifacts"] == [
        {
            "name": None,
            "paths": ["out/"],
            "exclude": ["out/*.tmp"],
            "when": "always",
            "expire_in": "1 week",
            "artifact_type": "archive",
            "artifact_format": "zip",
        }
    ]
    assert payload["features"]["trace_sections"] is True
    assert "script_failure" in payload["features"]["failure_reasons"]
    assert "glcbt-" in payload["features"]["token_mask_prefixes"]
    [dep] = payload["dependencies"]
    assert dep["id"] == build["id"] and dep["name"] == "build" and dep["token"] == token
    archive = next(a for a in seeded["artifacts"] if a["job_id"] == build["id"])
    assert dep["artifacts_file"] == {"filename": "artifacts.zip", "size": archive["size"]}

    row = await build_row(coordinator, test["id"])
    assert row.status == "running" and row.runner_id == seeded["runners"][0]["id"] and row.started_at is not None


async def test_reports_named_dependencies_and_stage_order(coordinator):
    jobs = [
        {"name": "lint", "stage": "build", "status": "success"},
        {
            "name": "deploy",
            "stage": "deploy",
            "status": "pending",
            "script": ["deploy"],
            "dependencies": ["lint"],
            "ci_artifacts": {"reports": {"junit": ["report.xml"]}, "expire_in": "1 day"},
        },
        {"name": "unit", "stage": "build", "status": "pending", "script": ["unit"]},
    ]
    seeded = await coordinator.seed(lifecycle_scenario(jobs))
    first = (await request_job(coordinator)).json()
    assert first["job_info"]["name"] == "unit"  # lower stage first, though created later
    assert first["dependencies"] == []  # same-stage jobs are no dependencies
    assert first["artifacts"] is None

    second = (await request_job(coordinator)).json()
    assert second["id"] == job(seeded, "deploy")["id"]
    assert second["dependencies"] == [{"id": job(seeded, "lint")["id"], "name": "lint", "token": second["token"]}]
    assert second["artifacts"] == [
        {
            "name": "junit.xml",
            "paths": ["report.xml"],
            "when": "always",
            "expire_in": "1 day",
            "artifact_type": "junit",
            "artifact_format": "gzip",
        }
    ]


async def test_no_job_and_last_update(coordinator):
    await coordinator.seed(lifecycle_scenario(jobs=[]))
    res = await request_job(coordinator)
    assert res.status_code == 204 and res.content == b""
    last = res.headers["X-GitLab-Last-Update"]
    assert last

    again = await request_job(coordinator, last_update=last)
    assert again.status_code == 204 and again.headers["X-GitLab-Last-Update"] == last

    await coordinator.seed(
        {
            "projects": [
                {
                    "path": "acme/other",
                    "pipelines": [{"user": "alice", "jobs": [{"name": "new", "status": "pending", "script": ["x"]}]}],
                }
            ]
        }
    )
    got = await request_job(coordinator, last_update=last)
    assert got.status_code == 201, "a newly queued job must change the queue value"
    assert got.json()["job_info"]["project_full_path"] == "acme/other"
    after = await request_job(coordinator, last_update=last)
    assert after.status_code == 204


async def test_tags(coordinator):
    jobs = [
        {"name": "tagged", "status": "pending", "script": ["x"], "tags": ["docker"]},
        {"name": "gpu", "status": "pending", "script": ["x"], "tags": ["gpu"]},
    ]
    seeded = await coordinator.seed(lifecycle_scenario(jobs))
    assert (await request_job(coordinator, RUNNER_TOKEN)).status_code == 204  # untagged runner, tagged jobs
    got = await request_job(coordinator, DOCKER_RUNNER_TOKEN)
    assert got.status_code == 201 and got.json()["id"] == job(seeded, "tagged")["id"]
    assert (await request_job(coordinator, DOCKER_RUNNER_TOKEN)).status_code == 204  # gpu needs a gpu tag
    assert (await build_row(coordinator, job(seeded, "gpu")["id"])).status == "pending"


async def test_untagged_job_needs_run_untagged(coordinator):
    seeded = await coordinator.seed(lifecycle_scenario())
    assert (await request_job(coordinator, STRICT_RUNNER_TOKEN)).status_code == 204
    got = await request_job(coordinator, DOCKER_RUNNER_TOKEN)  # tagged, but runs untagged jobs too
    assert got.status_code == 201 and got.json()["id"] == job(seeded, "test")["id"]


async def test_unknown_and_paused_runner(coordinator):
    seeded = await coordinator.seed(lifecycle_scenario())
    res = await request_job(coordinator, "glrt-nobody")
    assert res.status_code == 403 and res.json() == {"message": "403 Forbidden"}
    missing = await request_job(coordinator, None)
    assert missing.status_code == 400 and missing.json() == {"error": "token is missing"}
    paused = await request_job(coordinator, PAUSED_RUNNER_TOKEN)
    assert paused.status_code == 204 and paused.headers["X-GitLab-Last-Update"]
    assert (await build_row(coordinator, job(seeded, "test")["id"])).status == "pending"


async def test_token_from_header_and_form_body(coordinator):
    await coordinator.seed(lifecycle_scenario(jobs=[{"name": "a", "status": "pending", "script": ["x"]}]))
    by_header = await coordinator.client.post(
        "/api/v4/jobs/request", json={"system_id": "s_1"}, headers={"Runner-Token": DOCKER_RUNNER_TOKEN}
    )
    assert by_header.status_code == 201
    assert by_header.json()["job_info"]["name"] == "a"
    by_form = await coordinator.client.post("/api/v4/jobs/request", data={"token": RUNNER_TOKEN, "last_update": "x"})
    assert by_form.status_code == 204
    assert by_form.headers["X-GitLab-Last-Update"] != "x"


async def test_concurrent_requests_never_share_a_job(coordinator):
    seeded = await coordinator.seed(lifecycle_scenario())
    tokens = [RUNNER_TOKEN, DOCKER_RUNNER_TOKEN] * 5
    answers = await asyncio.gather(*(request_job(coordinator, t) for t in tokens))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [204] * 9, statuses
    [winner] = [a for a in answers if a.status_code == 201]
    assert winner.json()["id"] == job(seeded, "test")["id"]


async def test_concurrent_requests_spread_over_jobs(coordinator):
    jobs = [{"name": f"j{i}", "status": "pending", "script": ["x"]} for i in range(4)]
    await coordinator.seed(lifecycle_scenario(jobs))
    answers = await asyncio.gather(*(request_job(coordinator) for _ in range(6)))
    got = [a.json()["id"] for a in answers if a.status_code == 201]
    assert len(got) == 4 and len(set(got)) == 4
