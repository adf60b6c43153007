"""Usage quota: ``GET /projects/:id?statistics=true`` shows GitLab's ``statistics`` object, with
``build_artifacts_size`` as ``job_artifacts_size``, to reporters and up; python-gitlab's
``project.statistics`` reads it."""

from __future__ import annotations

import asyncio

import gitlab
import gitlab.exceptions
import pytest

from tests.admin.helpers import usage
from tests.conftest import ADMIN_TOKEN, Coordinator

STATISTICS_KEYS = [
    "commit_count",
    "storage_size",
    "repository_size",
    "wiki_size",
    "lfs_objects_size",
    "job_artifacts_size",
    "pipeline_artifacts_size",
    "packages_size",
    "snippets_size",
    "uploads_size",
    "container_registry_size",
]
ROLES = ["guest", "reporter", "developer", "maintainer", "owner"]


def token(user: str) -> str:
    return f"glpat-{user}-0123456789"


def scenario(visibility: str = "private") -> dict:
    return {
        "users": [{"username": r, "token": token(r)} for r in [*ROLES, "nobody"]],
        "groups": [{"path": "demo", "members": [{"user": r, "access_level": r} for r in ROLES]}],
        "projects": [
            {
                "path": "demo/app",
                "visibility": visibility,
                "pipelines": [
                    {"jobs": [{"name": "build", "artifacts": [{"file_type": "archive", "size": 1234}]}]},
                    {"jobs": [{"name": "test", "artifacts": [{"file_type": "junit", "size": 66}]}]},
                ],
            }
        ],
    }


def gl(c: Coordinator, private_token: str | None) -> gitlab.Gitlab:
    return gitlab.Gitlab(c.url, private_token=private_token, retry_transient_errors=False)


async def test_python_gitlab_reads_the_statistics(admin: Coordinator) -> None:
    seeded = await admin.seed(scenario())
    project_id = seeded["projects"]["demo/app"]["id"]
    project = await asyncio.to_thread(lambda: gl(admin, token("reporter")).projects.get(project_id, statistics=True))
    assert list(project.statistics) == STATISTICS_KEYS
    assert project.statistics["job_artifacts_size"] == 1234 + 66 == await usage(admin, project_id)
    assert project.statistics["storage_size"] == 1300
    assert "build_artifacts_size" not in project.statistics
    assert project.path_with_namespace == "demo/app" and project.namespace["full_path"] == "demo"
    by_path = await asyncio.to_thread(lambda: gl(admin, ADMIN_TOKEN).projects.get("demo/app", statistics=True))
    assert by_path.id == project_id and by_path.statistics["job_artifacts_size"] == 1300


@pytest.mark.parametrize(("user", "sees"), [("guest", False), ("reporter", True), ("owner", True), ("admin", True)])
async def test_reporter_access_reads_statistics(admin: Coordinator, user: str, sees: bool) -> None:
    await admin.seed(scenario())
    headers = {"PRIVATE-TOKEN": ADMIN_TOKEN if user == "admin" else token(user)}
    res = await admin.client.get("/api/v4/projects/demo%2Fapp", params={"statistics": "true"}, headers=headers)
    assert res.status_code == 200
    assert ("statistics" in res.json()) is sees
    plain = await admin.client.get("/api/v4/projects/demo%2Fapp", headers=headers)
    assert "statistics" not in plain.json()  # only when asked


async def test_who_cannot_see_the_project(admin: Coordinator) -> None:
    await admin.seed(scenario())
    res = await admin.client.get("/api/v4/projects/demo%2Fapp", headers={"PRIVATE-TOKEN": token("nobody")})
    assert (res.status_code, res.json()) == (404, {"message": "404 Project Not Found"})
    assert (await admin.client.get("/api/v4/projects/demo%2Fapp")).status_code == 404
    res = await admin.client.get("/api/v4/projects/demo%2Fapp", params={"statistics": "maybe"})
    assert (res.status_code, res.json()) == (400, {"error": "statistics is invalid"})


async def test_anonymous_readers_get_basic_details_without_statistics(admin: Coordinator) -> None:
    await admin.seed(scenario("public"))
    res = await admin.client.get("/api/v4/projects/demo%2Fapp", params={"statistics": "true"})
    body = res.json()
    assert res.status_code == 200 and "statistics" not in body and "permissions" not in body
    assert list(body)[:7] == [
        "id",
        "description",
        "name",
        "name_with_namespace",
        "path",
        "path_with_namespace",
        "created_at",
    ]


async def test_the_statistics_follow_deletions(admin: Coordinator) -> None:
    seeded = await admin.seed(scenario())
    job = next(j for j in seeded["jobs"] if j["name"] == "build")
    headers = {"PRIVATE-TOKEN": token("maintainer")}
    res = await admin.client.delete(f"/api/v4/projects/demo%2Fapp/jobs/{job['id']}/artifacts", headers=headers)
    assert res.status_code == 204
    res = await admin.client.get("/api/v4/projects/demo%2Fapp?statistics=1", headers=headers)
    assert res.json()["statistics"]["job_artifacts_size"] == 66
