"""Refusals over plain HTTP through the front door, with GitLab's statuses and bodies."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from app import clock
from app.models import PersonalAccessToken, User
from tests.e2e.conftest import Stack
from tests.project_jobs.helpers import HELLO, call, client, jobs_by, scenario, token

NOT_FOUND_PROJECT = {"message": "404 Project Not Found"}
RECORD_NOT_FOUND = {"message": "404 Not found"}
NOT_FOUND = {"message": "404 Not Found"}
UNAUTHORIZED = {"message": "401 Unauthorized"}


def auth(user: str | None = "dev") -> dict[str, str]:
    return {"PRIVATE-TOKEN": token(user)} if user else {}


async def test_wrong_or_missing_token(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    build = jobs_by(seeded, "build")[1]
    bad = {"PRIVATE-TOKEN": "glpat-wrong"}
    for url in (
        f"/api/v4/projects/1/jobs/{build['id']}",
        f"/api/v4/projects/1/pipelines/{build['pipeline_id']}/jobs",
        f"/api/v4/projects/1/jobs/{build['id']}/artifacts",
        f"/api/v4/projects/1/jobs/{build['id']}/artifacts/out/hello.txt",
        "/api/v4/projects/1/jobs/artifacts/main/download?job=build",
    ):
        res = await stack.client.get(url, headers=bad)
        assert (res.status_code, res.json()) == (401, UNAUTHORIZED), url
    bearer = await stack.client.get("/api/v4/projects/1/jobs", headers={"Authorization": "Bearer glpat-wrong"})
    assert bearer.status_code == 401
    # jobs.rb authenticates every request; the artifacts and pipeline routes let anonymous
    # readers through to find_project!, which hides a private project.
    assert (await stack.client.get("/api/v4/projects/1/jobs")).status_code == 401
    anonymous = await stack.client.get(f"/api/v4/projects/1/jobs/{build['id']}/artifacts")
    assert (anonymous.status_code, anonymous.json()) == (404, NOT_FOUND_PROJECT)


async def test_no_access_is_not_found(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    build = jobs_by(seeded, "build")[1]
    for url in (
        f"/api/v4/projects/1/jobs/{build['id']}",
        f"/api/v4/projects/demo%2Fapp/jobs/{build['id']}/artifacts",
        "/api/v4/projects/demo%2Fnope/jobs",
        "/api/v4/projects/999/jobs",
        "/api/v4/projects/nope/jobs",
    ):
        res = await stack.client.get(url, headers=auth("eve"))
        assert (res.status_code, res.json()) == (404, NOT_FOUND_PROJECT), url
    with pytest.raises(Exception) as error:
        await call(lambda: client(stack, "eve").projects.get("demo/app", lazy=True).jobs.get(build["id"]))
    assert getattr(error.value, "response_code", None) == 404


async def test_records_outside_the_project_are_not_found(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    other_job = jobs_by(seeded, "test", project="other/lib")[0]
    for url in (
        f"/api/v4/projects/1/jobs/{other_job['id']}",
        f"/api/v4/projects/1/jobs/{other_job['id']}/artifacts",
        f"/api/v4/projects/1/pipelines/{other_job['pipeline_id']}/jobs",
        "/api/v4/projects/1/jobs/artifacts/nope/download?job=build",
        "/api/v4/projects/1/jobs/artifacts/main/download?job=nope",
        "/api/v4/projects/1/jobs/artifacts/main/raw/out/hello.txt?job=test",  # test has no archive
    ):
        res = await stack.client.get(url, headers=auth())
        assert (res.status_code, res.json()) == (404, RECORD_NOT_FOUND), url


async def test_bad_parameters(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    build = jobs_by(seeded, "build")[1]
    cases = {
        "/api/v4/projects/1/jobs/abc": {"error": "job_id is invalid"},
        "/api/v4/projects/1/jobs?scope=nope": {"error": "scope does not have a valid value"},
        "/api/v4/projects/1/jobs?scope[]=success&scope[]=bogus": {"error": "scope does not have a valid value"},
        "/api/v4/projects/1/jobs/artifacts/main/download": {"error": "job is missing"},
        f"/api/v4/projects/1/jobs/{build['id']}/artifacts/out%00x": {"message": "400 Bad request"},
        f"/api/v4/projects/1/jobs/{build['id']}/artifacts/out/%FF.txt": {"message": "400 Bad request"},
        "/api/v4/projects/1/jobs/artifacts/main/raw/a%00b?job=build": {"message": "400 Bad request"},
    }
    for url, body in cases.items():
        res = await stack.client.get(url, headers=auth())
        assert (res.status_code, res.json()) == (400, body), url


async def test_job_without_artifacts_and_path_not_in_archive(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    test, build = jobs_by(seeded, "test")[0], jobs_by(seeded, "build")[1]
    for url in (
        f"/api/v4/projects/1/jobs/{test['id']}/artifacts",
        f"/api/v4/projects/1/jobs/{test['id']}/artifacts/a.txt",
    ):
        res = await stack.client.get(url, headers=auth())
        assert (res.status_code, res.json()) == (404, NOT_FOUND), url
    # The path is Workhorse's to look up in the archive: its own 404, as GitLab's.
    for url in (
        f"/api/v4/projects/1/jobs/{build['id']}/artifacts/out/missing.txt",
        "/api/v4/projects/1/jobs/artifacts/main/raw/out/missing.txt?job=build",
    ):
        res = await stack.client.get(url, headers=auth())
        assert (res.status_code, res.text, res.headers["content-type"]) == (
            404,
            "404 page not found\n",
            "text/plain; charset=utf-8",
        ), url


async def test_expired_artifacts(stack: Stack) -> None:
    """Entries by job id need ``available_artifacts?`` (not expired, unless the pipeline keeps
    them locked); the archive download only needs the file."""
    seeded = await stack.rails.seed(scenario())
    unlocked, locked = jobs_by(seeded, "build")[0], jobs_by(seeded, "build")[1]
    clock.advance(timedelta(days=8))
    res = await stack.client.get(f"/api/v4/projects/1/jobs/{unlocked['id']}/artifacts/out/hello.txt", headers=auth())
    assert (res.status_code, res.json()) == (404, NOT_FOUND)
    res = await stack.client.get(f"/api/v4/projects/1/jobs/{locked['id']}/artifacts/out/hello.txt", headers=auth())
    assert (res.status_code, res.text) == (200, HELLO)
    job = client(stack).projects.get("demo/app", lazy=True).jobs.get(unlocked["id"], lazy=True)
    assert len(await call(job.artifacts)) > 0


async def test_broken_archives(stack: Stack) -> None:
    seeded = await stack.rails.seed(
        {
            "users": [{"username": "dev", "token": token("dev")}],
            "groups": [{"path": "demo", "members": [{"user": "dev", "access_level": "developer"}]}],
            "projects": [
                {
                    "path": "demo/app",
                    "pipelines": [
                        {"ref": "notzip", "jobs": [{"name": "build", "artifacts": [{"content": "not a zip at all"}]}]},
                        {
                            "ref": "gone",
                            "jobs": [{"name": "build", "artifacts": [{"files": {"a": "b"}, "stored": False}]}],
                        },
                    ],
                }
            ],
        }
    )
    not_zip, gone = seeded["jobs"]
    res = await stack.client.get(f"/api/v4/projects/1/jobs/{not_zip['id']}/artifacts/a", headers=auth())
    assert (res.status_code, res.text) == (500, "Internal Server Error\n")
    res = await stack.client.get(f"/api/v4/projects/1/jobs/{gone['id']}/artifacts/a", headers=auth())
    assert (res.status_code, res.json()) == (404, NOT_FOUND)  # Rails checks the file first
    res = await stack.client.get("/api/v4/projects/1/jobs/artifacts/gone/raw/a?job=build", headers=auth())
    assert (res.status_code, res.text) == (404, "404 page not found\n")  # Workhorse finds no archive


async def test_job_tokens(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    build = jobs_by(seeded, "build")[1]
    own, other = jobs_by(seeded, "test")[1]["token"], jobs_by(seeded, "test", project="other/lib")[0]["token"]
    url = f"/api/v4/projects/demo%2Fapp/jobs/{build['id']}/artifacts/out/hello.txt"
    assert (await stack.client.get(url, headers={"JOB-TOKEN": own})).text == HELLO
    res = await stack.client.get(url, headers={"JOB-TOKEN": other})
    assert (res.status_code, res.json()) == (
        403,
        {"message": "403 Forbidden - Authentication by CI/CD job token not allowed from lib to app."},
    )
    listed = await stack.client.get(
        f"/api/v4/projects/1/pipelines/{build['pipeline_id']}/jobs", params={"job_token": own}
    )
    assert listed.status_code == 200 and len(listed.json()) == 4
    not_allowed = await stack.client.get("/api/v4/projects/1/jobs", headers={"JOB-TOKEN": own})
    assert (not_allowed.status_code, not_allowed.json()) == (401, UNAUTHORIZED)
    done = jobs_by(seeded, "build")[2]["token"]  # a finished job's token authenticates nothing
    res = await stack.client.get(url, headers={"JOB-TOKEN": done})
    assert (res.status_code, res.json()) == (401, UNAUTHORIZED)


async def test_public_project_lets_anonymous_readers_download(stack: Stack) -> None:
    seeded = await stack.rails.seed(
        {
            "projects": [
                {
                    "path": "root/pub",
                    "visibility": "public",
                    "pipelines": [{"jobs": [{"name": "build", "artifacts": [{"files": {"a.txt": "public\n"}}]}]}],
                }
            ]
        }
    )
    build = seeded["jobs"][0]
    res = await stack.client.get(f"/api/v4/projects/root%2Fpub/jobs/{build['id']}/artifacts/a.txt")
    assert (res.status_code, res.text) == (200, "public\n")
    listed = await stack.client.get(f"/api/v4/projects/root%2Fpub/pipelines/{build['pipeline_id']}/jobs")
    assert listed.status_code == 200 and [j["name"] for j in listed.json()] == ["build"]
    assert (await stack.client.get(f"/api/v4/projects/root%2Fpub/jobs/{build['id']}")).status_code == 401
    assert (await stack.client.delete("/api/v4/projects/root%2Fpub/artifacts")).status_code == 401


async def test_token_scope_expiry_and_revocation(stack: Stack) -> None:
    await stack.rails.seed(scenario())
    async with stack.rails.state.db.session() as session:
        pats = {p.user_id: p for p in (await session.exec(select(PersonalAccessToken))).all()}
        users = {u.username: u.id for u in (await session.exec(select(User))).all()}
        pats[users["maria"]].scopes = ["read_api"]
        pats[users["rita"]].expires_at = clock.now() - timedelta(days=1)
        pats[users["gus"]].revoked = True
        session.add_all(pats.values())
        await session.commit()
    assert (await stack.client.get("/api/v4/projects/1/jobs", headers=auth("maria"))).status_code == 200
    res = await stack.client.delete("/api/v4/projects/1/artifacts", headers=auth("maria"))
    assert (res.status_code, res.json()) == (
        403,
        {
            "error": "insufficient_scope",
            "error_description": "The request requires higher privileges than provided by the access token.",
            "scope": "api",
        },
    )
    expired = await stack.client.get("/api/v4/projects/1/jobs", headers=auth("rita"))
    assert (expired.status_code, expired.json()["error"]) == (401, "invalid_token")
    assert expired.headers["www-authenticate"].startswith('Bearer realm="The API", error="invalid_token"')
    revoked = await stack.client.get("/api/v4/projects/1/jobs", headers=auth("gus"))
    assert revoked.json() == {
        "error": "invalid_token",
        "error_description": "Token was revoked. You have to re-authorize from the user.",
    }
    async with stack.rails.state.db.session() as session:
        dev = await session.get(User, users["dev"])
        assert dev is not None
        dev.state = "blocked"
        session.add(dev)
        await session.commit()
    blocked = await stack.client.get("/api/v4/projects/1/jobs", headers=auth("dev"))
    assert (blocked.status_code, blocked.json()) == (403, {"message": "403 Forbidden - Your account has been blocked."})
