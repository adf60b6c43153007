"""End to end, as gitlab-runner talks (runner_facts.md sections 1 and 2): a chunked
multipart upload through Workhorse, then the download both ways, byte for byte."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import struct
from collections.abc import AsyncIterator

import httpx
from sqlmodel import select

from app.models import FileType, JobArtifact
from app.uploaders.job_artifact_uploader import artifact_key
from tests.e2e.conftest import Stack
from tests.rails.helpers import job, pipeline_scenario, zip_bytes
from tests.workhorse.helpers import file_body

RUNNER_HEADERS = {
    "User-Agent": "gitlab-runner 17.11.0 (17-11-stable; go1.23.6; linux/amd64)",
    "Content-Type": "multipart/form-data; boundary=runnerboundary1234",
}


async def chunked(data: bytes, size: int = 256 * 1024, pause: float = 0.0) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
        if pause:
            await asyncio.sleep(pause)


async def runner_upload(
    stack: Stack, job_id: int, token: str, archive: bytes, query: str, pause: float = 0.0
) -> httpx.Response:
    """``POST jobs/<id>/artifacts?<sorted query>`` with ``Job-Token`` and a chunked body."""
    return await stack.client.post(
        f"/api/v4/jobs/{job_id}/artifacts?{query}",
        content=chunked(file_body(archive), pause=pause),
        headers={**RUNNER_HEADERS, "Job-Token": token},
    )


async def artifacts(stack: Stack, job_id: int) -> dict[int, JobArtifact]:
    async with stack.rails.state.db.session() as session:
        rows = await session.exec(select(JobArtifact).where(JobArtifact.job_id == job_id))
        return {row.file_type: row for row in rows.all()}


def metadata_entries(blob: bytes) -> list[str]:
    """Path records of GitLab's metadata format (length-prefixed strings, gzipped)."""
    raw, strings, pos = gzip.decompress(blob), [], 0
    while pos < len(raw):
        (length,) = struct.unpack(">I", raw[pos : pos + 4])
        strings.append(raw[pos + 4 : pos + 4 + length].decode())
        pos += 4 + length
    assert strings[0] == "GitLab Build Artifacts Metadata 0.0.2\n"
    return strings[2::2]


async def test_upload_then_download_both_ways(stack: Stack) -> None:
    seeded = await stack.rails.seed(pipeline_scenario())
    test = job(seeded, "test")
    archive = zip_bytes({"out/report.txt": "ok\n", "out/bin/app": os.urandom(300_000).hex()})
    res = await runner_upload(
        stack, test["id"], test["token"], archive, "artifact_format=zip&artifact_type=archive&expire_in=1+week"
    )
    assert (res.status_code, res.text) == (201, "201")
    assert res.headers["x-request-id"]

    rows = await artifacts(stack, test["id"])
    assert rows[FileType.archive].size == len(archive)
    assert rows[FileType.archive].file_sha256 == hashlib.sha256(archive).hexdigest()
    stored_metadata = b"".join(
        [c async for c in stack.rails.state.store.iter_range(artifact_key(rows[FileType.metadata]))]
    )
    assert metadata_entries(stored_metadata) == ["out/", "out/bin/", "out/bin/app", "out/report.txt"]

    url = f"/api/v4/jobs/{test['id']}/artifacts"
    direct = await stack.client.get(url + "?direct_download=true", headers={"Job-Token": test["token"]})
    if stack.rails.state.store.remote:
        assert direct.status_code == 302
        async with httpx.AsyncClient() as object_storage:
            direct = await object_storage.get(direct.headers["location"], headers={"Job-Token": test["token"]})
    assert direct.status_code == 200 and direct.content == archive

    proxied = await stack.client.get(url, headers={"Job-Token": test["token"]})
    assert proxied.status_code == 200 and proxied.content == archive
    assert "gitlab-workhorse-send-data" not in proxied.headers and "x-sendfile" not in proxied.headers

    ranged = await stack.client.get(url, headers={"Job-Token": test["token"], "Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == archive[10:20]


async def test_bare_question_mark_defaults_to_archive_zip(stack: Stack) -> None:
    seeded = await stack.rails.seed(pipeline_scenario())
    test = job(seeded, "test")
    res = await runner_upload(stack, test["id"], test["token"], zip_bytes({"a": "b"}), "")
    assert res.status_code == 201
    rows = await artifacts(stack, test["id"])
    assert set(rows) == {FileType.archive, FileType.metadata}


async def test_gzip_report_gets_no_metadata(stack: Stack) -> None:
    seeded = await stack.rails.seed(pipeline_scenario())
    test = job(seeded, "test")
    report = gzip.compress(b"<testsuites/>")
    res = await runner_upload(
        stack, test["id"], test["token"], report, "artifact_format=gzip&artifact_type=junit&expire_in=never"
    )
    assert res.status_code == 201
    rows = await artifacts(stack, test["id"])
    assert set(rows) == {FileType.junit} and rows[FileType.junit].expire_at is None


async def test_rails_refusals_reach_the_runner_unchanged(stack: Stack) -> None:
    seeded = await stack.rails.seed(pipeline_scenario())
    build = job(seeded, "build")
    res = await runner_upload(stack, build["id"], build["token"], zip_bytes({"a": "b"}), "artifact_type=archive")
    assert res.status_code == 403
    assert res.json() == {"message": "403 Forbidden - Job is not processing on runner"}
    assert res.headers["job-status"] == "success"
    res = await runner_upload(stack, 999_999, "glcbt-nope", b"x", "")
    assert (res.status_code, res.json()) == (403, {"message": "403 Forbidden"})


async def test_over_maximum_size_is_413_and_leaves_nothing(stack: Stack) -> None:
    seeded = await stack.rails.seed(pipeline_scenario(project={"max_artifacts_size": 1}))
    test = job(seeded, "test")
    objects_before = [o.key async for page in stack.rails.state.store.list() for o in page]
    res = await runner_upload(stack, test["id"], test["token"], os.urandom((1 << 20) + 4096), "artifact_type=archive")
    assert (res.status_code, res.text) == (413, "Request Entity Too Large\n")
    assert await artifacts(stack, test["id"]) == {}
    assert [o.key async for page in stack.rails.state.store.list() for o in page] == objects_before
    if not stack.rails.state.store.remote:
        assert list(stack.rails.settings.uploads_path.iterdir()) == []


async def test_download_refusals(stack: Stack) -> None:
    seeded = await stack.rails.seed(pipeline_scenario())
    build, test = job(seeded, "build"), job(seeded, "test")
    url = f"/api/v4/jobs/{build['id']}/artifacts"
    assert (await stack.client.get(url, headers={"Job-Token": "glcbt-nope"})).status_code == 401
    missing = await stack.client.get(f"/api/v4/jobs/{test['id']}/artifacts", headers={"Job-Token": test["token"]})
    assert (missing.status_code, missing.json()) == (404, {"message": "404 Not Found"})


async def test_large_upload_goes_up_in_parts_and_comes_back_whole(stack: Stack) -> None:
    """Over one 8 MiB part, Workhorse's S3 client uses a multipart upload with parts in flight at
    once; a slow sender (a runner still compressing) lets parts finish between flushes."""
    seeded = await stack.rails.seed(pipeline_scenario())
    test = job(seeded, "test")
    archive = os.urandom(45 * 1024 * 1024 + 12345)  # six parts, the last one short
    res = await runner_upload(
        stack, test["id"], test["token"], archive, "artifact_format=raw&artifact_type=sast", pause=0.01
    )
    assert (res.status_code, res.text) == (201, "201")
    downloaded = await stack.client.get(f"/api/v4/jobs/{test['id']}/artifacts", headers={"Job-Token": test["token"]})
    assert downloaded.status_code == 404  # sast is not the archive: download serves archives only
    rows = await artifacts(stack, test["id"])
    stored = b"".join([c async for c in stack.rails.state.store.iter_range(artifact_key(rows[FileType.sast]))])
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(archive).hexdigest()
