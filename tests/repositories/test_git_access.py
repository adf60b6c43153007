"""Who may fetch: GitLab's statuses, challenge and plain-text messages for git over HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.auth.auth_finders import token_digest
from app.models import PersonalAccessToken
from app.services.git import git_access
from tests.conftest import ADMIN_TOKEN
from tests.e2e.conftest import Stack
from tests.repositories.conftest import LOCAL_ONLY
from tests.repositories.helpers import (
    ALICE_TOKEN,
    DONE_TOKEN,
    MALLORY_TOKEN,
    OTHER_TOKEN,
    Git,
    basic,
    repo_scenario,
)
from tests.runner_api.helpers import request_job

pytestmark = LOCAL_ONLY

REFS = "/acme/app.git/info/refs?service=git-upload-pack"
PUSH_REFS = "/acme/app.git/info/refs?service=git-receive-pack"


async def running_token(c) -> str:  # type: ignore[no-untyped-def]
    res = await request_job(c)
    assert res.status_code == 201, res.text
    return res.json()["token"]


def assert_denied(res, url: str) -> None:  # type: ignore[no-untyped-def]
    assert res.status_code == 401
    assert res.headers["www-authenticate"] == 'Basic realm="GitLab"'
    assert res.headers["content-type"] == "text/plain; charset=utf-8"
    assert res.text == git_access.ACCESS_DENIED.format(help_page_url=url + git_access.HELP_PAGE)
    assert res.text.startswith("HTTP Basic: Access denied.")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("gitlab-ci-token", "glcbt-not-a-token"),
        basic("gitlab-ci-token", DONE_TOKEN),  # a finished job's token
        basic("gitlab-ci-token", ""),
        basic("alice", "her-password"),
    ],
    ids=["none", "wrong", "finished-job", "empty", "password"],
)
async def test_401_without_valid_credentials(coordinator, headers):
    await coordinator.seed(repo_scenario())
    await running_token(coordinator)
    assert_denied(await coordinator.client.get(REFS, headers=headers), coordinator.url)
    assert_denied(await coordinator.client.post("/acme/app.git/git-upload-pack", headers=headers), coordinator.url)


async def test_running_job_token_and_personal_tokens(coordinator):
    await coordinator.seed(repo_scenario())
    token = await running_token(coordinator)
    assert (await coordinator.client.get(REFS, headers=basic("gitlab-ci-token", token))).status_code == 200
    assert (await coordinator.client.get(REFS, headers=basic("anyone", ALICE_TOKEN))).status_code == 200
    res = await coordinator.client.get(REFS, headers=basic("mallory", MALLORY_TOKEN))
    assert (res.status_code, res.text) == (404, git_access.PROJECT_NOT_FOUND)
    assert res.headers["content-type"] == "text/plain; charset=utf-8"
    # a personal access token is no job token, whatever the login
    assert (await coordinator.client.get(REFS, headers=basic("gitlab-ci-token", ALICE_TOKEN))).status_code == 200


async def test_a_bad_password_is_refused_even_on_a_public_project(coordinator):
    await coordinator.seed(repo_scenario(visibility="public"))
    assert (await coordinator.client.get(REFS)).status_code == 200
    assert_denied(await coordinator.client.get(REFS, headers=basic("x", "wrong")), coordinator.url)


async def test_job_token_of_another_project(coordinator):
    await coordinator.seed(repo_scenario())
    res = await coordinator.client.get(REFS, headers=basic("gitlab-ci-token", OTHER_TOKEN))
    assert (res.status_code, res.text) == (403, "Authentication by CI/CD job token not allowed from other to app.")
    await coordinator.client.post("/-/mock/reset", headers={"PRIVATE-TOKEN": ADMIN_TOKEN})
    await coordinator.seed(repo_scenario(job_token_allowlist=["acme/other"]))
    assert (await coordinator.client.get(REFS, headers=basic("gitlab-ci-token", OTHER_TOKEN))).status_code == 200


async def test_job_token_of_a_user_without_access(coordinator):
    scenario = repo_scenario(job_token_allowlist=["acme/other"])
    scenario["projects"][1]["pipelines"][0]["user"] = "mallory"
    scenario["projects"][1]["members"] = [{"user": "mallory", "access_level": "maintainer"}]
    await coordinator.seed(scenario)
    res = await coordinator.client.get(REFS, headers=basic("gitlab-ci-token", OTHER_TOKEN))
    assert (res.status_code, res.text) == (403, "Insufficient permissions to pull from the repository of project app.")


async def test_unknown_project_and_project_without_repository(coordinator):
    scenario = repo_scenario()
    scenario["projects"].append({"path": "acme/empty"})
    await coordinator.seed(scenario)
    token = await running_token(coordinator)
    auth = basic("gitlab-ci-token", token)
    for path in ("/acme/nope.git", "/nowhere/app.git", "/app.git"):
        res = await coordinator.client.get(f"{path}/info/refs?service=git-upload-pack", headers=auth)
        assert (res.status_code, res.text) == (404, git_access.PROJECT_NOT_FOUND), path
    assert_denied(await coordinator.client.get("/acme/nope.git/info/refs?service=git-upload-pack"), coordinator.url)
    res = await coordinator.client.get(
        "/acme/empty.git/info/refs?service=git-upload-pack", headers=basic("a", ALICE_TOKEN)
    )
    assert (res.status_code, res.text) == (404, git_access.NO_REPO)


async def test_push_is_refused(coordinator):
    await coordinator.seed(repo_scenario(visibility="public"))
    token = await running_token(coordinator)
    job = basic("gitlab-ci-token", token)
    for res in (
        await coordinator.client.get(PUSH_REFS, headers=job),
        await coordinator.client.post("/acme/app.git/git-receive-pack", headers=job),
    ):
        assert (res.status_code, res.text) == (403, git_access.PUSH_CODE)
    res = await coordinator.client.get(PUSH_REFS, headers=basic("alice", ALICE_TOKEN))
    assert (res.status_code, res.text) == (403, git_access.PUSH_DISABLED)
    res = await coordinator.client.get(PUSH_REFS, headers=basic("mallory", MALLORY_TOKEN))
    assert (res.status_code, res.text) == (403, git_access.PUSH_CODE)
    assert_denied(await coordinator.client.get(PUSH_REFS), coordinator.url)  # anonymous never pushes


async def test_other_requests(coordinator):
    await coordinator.seed(repo_scenario(visibility="public"))
    auth = basic("alice", ALICE_TOKEN)
    assert (await coordinator.client.head(REFS, headers=auth)).status_code == 403
    res = await coordinator.client.get("/acme/app.git/info/refs", headers=auth)  # dumb HTTP
    assert (res.status_code, res.text) == (403, git_access.COMMAND_NOT_ALLOWED)
    assert_denied(await coordinator.client.get("/acme/app.git/info/refs"), coordinator.url)
    res = await coordinator.client.get(REFS, headers={"PRIVATE-TOKEN": ALICE_TOKEN})  # not how git authenticates
    assert res.status_code == 200  # ... but the project is public


async def test_git_push_with_the_job_token_fails_with_gitlabs_message(stack: Stack, tmp_path: Path):
    await stack.rails.seed(repo_scenario())
    res = await request_job(stack)
    info = res.json()["git_info"]
    git = Git(tmp_path)
    await git.ok("clone", "--quiet", info["repo_url"], "work")
    work = tmp_path / "work"
    await git.ok("commit", "--allow-empty", "-q", "-m", "change", cwd=work)
    code, _, err = await git.run("push", "origin", "HEAD:main", cwd=work)
    assert code != 0
    assert f"remote: {git_access.PUSH_CODE}" in err and "403" in err


async def test_git_reports_401_for_a_finished_jobs_token(stack: Stack, tmp_path: Path):
    await stack.rails.seed(repo_scenario())
    url = stack.url.replace("http://", f"http://gitlab-ci-token:{DONE_TOKEN}@") + "/acme/app.git"
    code, _, err = await Git(tmp_path).run("clone", url, "work")
    assert code != 0 and "Authentication failed" in err
    assert "remote: HTTP Basic: Access denied." in err


async def test_a_job_token_stops_working_when_the_job_ends(coordinator):
    await coordinator.seed(repo_scenario())
    res = await request_job(coordinator)
    job_id, token = res.json()["id"], res.json()["token"]
    assert (await coordinator.client.get(REFS, headers=basic("gitlab-ci-token", token))).status_code == 200
    done = await coordinator.client.put(f"/api/v4/jobs/{job_id}", json={"token": token, "state": "success"})
    assert done.status_code == 200
    assert_denied(await coordinator.client.get(REFS, headers=basic("gitlab-ci-token", token)), coordinator.url)


@pytest.mark.parametrize(
    ("visibility", "level", "status", "text"),
    [
        ("private", "guest", 403, git_access.DOWNLOAD),
        ("private", "reporter", 200, None),
        ("private", None, 404, git_access.PROJECT_NOT_FOUND),
        ("internal", None, 200, None),
        ("internal", "guest", 200, None),
        ("public", None, 200, None),
    ],
)
async def test_personal_access_tokens_by_role(coordinator, visibility, level, status, text):
    scenario = repo_scenario(visibility=visibility)
    if level:
        scenario["projects"][0]["members"] = [{"user": "mallory", "access_level": level}]
    await coordinator.seed(scenario)
    res = await coordinator.client.get(REFS, headers=basic("mallory", MALLORY_TOKEN))
    assert res.status_code == status, res.text
    if text:
        assert res.text == text


async def test_token_scopes(coordinator):
    seeded = await coordinator.seed(repo_scenario())
    user_id = seeded["users"]["alice"]["id"]
    async with coordinator.state.db.session() as session:
        for name, scopes in (("read-user", ["read_user"]), ("read-repo", ["read_repository"])):
            digest = token_digest(f"glpat-{name}-scope-token")
            session.add(PersonalAccessToken(user_id=user_id, token_digest=digest, scopes=scopes))
        await session.commit()
    res = await coordinator.client.get(REFS, headers=basic("alice", "glpat-read-user-scope-token"))
    assert (res.status_code, res.text) == (403, git_access.AUTH_DOWNLOAD)
    res = await coordinator.client.get(PUSH_REFS, headers=basic("alice", "glpat-read-user-scope-token"))
    assert (res.status_code, res.text) == (403, git_access.AUTH_UPLOAD)
    assert (
        await coordinator.client.get(REFS, headers=basic("alice", "glpat-read-repo-scope-token"))
    ).status_code == 200


async def test_paths_match_case_insensitively(coordinator):
    await coordinator.seed(repo_scenario(visibility="public"))
    assert (await coordinator.client.get("/ACME/App.git/info/refs?service=git-upload-pack")).status_code == 200


async def test_fault_rules_reach_git_requests(stack: Stack, tmp_path: Path):
    await stack.rails.seed(repo_scenario(visibility="public"))
    rule = {"component": "workhorse", "path": "git-upload-pack$", "status": 503, "times": 1}
    res = await stack.client.post("/-/mock/faults", json=rule, headers={"PRIVATE-TOKEN": ADMIN_TOKEN})
    assert res.status_code == 201, res.text
    git = Git(tmp_path)
    code, _, err = await git.run("clone", f"{stack.url}/acme/app.git", "first")
    assert code != 0 and "503" in err
    await git.ok("clone", "--quiet", f"{stack.url}/acme/app.git", "second")


async def test_projects_in_subgroups(coordinator, tmp_path: Path):
    await coordinator.seed(
        {
            "groups": [{"path": "acme", "visibility": "public"}, {"path": "acme/tools", "visibility": "public"}],
            "projects": [{"path": "acme/tools/cli", "visibility": "public", "repository": {"files": {"a.txt": "a\n"}}}],
        }
    )
    await Git(tmp_path).ok("clone", "--quiet", f"{coordinator.url}/acme/tools/cli.git", "cli")
    assert (tmp_path / "cli/a.txt").read_text() == "a\n"
    res = await coordinator.client.get("/acme/cli.git/info/refs?service=git-upload-pack")
    assert res.status_code == 401  # no such project: anonymous callers are asked to log in
