"""POST /jobs/:id/artifacts: what Rails records from Workhorse's rewritten multipart."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from app.models import (
    ArtifactLocked,
    Build,
    FileFormat,
    FileStore,
    FileType,
    JobArtifact,
    PendingDirectUpload,
    ProjectStatistics,
)
from app.storage import StorageError
from app.uploaders.job_artifact_uploader import artifact_key
from tests.conftest import Coordinator
from tests.rails.helpers import (
    authorize,
    finalize,
    job,
    local_metadata,
    pipeline_scenario,
    store_like_workhorse,
    upload,
    zip_bytes,
)


async def rows(c: Coordinator, job_id: int) -> list[JobArtifact]:
    async with c.state.db.session() as session:
        result = await session.exec(select(JobArtifact).where(JobArtifact.job_id == job_id).order_by(JobArtifact.id))
        return list(result.all())


async def stats(c: Coordinator, project_id: int) -> int:
    async with c.state.db.session() as session:
        row = (await session.exec(select(ProjectStatistics).where(ProjectStatistics.project_id == project_id))).one()
        return row.build_artifacts_size


async def stored_bytes(c: Coordinator, artifact: JobArtifact) -> bytes:
    return b"".join([chunk async for chunk in c.state.store.iter_range(artifact_key(artifact))])


async def test_archive_and_metadata_recorded_in_one_go(coordinator: Coordinator) -> None:
    c = coordinator
    seeded = await c.seed(pipeline_scenario())
    test, project_id = job(seeded, "test"), seeded["projects"]["acme/app"]["id"]
    before = await stats(c, project_id)
    data = zip_bytes({"report.txt": "ok"})
    metadata = gzip.compress(b"GitLab Build Artifacts Metadata 0.0.2\n")
    started = datetime.now(UTC)
    res = await upload(
        c, test["id"], test["token"], data, "artifact_type=archive&expire_in=2+hrs+20+min", metadata=metadata
    )
    assert (res.status_code, res.text) == (201, "201")
    archive, meta = await rows(c, test["id"])
    assert (archive.file_type, archive.file_format, archive.size) == (FileType.archive, FileFormat.zip, len(data))
    assert archive.file == "artifacts.zip" and archive.file_sha256 is not None
    assert archive.locked == ArtifactLocked.artifacts_locked
    assert archive.expire_at is not None
    expected = started + timedelta(hours=2, minutes=20)
    assert abs((archive.expire_at - expected).total_seconds()) < 30
    assert (meta.file_type, meta.file_format, meta.file) == (FileType.metadata, FileFormat.gzip, "metadata.gz")
    assert meta.expire_at == archive.expire_at and meta.locked == archive.locked
    assert await stored_bytes(c, archive) == data
    assert await stored_bytes(c, meta) == metadata
    assert await stats(c, project_id) == before + len(data) + len(metadata)
    async with c.state.db.session() as session:
        assert (await session.get(Build, test["id"])).artifacts_expire_at == archive.expire_at  # type: ignore[union-attr]
        assert (await session.exec(select(PendingDirectUpload))).all() == []
    if c.state.store.remote:
        assert archive.file_store == FileStore.REMOTE and "/@final/" in (archive.file_final_path or "")
        assert meta.file_final_path is None and artifact_key(meta).endswith(f"/{meta.id}/metadata.gz")
    else:
        assert archive.file_store == FileStore.LOCAL and archive.file_final_path is None
        assert artifact_key(archive).endswith(f"/{test['id']}/{archive.id}/artifacts.zip")


async def test_expire_in_never_default_and_unlocked_pipeline(coordinator: Coordinator) -> None:
    c = coordinator
    seeded = await c.seed(pipeline_scenario(pipeline={"locked": "unlocked"}))
    test = job(seeded, "test")
    assert (
        await upload(c, test["id"], test["token"], b"zip?", "artifact_type=archive&expire_in=Never")
    ).status_code == 201
    junit = gzip.compress(b"<testsuite/>")
    res = await upload(c, test["id"], test["token"], junit, "artifact_format=gzip&artifact_type=junit")
    assert res.status_code == 201
    archive, report = await rows(c, test["id"])
    assert archive.expire_at is None and archive.locked == ArtifactLocked.unlocked
    assert report.expire_at is not None
    assert abs((report.expire_at - datetime.now(UTC) - timedelta(days=30)).total_seconds()) < 30


async def test_same_sha256_twice_is_201_and_stores_nothing(coordinator: Coordinator) -> None:
    c = coordinator
    test = job(await c.seed(pipeline_scenario()), "test")
    data = zip_bytes({"a": "1"})
    assert (await upload(c, test["id"], test["token"], data)).status_code == 201
    res = await upload(c, test["id"], test["token"], data)
    assert (res.status_code, res.text) == (201, "201")
    assert len(await rows(c, test["id"])) == 1


async def test_same_type_other_content_is_400(coordinator: Coordinator) -> None:
    c = coordinator
    test = job(await c.seed(pipeline_scenario()), "test")
    assert (await upload(c, test["id"], test["token"], zip_bytes({"a": "1"}))).status_code == 201
    res = await upload(c, test["id"], test["token"], zip_bytes({"a": "2"}))
    assert (res.status_code, res.json()) == (400, {"message": "another artifact of the same type already exists"})


@pytest.mark.parametrize(
    "query",
    [
        "artifact_type=archive&artifact_format=gzip",
        "artifact_type=junit&artifact_format=raw",
        "artifact_type=sast&artifact_format=zip",
    ],
)
async def test_format_must_match_type(coordinator: Coordinator, query: str) -> None:
    c = coordinator
    test = job(await c.seed(pipeline_scenario()), "test")
    res = await upload(c, test["id"], test["token"], b"data", query)
    assert (res.status_code, res.json()) == (
        400,
        {"message": "Validation failed: Invalid file format with specified file type"},
    )
    assert await rows(c, test["id"]) == []


@pytest.mark.parametrize("expire_in", ["someday", "8000 years", "99999999999 years"])
async def test_unreadable_expire_in_is_400_naming_it(coordinator: Coordinator, expire_in: str) -> None:
    """Unparsable, or an expiry past what a datetime holds: 400, nothing recorded."""
    c = coordinator
    test = job(await c.seed(pipeline_scenario()), "test")
    res = await upload(c, test["id"], test["token"], b"zip", f"artifact_type=archive&expire_in={expire_in}")
    assert res.status_code == 400
    assert f"expire_in {expire_in!r} is not a valid duration" in res.json()["message"]
    assert await rows(c, test["id"]) == []


async def test_file_over_limit_is_413(coordinator: Coordinator) -> None:
    c = coordinator
    test = job(await c.seed(pipeline_scenario(project={"max_artifacts_size": 1})), "test")
    res = await upload(c, test["id"], test["token"], b"\0" * ((1 << 20) + 1))
    assert (res.status_code, res.json()) == (413, {"message": "file size has reached maximum size limit"})
    assert await rows(c, test["id"]) == []


async def test_missing_file_and_unsigned_fields(coordinator: Coordinator) -> None:
    c = coordinator
    test = job(await c.seed(pipeline_scenario()), "test")
    res = await finalize(c, test["id"], test["token"], {})
    assert (res.status_code, res.json()) == (400, {"error": "file is missing"})
    res = await c.client.post(
        f"/api/v4/jobs/{test['id']}/artifacts",
        files=[("file.path", (None, "/etc/passwd"))],
        headers=c.workhorse_headers(**{"JOB-TOKEN": test["token"]}),
    )
    assert res.status_code == 400 and "not rewritten" in res.json()["message"]


async def test_a_raw_file_part_is_refused(coordinator: Coordinator) -> None:
    c = coordinator
    test = job(await c.seed(pipeline_scenario()), "test")
    res = await c.client.post(
        f"/api/v4/jobs/{test['id']}/artifacts",
        files={"file": ("artifacts.zip", b"PK\x03\x04", "application/octet-stream")},
        headers=c.workhorse_headers(**{"JOB-TOKEN": test["token"]}),
    )
    assert res.status_code == 400
    assert await rows(c, test["id"]) == []


async def test_forged_locations_are_refused(coordinator: Coordinator) -> None:
    c = coordinator
    test = job(await c.seed(pipeline_scenario()), "test")
    res = await authorize(c, test["id"], test["token"])
    upload_fields = await store_like_workhorse(c, res.json(), b"zip")
    if c.state.store.remote:
        upload_fields["remote_id"] = upload_fields["remote_id"].replace("@final/", "@final/0")
        expected = "was not authorized"
    else:
        upload_fields["path"] = "/etc/hostname"
        expected = "insecure or missing upload path"
    res = await finalize(c, test["id"], test["token"], {"file": upload_fields})
    assert res.status_code == 400 and expected in res.json()["message"]
    assert await rows(c, test["id"]) == []


async def test_upload_requires_workhorse_and_a_running_job(coordinator: Coordinator) -> None:
    c = coordinator
    seeded = await c.seed(pipeline_scenario())
    test, build = job(seeded, "test"), job(seeded, "build")
    res = await c.client.post(
        f"/api/v4/jobs/{test['id']}/artifacts", headers={"JOB-TOKEN": test["token"]}, files={"file": ("a.zip", b"PK")}
    )
    assert (res.status_code, res.json()) == (403, {"message": "403 Forbidden"})
    res = await finalize(c, build["id"], build["token"], {})
    assert res.status_code == 403 and res.headers["job-status"] == "success"


async def test_storage_failure_midway_records_nothing(coordinator: Coordinator, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The metadata cannot be stored: no rows, no statistics, and the moved archive is removed."""
    c = coordinator
    seeded = await c.seed(pipeline_scenario())
    test, project_id = job(seeded, "test"), seeded["projects"]["acme/app"]["id"]
    before = await stats(c, project_id)
    res = await authorize(c, test["id"], test["token"])
    fields = {
        "file": await store_like_workhorse(c, res.json(), b"zip-bytes"),
        "metadata": local_metadata(c, gzip.compress(b"meta")),
    }
    real_put = c.state.store.put_file

    async def failing_put(key, source):  # type: ignore[no-untyped-def]
        if key.endswith("metadata.gz"):
            raise StorageError("injected: object storage went away")
        await real_put(key, source)

    monkeypatch.setattr(c.state.store, "put_file", failing_put)
    res = await finalize(c, test["id"], test["token"], fields)
    assert res.status_code == 503
    assert await rows(c, test["id"]) == []
    assert await stats(c, project_id) == before
    listed = [o.key async for page in c.state.store.list() for o in page]
    assert not any(f"/{test['id']}/" in key for key in listed)
