"""The runner's side: take a job, then clone or fetch ``git_info.repo_url`` with the real git
CLI, straight from Rails and through Workhorse, as gitlab-runner does."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack
from tests.repositories.conftest import LOCAL_ONLY
from tests.repositories.helpers import ALICE_TOKEN, FILES, MESSAGE, Git, basic, repo_scenario, variables
from tests.runner_api.helpers import request_job

pytestmark = LOCAL_ONLY


@pytest.fixture
def git(tmp_path: Path) -> Git:
    return Git(tmp_path)


async def take_job(client_owner) -> dict:  # type: ignore[no-untyped-def]
    res = await request_job(client_owner)
    assert res.status_code == 201, res.text
    return res.json()


async def test_payload_points_at_the_repository(coordinator):
    seeded = await coordinator.seed(repo_scenario())
    repo = seeded["projects"]["acme/app"]["repository"]
    payload = await take_job(coordinator)
    pipeline_id = payload["job_info"]["pipeline_id"]
    host = coordinator.url.removeprefix("http://")
    assert payload["git_info"] == {
        "repo_url": f"http://gitlab-ci-token:{payload['token']}@{host}/acme/app.git",
        "ref": "main",
        "sha": repo["sha"],
        "before_sha": "0" * 40,
        "ref_type": "branch",
        "refspecs": [
            f"+refs/pipelines/{pipeline_id}:refs/pipelines/{pipeline_id}",
            "+refs/heads/main:refs/remotes/origin/main",
        ],
        "depth": 20,
        "repo_object_format": "sha1",
        "protected": False,
    }
    env = variables(payload)
    assert "GIT_STRATEGY" not in env
    assert {
        k: env[k] for k in ("CI_REPOSITORY_URL", "CI_COMMIT_SHA", "CI_COMMIT_SHORT_SHA", "CI_COMMIT_BEFORE_SHA")
    } == {
        "CI_REPOSITORY_URL": payload["git_info"]["repo_url"],
        "CI_COMMIT_SHA": repo["sha"],
        "CI_COMMIT_SHORT_SHA": repo["sha"][:8],
        "CI_COMMIT_BEFORE_SHA": "0" * 40,
    }
    assert env["CI_COMMIT_REF_NAME"] == env["CI_COMMIT_BRANCH"] == env["CI_DEFAULT_BRANCH"] == "main"
    assert env["CI_CONFIG_PATH"] == ".gitlab-ci.yml" and env["CI_PROJECT_PATH"] == "acme/app"
    assert env["CI_COMMIT_MESSAGE"] == MESSAGE
    assert env["CI_COMMIT_TITLE"] == "Add the app"
    assert env["CI_COMMIT_DESCRIPTION"] == "\nWith a README and a script."
    assert env["CI_COMMIT_MESSAGE_IS_TRUNCATED"] == "false"
    assert env["CI_COMMIT_AUTHOR"] == "Administrator <admin@example.com>"
    assert env["CI_COMMIT_TIMESTAMP"].endswith("Z")
    assert seeded["pipelines"][0]["sha"] == repo["sha"]


async def test_clone_from_rails(coordinator, git):
    seeded = await coordinator.seed(repo_scenario())
    payload = await take_job(coordinator)
    await git.ok("clone", "--quiet", payload["git_info"]["repo_url"], "work")
    work = git.home / "work"
    assert await git.ok("rev-parse", "HEAD", cwd=work) == seeded["projects"]["acme/app"]["repository"]["sha"]
    assert {p: (work / p).read_text() for p in FILES} == FILES


async def runner_fetch(git: Git, payload: dict, protocol: str = "2") -> Path:
    """gitlab-runner's fetch strategy: init, add origin, fetch the refspecs at depth, check out sha."""
    info = payload["git_info"]
    work = git.home / f"builds-{payload['id']}-v{protocol}"
    await git.ok("init", "--quiet", str(work))
    await git.ok("remote", "add", "origin", info["repo_url"], cwd=work)
    await git.ok(
        "-c", f"protocol.version={protocol}", "fetch", "origin", "--prune", *info["refspecs"],
        "--depth", str(info["depth"]), cwd=work,
    )  # fmt: skip
    await git.ok("checkout", "-f", "-q", info["sha"], cwd=work)
    return work


@pytest.mark.parametrize("protocol", ["2", "0"])
async def test_runner_fetch_through_workhorse(stack: Stack, git, protocol):
    await stack.rails.seed(repo_scenario())
    payload = await take_job(stack)
    assert payload["git_info"]["repo_url"].startswith(f"http://gitlab-ci-token:{payload['token']}@{stack.url[7:]}/")
    work = await runner_fetch(git, payload, protocol)
    assert await git.ok("rev-parse", "HEAD", cwd=work) == payload["git_info"]["sha"]
    pipeline_ref = f"refs/pipelines/{payload['job_info']['pipeline_id']}"
    assert await git.ok("rev-parse", pipeline_ref, cwd=work) == payload["git_info"]["sha"]
    assert (work / "src/main.py").read_text() == FILES["src/main.py"]
    assert await git.ok("rev-parse", "--is-shallow-repository", cwd=work) in ("true", "false")


async def test_clone_through_workhorse(stack: Stack, git):
    await stack.rails.seed(repo_scenario())
    payload = await take_job(stack)
    await git.ok("clone", "--quiet", "--depth", "1", payload["git_info"]["repo_url"], "work")
    assert (git.home / "work/README.md").read_text() == FILES["README.md"]


async def test_repository_from_a_directory(coordinator, git, tmp_path):
    source = tmp_path / "source"
    (source / "bin").mkdir(parents=True)
    (source / "bin/run.sh").write_text("#!/bin/sh\necho run\n")
    (source / "bin/run.sh").chmod(0o755)
    (source / "notes.txt").write_text("notes\n")
    (source / ".git").mkdir()
    (source / ".git/HEAD").write_text("not committed\n")
    seeded = await coordinator.seed(repo_scenario({"path": str(source), "branch": "develop"}, ref="develop"))
    assert seeded["projects"]["acme/app"]["repository"]["branch"] == "develop"
    payload = await take_job(coordinator)
    assert payload["git_info"]["ref"] == "develop"
    assert variables(payload)["CI_DEFAULT_BRANCH"] == "develop"
    work = await runner_fetch(git, payload)
    assert (work / "bin/run.sh").stat().st_mode & 0o100
    assert (work / "notes.txt").read_text() == "notes\n"
    assert await git.ok("ls-files", cwd=work) == "bin/run.sh\nnotes.txt"
    assert variables(payload)["CI_COMMIT_MESSAGE"] == "Initial commit\n"


def pkt(line: str) -> bytes:
    return f"{len(line) + 4:04x}{line}".encode()


async def test_gzip_and_chunked_upload_pack_through_workhorse(stack: Stack):
    """git gzips larger negotiation requests and chunks the largest: both reach http-backend."""
    seeded = await stack.rails.seed(repo_scenario())
    sha = seeded["projects"]["acme/app"]["repository"]["sha"]
    payload = await take_job(stack)
    auth = basic("gitlab-ci-token", payload["token"])
    request = pkt(f"want {sha} side-band-64k ofs-delta\n").decode() + "0000" + pkt("done\n").decode()

    async def chunks():
        body = gzip.compress(request.encode())
        for i in range(0, len(body), 7):
            yield body[i : i + 7]

    res = await stack.client.post(
        "/acme/app.git/git-upload-pack",
        content=chunks(),
        headers={
            **auth,
            "Content-Type": "application/x-git-upload-pack-request",
            "Accept": "application/x-git-upload-pack-result",
            "Content-Encoding": "gzip",
        },
    )
    assert res.status_code == 200, res.text
    assert res.headers["content-type"] == "application/x-git-upload-pack-result"
    assert res.content.startswith(b"0008NAK\n")
    assert b"PACK" in res.content


async def test_info_refs_advertises_branch_and_pipeline_ref(coordinator):
    seeded = await coordinator.seed(repo_scenario(visibility="public"))
    sha = seeded["projects"]["acme/app"]["repository"]["sha"]
    pipeline_id = seeded["pipelines"][0]["id"]
    res = await coordinator.client.get("/acme/app.git/info/refs?service=git-upload-pack")
    assert res.status_code == 200
    assert res.headers["content-type"] == "application/x-git-upload-pack-advertisement"
    assert res.headers["cache-control"].startswith("no-cache")
    assert res.content.startswith(b"001e# service=git-upload-pack\n0000")
    assert f"{sha} refs/heads/main".encode() in res.content
    assert f"{sha} refs/pipelines/{pipeline_id}".encode() in res.content


async def test_anonymous_clone_of_a_public_project(coordinator, git):
    await coordinator.seed(repo_scenario(visibility="public"))
    await git.ok("clone", "--quiet", f"{coordinator.url}/acme/app.git", "anon")
    assert (git.home / "anon/README.md").exists()


async def test_clone_with_a_personal_access_token(coordinator, git):
    await coordinator.seed(repo_scenario())
    url = coordinator.url.replace("http://", f"http://alice:{ALICE_TOKEN}@") + "/acme/app.git"
    await git.ok("clone", "--quiet", url, "mine")
    assert (git.home / "mine/README.md").exists()
