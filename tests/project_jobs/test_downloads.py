"""Artifacts out through the front door with python-gitlab: the archive (302 to object storage,
send-url, or X-Sendfile, decided as for runners), and single files served by Workhorse's
artifacts-entry, by job id or by ref and job name."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tracemalloc
from collections.abc import Awaitable, Callable

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.project_jobs.helpers import HELLO, LATEST_FILES, LOGO, PAGE, call, client, jobs_by, members, scenario, token


async def test_job_artifacts_archive_direct_download(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    build = jobs_by(seeded, "build")[1]
    job = client(stack).projects.get("demo/app", lazy=True).jobs.get(build["id"], lazy=True)
    archive = await call(job.artifacts)
    assert members(archive) == LATEST_FILES
    res = await stack.client.get(
        f"/api/v4/projects/demo%2Fapp/jobs/{build['id']}/artifacts", headers={"PRIVATE-TOKEN": token("dev")}
    )
    if stack.rails.state.store.remote:
        assert res.status_code == 302 and "X-Amz-Signature=" in res.headers["location"]  # python-gitlab followed it
    else:
        assert res.status_code == 200 and res.content == archive
        assert (
            res.headers["content-disposition"]
            == "attachment; filename=\"artifacts.zip\"; filename*=UTF-8''artifacts.zip"
        )


async def test_job_artifacts_archive_proxied(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    if not stack.rails.state.store.remote:
        pytest.skip("proxy_download is an object storage setting")
    monkeypatch.setattr(stack.rails.settings.object_store, "proxy_download", True)
    seeded = await stack.rails.seed(scenario())
    build = jobs_by(seeded, "build")[1]
    url = f"/api/v4/projects/demo%2Fapp/jobs/{build['id']}/artifacts"
    res = await stack.client.get(url, headers={"PRIVATE-TOKEN": token("dev")})
    assert res.status_code == 200 and members(res.content) == LATEST_FILES
    assert "gitlab-workhorse-send-data" not in res.headers
    job = client(stack).projects.get("demo/app", lazy=True).jobs.get(build["id"], lazy=True)
    assert members(await call(job.artifacts)) == LATEST_FILES


async def test_job_artifact_single_file(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    build = jobs_by(seeded, "build")[1]
    job = client(stack).projects.get("demo/app", lazy=True).jobs.get(build["id"], lazy=True)
    assert await call(lambda: job.artifact("out/hello.txt")) == HELLO.encode()
    url = f"/api/v4/projects/demo%2Fapp/jobs/{build['id']}/artifacts"
    headers = {"PRIVATE-TOKEN": token("dev")}
    res = await stack.client.get(f"{url}/out/hello.txt", headers=headers)
    assert res.status_code == 200 and res.text == HELLO
    assert res.headers["content-type"] == "text/plain; charset=utf-8"
    assert res.headers["content-disposition"] == 'attachment; filename="hello.txt"'
    assert res.headers["content-length"] == str(len(HELLO))
    assert "gitlab-workhorse-send-data" not in res.headers
    page = await stack.client.get(f"{url}/out/page.html", headers=headers)  # by extension on this route
    assert (page.text, page.headers["content-type"]) == (PAGE, "text/html; charset=utf-8")
    info = await stack.client.get(f"{url}/out/build-info.json", headers=headers)
    assert info.headers["content-type"] == "application/json" and info.json() == {"ref": "main", "job": "build"}
    odd = await stack.client.get(f"{url}/out/odd%20%22name%22.txt", headers=headers)
    assert odd.text == "quoted\n" and odd.headers["content-disposition"] == 'attachment; filename="odd \\"name\\".txt"'
    ranged = await stack.client.get(f"{url}/out/hello.txt", headers={**headers, "Range": "bytes=0-4"})
    assert (ranged.status_code, ranged.text) == (200, HELLO)  # entries ignore Range, as GitLab's


async def test_download_archive_by_ref_takes_the_newest_successful_pipeline(stack: Stack) -> None:
    await stack.rails.seed(scenario())
    artifacts = client(stack).projects.get("demo/app", lazy=True).artifacts
    main = await call(lambda: artifacts.download(ref_name="main", job="build"))
    assert members(main) == LATEST_FILES  # the running pipeline's newer build does not count
    feature = await call(lambda: artifacts.download(ref_name="feature/x", job="build"))
    assert members(feature) == {"out/hello.txt": "feature\n"}


async def test_raw_by_ref_sniffs_a_safe_content_type(stack: Stack) -> None:
    await stack.rails.seed(scenario())
    artifacts = client(stack).projects.get("demo/app", lazy=True).artifacts
    assert await call(lambda: artifacts.raw("main", "out/hello.txt", "build")) == HELLO.encode()
    assert await call(lambda: artifacts.raw("feature/x", "out/hello.txt", "build")) == b"feature\n"
    url = "/api/v4/projects/demo%2Fapp/jobs/artifacts/main/raw"
    headers = {"PRIVATE-TOKEN": token("dev")}
    page = await stack.client.get(f"{url}/out/page.html?job=build", headers=headers)
    assert page.text == PAGE and page.headers["content-type"] == "text/plain; charset=utf-8"
    assert page.headers["content-disposition"] == 'attachment; filename="page.html"'
    assert "gitlab-workhorse-detect-content-type" not in page.headers
    logo = await stack.client.get(f"{url}/out/logo.svg?job=build", headers=headers)
    assert (logo.text, logo.headers["content-type"]) == (LOGO, "image/svg+xml")


async def _peak(fetch: Callable[[], Awaitable[None]]) -> int:
    tracemalloc.start()
    try:
        await fetch()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_large_entry_streams_with_flat_memory(stack: Stack) -> None:
    """A 16 MiB entry (about 8 MiB deflated) comes out whole while this process (Rails, Workhorse
    and the client) holds a few chunks of it at a time. The embedded S3 server runs in this
    process too and copies the whole object on every ranged GET, and Workhorse's zip reader can
    have two of them open at once (the central directory's, then the entry's), so on S3 moto's
    own peak for two concurrent ranged GETs is the baseline."""
    big = os.urandom(8 << 20).hex()
    seeded = await stack.rails.seed(
        {
            "users": [{"username": "dev", "token": token("dev")}],
            "groups": [{"path": "demo", "members": [{"user": "dev", "access_level": "developer"}]}],
            "projects": [
                {
                    "path": "demo/app",
                    "pipelines": [{"jobs": [{"name": "build", "artifacts": [{"files": {"big.txt": big}}]}]}],
                }
            ],
        }
    )
    store = stack.rails.state.store
    baseline = 0
    if store.remote:
        presigned = await store.presigned_url("GET", seeded["artifacts"][0]["key"], 60)

        async def two_ranged_gets() -> None:
            async with httpx.AsyncClient() as raw:
                gets = [raw.get(presigned, headers={"Range": "bytes=0-0"}) for _ in range(2)]
                assert [r.status_code for r in await asyncio.gather(*gets)] == [206, 206]

        baseline = await _peak(two_ranged_gets)
    url = f"/api/v4/projects/demo%2Fapp/jobs/{seeded['jobs'][0]['id']}/artifacts/big.txt"
    digest, size = hashlib.sha256(), 0

    async def download() -> None:
        nonlocal size
        async with stack.client.stream("GET", url, headers={"PRIVATE-TOKEN": token("dev")}) as res:
            assert res.status_code == 200 and res.headers["content-length"] == str(len(big))
            async for chunk in res.aiter_raw():
                digest.update(chunk)
                size += len(chunk)

    peak = await _peak(download)
    assert size == len(big) and digest.hexdigest() == hashlib.sha256(big.encode()).hexdigest()
    assert peak - baseline < 8 << 20, f"{(peak - baseline) >> 20} MiB over the baseline"
