"""The ``repository`` scenario key, its errors, the read interface, and reset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.services.git import repositories
from tests.conftest import ADMIN_TOKEN
from tests.repositories.conftest import LOCAL_ONLY
from tests.repositories.helpers import ALICE_TOKEN, FILES, basic, repo_scenario

pytestmark = LOCAL_ONLY


def on_disk(c) -> list[Path]:  # type: ignore[no-untyped-def]
    root = c.settings.repositories_path
    return sorted(root.glob("@hashed/*/*/*.git")) if root.exists() else []


async def seed_error(c, scenario: dict) -> str:  # type: ignore[no-untyped-def]
    res = await c.client.post("/-/mock/seed", json=scenario, headers={"PRIVATE-TOKEN": ADMIN_TOKEN})
    assert res.status_code == 422, res.text
    return res.json()["message"]


async def test_hashed_storage_and_the_read_interface(coordinator):
    seeded = await coordinator.seed(repo_scenario())
    project_id = seeded["projects"]["acme/app"]["id"]
    sha = seeded["projects"]["acme/app"]["repository"]["sha"]
    path = repositories.repository_dir(coordinator.settings, project_id)
    assert path.relative_to(coordinator.settings.repositories_path).as_posix() == (
        f"{repositories.disk_path(project_id)}.git"
    )
    assert repositories.disk_path(1) == (
        "@hashed/6b/86/6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"
    )  # GitLab's hashed path of project 1
    settings = coordinator.settings
    assert await repositories.has_repository(settings, project_id)
    assert await repositories.head_sha(settings, project_id, "main") == sha
    assert await repositories.default_branch(settings, project_id) == "main"
    assert await repositories.read_blob(settings, project_id, sha, ".gitlab-ci.yml") == FILES[".gitlab-ci.yml"].encode()
    assert await repositories.read_blob(settings, project_id, sha, "src/main.py") == FILES["src/main.py"].encode()
    commit = await repositories.commit_info(settings, project_id, sha)
    assert commit is not None and commit.before_sha == "0" * 40 and commit.title == "Add the app"
    # what is not there is None, never an error
    assert await repositories.head_sha(settings, project_id, "nope") is None
    assert await repositories.read_blob(settings, project_id, sha, "src") is None
    assert await repositories.read_blob(settings, project_id, sha, "README.md/x") is None
    assert await repositories.read_blob(settings, project_id, sha, "missing.txt") is None
    assert await repositories.read_blob(settings, project_id, "f" * 40, "README.md") is None
    assert await repositories.read_blob(settings, project_id, "not-a-sha", "README.md") is None
    assert await repositories.commit_info(settings, project_id, "0" * 40) is None
    assert not await repositories.has_repository(settings, 999_999)
    assert await repositories.head_sha(settings, 999_999, "main") is None
    assert await repositories.read_blob(settings, 999_999, sha, "README.md") is None


async def test_explicit_sha_is_kept(coordinator):
    """Seeded commits are dated by the mock clock: the same files at the same time make the
    same commit, so a second seed can name the first one's sha."""
    admin = {"PRIVATE-TOKEN": ADMIN_TOKEN}
    await coordinator.client.post("/-/mock/clock", json={"set": "2031-01-01T00:00:00Z"}, headers=admin)
    first = await coordinator.seed(repo_scenario())
    sha = first["projects"]["acme/app"]["repository"]["sha"]
    await coordinator.client.post("/-/mock/reset", headers=admin)
    await coordinator.client.post("/-/mock/clock", json={"set": "2031-01-01T00:00:00Z"}, headers=admin)
    scenario = repo_scenario()
    scenario["projects"][0]["pipelines"][0]["sha"] = sha
    seeded = await coordinator.seed(scenario)
    assert seeded["projects"]["acme/app"]["repository"]["sha"] == sha == seeded["pipelines"][0]["sha"]


async def test_reset_removes_repositories(coordinator):
    await coordinator.seed(repo_scenario())
    assert len(on_disk(coordinator)) == 2
    res = await coordinator.client.post("/-/mock/reset", headers={"PRIVATE-TOKEN": ADMIN_TOKEN})
    assert res.status_code == 200
    assert on_disk(coordinator) == [] and not coordinator.settings.repositories_path.exists()
    res = await coordinator.client.get(
        "/acme/app.git/info/refs?service=git-upload-pack", headers=basic("a", ALICE_TOKEN)
    )
    assert res.status_code == 401  # the token went with the instance


async def test_a_project_without_repository_never_adopts_an_old_one(coordinator):
    seeded = await coordinator.seed(repo_scenario())
    project_id = seeded["projects"]["acme/app"]["id"]
    stale = repositories.repository_dir(coordinator.settings, project_id + 100)
    stale.parent.mkdir(parents=True, exist_ok=True)
    os.rename(repositories.repository_dir(coordinator.settings, project_id), stale)  # as if left by another run
    scenario = {"projects": [{"path": f"acme/p{i}"} for i in range(100)]}
    created = await coordinator.seed(scenario)
    assert project_id + 100 in [p["id"] for p in created["projects"].values()]
    assert not stale.exists()


@pytest.mark.parametrize(
    ("repository", "field", "text"),
    [
        ({"path": "/nonexistent/mockcoord"}, "projects.0.repository.path", "is missing"),
        ({"path": __file__}, "projects.0.repository.path", "is not a directory"),
        ({"path": "/tmp", "files": {"a": "b"}}, "projects.0.repository", "give exactly one of path, files"),
        ({"branch": "main"}, "projects.0.repository", "give exactly one of path, files"),
        ({"files": {"a": "x"}, "branch": "bad..name"}, "projects.0.repository.branch", "not a valid branch name"),
        ({"files": {"../escape": "x"}}, "projects.0.repository.files", "not a relative file path"),
        ({"files": {"/abs": "x"}}, "projects.0.repository.files", "not a relative file path"),
        ({"files": {".git/config": "x"}}, "projects.0.repository.files", "not a relative file path"),
        ({"files": {"a": "x", "a/b": "y"}}, "projects.0.repository.files", "both a file and a directory"),
        ({"files": {}, "message": ""}, "projects.0.repository.message", "at least 1 character"),
        ({"files": {}, "colour": "red"}, "projects.0.repository.colour", "Extra inputs"),
    ],
)
async def test_scenario_errors(coordinator, repository, field, text):
    message = await seed_error(coordinator, repo_scenario(repository))
    assert message.startswith(field + ":") and text in message, message
    assert on_disk(coordinator) == []


async def test_seed_errors_after_the_repository_leave_nothing_behind(coordinator):
    message = await seed_error(coordinator, repo_scenario(ref="nope"))
    assert message == "projects.0.pipelines.0.ref: no branch or tag 'nope' in the repository"
    assert on_disk(coordinator) == []

    scenario = repo_scenario()
    scenario["projects"][0]["pipelines"][0]["sha"] = "b" * 40
    message = await seed_error(coordinator, scenario)
    assert message == f"projects.0.pipelines.0.sha: {'b' * 40} is no commit of the repository"
    assert on_disk(coordinator) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
async def test_unreadable_file_in_the_directory(coordinator, tmp_path):
    (tmp_path / "secret").write_text("x")
    (tmp_path / "secret").chmod(0)
    message = await seed_error(coordinator, repo_scenario({"path": str(tmp_path)}))
    assert message.startswith("projects.0.repository.path: cannot read secret")
    assert on_disk(coordinator) == []
