"""GET /jobs/:id/artifacts: authentication via the dependent job and the download decision."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from tests.conftest import Coordinator
from tests.rails.helpers import job, pipeline_scenario

MEMBERS = {"out/a.txt": "hello"}


def members(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def url(job_id: int, query: str = "") -> str:
    return f"/api/v4/jobs/{job_id}/artifacts{query}"


def decode_send_url(header: str) -> dict:
    kind, _, payload = header.partition(":")
    assert kind == "send-url"
    return json.loads(base64.urlsafe_b64decode(payload))


async def test_direct_download_redirects_to_a_working_presigned_url(coordinator: Coordinator) -> None:
    c = coordinator
    seeded = await c.seed(pipeline_scenario())
    build, test = job(seeded, "build"), job(seeded, "test")
    res = await c.client.get(url(build["id"], "?direct_download=true"), headers={"JOB-TOKEN": test["token"]})
    if not c.state.store.remote:
        assert res.status_code == 200 and members(res.content) == MEMBERS  # no Workhorse asked for sendfile
        return
    assert res.status_code == 302
    location = res.headers["location"]
    assert res.text == f"This resource has been moved temporarily to {location}."
    assert "/%40final/" in location and "X-Amz-Signature=" in location
    async with httpx.AsyncClient() as raw:
        fetched = await raw.get(location)
    assert fetched.status_code == 200
    assert members(fetched.content) == MEMBERS


async def test_proxy_download_answers_send_url(coordinator: Coordinator) -> None:
    c = coordinator
    seeded = await c.seed(pipeline_scenario())
    build, test = job(seeded, "build"), job(seeded, "test")
    if not c.state.store.remote:
        pytest.skip("send-url is for object storage; local storage answers X-Sendfile")
    res = await c.client.get(url(build["id"]), headers={"JOB-TOKEN": test["token"]})
    assert res.status_code == 200 and res.content == b""
    params = decode_send_url(res.headers["gitlab-workhorse-send-data"])
    assert list(params) == [
        "URL",
        "AllowRedirects",
        "AllowLocalhost",
        "AllowedEndpoints",
        "SSRFFilter",
        "Body",
        "Header",
        "ResponseHeaders",
        "Method",
    ]
    assert params["AllowRedirects"] is False and params["Method"] == "GET"
    async with httpx.AsyncClient() as raw:
        assert members((await raw.get(params["URL"])).content) == MEMBERS


async def test_proxy_download_setting_wins_over_direct_download(coordinator: Coordinator, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    c = coordinator
    if not c.state.store.remote:
        pytest.skip("proxy_download is an object storage setting")
    seeded = await c.seed(pipeline_scenario())
    build, test = job(seeded, "build"), job(seeded, "test")
    monkeypatch.setattr(c.settings.object_store, "proxy_download", True)
    res = await c.client.get(url(build["id"], "?direct_download=true"), headers={"JOB-TOKEN": test["token"]})
    assert res.status_code == 200 and "gitlab-workhorse-send-data" in res.headers


async def test_local_storage_answers_x_sendfile_when_workhorse_asks(coordinator: Coordinator) -> None:
    c = coordinator
    if c.state.store.remote:
        pytest.skip("X-Sendfile is for local storage")
    seeded = await c.seed(pipeline_scenario())
    build, test = job(seeded, "build"), job(seeded, "test")
    res = await c.client.get(url(build["id"]), headers={"JOB-TOKEN": test["token"], "X-Sendfile-Type": "X-Sendfile"})
    assert res.status_code == 200 and res.content == b""
    path = res.headers["x-sendfile"]
    assert path.startswith(str(c.settings.artifacts_path)) and path.endswith("/artifacts.zip")
    assert members(Path(path).read_bytes()) == MEMBERS  # noqa: ASYNC240
    assert res.headers["content-disposition"] == (
        "attachment; filename=\"artifacts.zip\"; filename*=UTF-8''artifacts.zip"
    )
    assert res.headers["content-transfer-encoding"] == "binary"
    assert res.headers["content-type"] == "application/octet-stream"


async def test_head_direct_download_presigns_head(coordinator: Coordinator) -> None:
    c = coordinator
    if not c.state.store.remote:
        pytest.skip("object storage only")
    seeded = await c.seed(pipeline_scenario())
    build, test = job(seeded, "build"), job(seeded, "test")
    res = await c.client.head(url(build["id"], "?direct_download=true"), headers={"JOB-TOKEN": test["token"]})
    assert res.status_code == 302
    async with httpx.AsyncClient() as raw:
        head = await raw.head(res.headers["location"])
    assert head.status_code == 200 and int(head.headers["content-length"]) > 0


@pytest.mark.parametrize("how", ["JOB-TOKEN", "job_token", "token", "basic"])
async def test_job_token_sources(coordinator: Coordinator, how: str) -> None:
    c = coordinator
    seeded = await c.seed(pipeline_scenario())
    build, token = job(seeded, "build"), job(seeded, "test")["token"]
    kwargs: dict = {"headers": {"X-Sendfile-Type": "X-Sendfile"}}
    target = url(build["id"])
    if how == "JOB-TOKEN":
        kwargs["headers"]["JOB-TOKEN"] = token
    elif how == "basic":
        kwargs["auth"] = ("gitlab-ci-token", token)
    else:
        target += f"?{how}={token}"
    assert (await c.client.get(target, **kwargs)).status_code == 200


async def test_no_archive_or_missing_object_is_404(coordinator: Coordinator) -> None:
    c = coordinator
    scenario = pipeline_scenario(
        extra_jobs=[
            {"name": "lost", "status": "success", "artifacts": [{"file_type": "archive", "size": 10, "stored": False}]}
        ]
    )
    seeded = await c.seed(scenario)
    token = job(seeded, "test")["token"]
    for name in ("test", "lost"):
        res = await c.client.get(url(job(seeded, name)["id"]), headers={"JOB-TOKEN": token})
        assert (res.status_code, res.json()) == (404, {"message": "404 Not Found"}), name


async def test_bad_or_finished_tokens_are_401(coordinator: Coordinator) -> None:
    c = coordinator
    seeded = await c.seed(pipeline_scenario())
    build = job(seeded, "build")
    for headers in ({}, {"JOB-TOKEN": "glcbt-nope"}, {"JOB-TOKEN": build["token"]}):
        res = await c.client.get(url(build["id"]), headers=headers)
        assert (res.status_code, res.json()) == (401, {"message": "401 Unauthorized"}), headers


async def test_unknown_job_is_403(coordinator: Coordinator) -> None:
    c = coordinator
    test = job(await c.seed(pipeline_scenario()), "test")
    res = await c.client.get(url(987_654), headers={"JOB-TOKEN": test["token"]})
    assert (res.status_code, res.json()) == (403, {"message": "403 Forbidden"})


async def test_personal_access_token_authenticates_but_is_not_a_job(coordinator: Coordinator) -> None:
    c = coordinator
    seeded = await c.seed(pipeline_scenario())
    res = await c.client.get(
        url(job(seeded, "build")["id"]), headers={"PRIVATE-TOKEN": seeded["users"]["alice"]["token"]}
    )
    assert res.status_code == 403


async def read_build_case(c: Coordinator, visibility: str, public_builds: bool, role: str | None) -> int:
    """mallory's running job in her own project downloads from acme/app."""
    scenario = pipeline_scenario(
        visibility=visibility,
        project={
            "public_builds": public_builds,
            "job_token_scope_enabled": False,
            "members": [{"user": "mallory", "access_level": role}] if role else [],
        },
    )
    scenario["projects"].append(
        {"path": "mallory/tools", "pipelines": [{"user": "mallory", "jobs": [{"name": "fetch", "status": "running"}]}]}
    )
    seeded = await c.seed(scenario)
    res = await c.client.get(
        url(job(seeded, "build")["id"]),
        headers={"JOB-TOKEN": job(seeded, "fetch")["token"], "X-Sendfile-Type": "X-Sendfile"},
    )
    return res.status_code


@pytest.mark.parametrize(
    ("visibility", "public_builds", "role", "status"),
    [
        ("private", True, None, 403),
        ("private", True, "guest", 200),
        ("private", False, "guest", 403),
        ("private", False, "reporter", 200),
        ("internal", True, None, 200),
        ("internal", False, None, 403),
        ("public", True, None, 200),
        ("public", False, None, 403),
    ],
)
async def test_read_build_policy(
    coordinator: Coordinator, visibility: str, public_builds: bool, role: str | None, status: int
) -> None:
    assert await read_build_case(coordinator, visibility, public_builds, role) == status


async def test_job_token_allowlist(coordinator: Coordinator) -> None:
    c = coordinator
    scenario = pipeline_scenario(project={"members": [{"user": "mallory", "access_level": "reporter"}]})
    scenario["projects"].append(
        {"path": "mallory/tools", "pipelines": [{"user": "mallory", "jobs": [{"name": "fetch", "status": "running"}]}]}
    )
    seeded = await c.seed(scenario)
    target, token = job(seeded, "build")["id"], job(seeded, "fetch")["token"]
    headers = {"JOB-TOKEN": token, "X-Sendfile-Type": "X-Sendfile"}
    assert (await c.client.get(url(target), headers=headers)).status_code == 403
    async with c.state.db.session() as session:
        from app.models import JobTokenProjectScopeLink

        session.add(
            JobTokenProjectScopeLink(
                source_project_id=seeded["projects"]["acme/app"]["id"],
                target_project_id=seeded["projects"]["mallory/tools"]["id"],
            )
        )
        await session.commit()
    assert (await c.client.get(url(target), headers=headers)).status_code == 200


@pytest.mark.parametrize(("query", "error"), [("?direct_download=maybe", "direct_download is invalid")])
async def test_malformed_query(coordinator: Coordinator, query: str, error: str) -> None:
    c = coordinator
    seeded = await c.seed(pipeline_scenario())
    res = await c.client.get(
        url(job(seeded, "build")["id"], query), headers={"JOB-TOKEN": job(seeded, "test")["token"]}
    )
    assert (res.status_code, res.json()) == (400, {"error": error})


def test_settings_bucket_prefix() -> None:
    s = Settings(object_store={"objects": {"artifacts": {"bucket": "gitlab/artifacts/"}}})
    assert (s.object_store.artifacts_bucket, s.object_store.artifacts_bucket_prefix) == ("gitlab", "artifacts/")


async def test_personal_namespace_owner_reads_own_project(coordinator: Coordinator) -> None:
    c = coordinator
    seeded = await c.seed(
        {
            "users": [{"username": "dev"}],
            "projects": [
                {
                    "path": "dev/app",
                    "pipelines": [
                        {
                            "user": "dev",
                            "jobs": [
                                {"name": "build", "artifacts": [{"file_type": "archive", "files": MEMBERS}]},
                                {"name": "test", "status": "running"},
                            ],
                        }
                    ],
                }
            ],
        }
    )
    res = await c.client.get(
        url(job(seeded, "build")["id"]),
        headers={"JOB-TOKEN": job(seeded, "test")["token"], "X-Sendfile-Type": "X-Sendfile"},
    )
    assert res.status_code == 200
