"""``ObjectStorage::DeleteStaleDirectUploadsWorker``: authorized uploads nobody finalized go
after 3 hours (by the mock clock) with their objects and incomplete uploads; younger ones stay."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from sqlmodel import select

from app import clock
from app.models import PendingDirectUpload
from mockctl.reset import reset
from tests.conftest import ADMIN_TOKEN, Coordinator
from tests.rails.helpers import authorize, bucket_client, job, open_multipart_keys, pipeline_scenario

ADMIN = {"PRIVATE-TOKEN": ADMIN_TOKEN}
WORKER = "/-/mock/workers/object_storage_delete_stale_direct_uploads_worker/perform"


async def pending_paths(c: Coordinator) -> set[str]:
    async with c.state.db.session() as session:
        return set((await session.exec(select(PendingDirectUpload.path))).all())


async def begin_upload(c: Coordinator, job_id: int, token: str) -> str:
    """Authorize as Workhorse; answers the ``@final`` path it was told to write."""
    res = await authorize(c, job_id, token)
    assert res.status_code == 200, res.text
    return res.json()["RemoteObject"]["ID"]


async def perform(c: Coordinator) -> dict:
    res = await c.client.post(WORKER, headers=ADMIN)
    assert res.status_code == 200, res.text
    return res.json()


async def test_stale_pending_uploads_go_with_their_objects_young_ones_stay(coordinator: Coordinator) -> None:
    c = coordinator
    if not c.state.store.remote:
        pytest.skip("local storage records no pending direct uploads")
    settings = c.settings
    bucket = settings.object_store.artifacts_bucket
    test = job(await c.seed(pipeline_scenario()), "test")
    written = await begin_upload(c, test["id"], test["token"])  # all bytes stored, never finalized
    await c.state.store.put_bytes(written, b"orphan")
    killed = await begin_upload(c, test["id"], test["token"])  # Workhorse died mid-upload
    async with bucket_client(settings) as s3:
        part = await s3.create_multipart_upload(Bucket=bucket, Key=killed)
        await s3.upload_part(Bucket=bucket, Key=killed, UploadId=part["UploadId"], PartNumber=1, Body=os.urandom(1024))

        clock.advance(timedelta(hours=2))
        young = await begin_upload(c, test["id"], test["token"])  # still uploading
        await s3.create_multipart_upload(Bucket=bucket, Key=young)
        clock.advance(timedelta(minutes=59))
        assert (await perform(c))["total_deleted_stale_entries"] == 0
        assert await pending_paths(c) == {written, killed, young}
        assert await open_multipart_keys(s3, settings) == sorted([killed, young])

        clock.advance(timedelta(minutes=2))  # past 3 hours for the first two
        done = await perform(c)
        assert done == {
            "job_class": "ObjectStorage::DeleteStaleDirectUploadsWorker",
            "total_pending_entries": 3,
            "total_deleted_stale_entries": 2,
            "execution_timeout": False,
            "total_aborted_incomplete_uploads": 1,
        }
        assert await pending_paths(c) == {young}
        assert await c.state.store.head(written) is None
        assert await open_multipart_keys(s3, settings) == [young]


async def test_reset_aborts_every_incomplete_upload(coordinator: Coordinator) -> None:
    c = coordinator
    test = job(await c.seed(pipeline_scenario()), "test")
    if c.state.store.remote:
        key = await begin_upload(c, test["id"], test["token"])
        async with bucket_client(c.settings) as s3:
            await s3.create_multipart_upload(Bucket=c.settings.object_store.artifacts_bucket, Key=key)
            await reset(c.state)
            assert await open_multipart_keys(s3, c.settings) == []
        assert await pending_paths(c) == set()
    else:
        leftover = c.settings.uploads_path / "gitlab-workhorse-upload123"
        leftover.write_bytes(b"partial")
        await reset(c.state)
        assert not leftover.exists()


async def test_local_temp_files_go_after_three_hours(coordinator: Coordinator) -> None:
    c = coordinator
    if c.state.store.remote:
        pytest.skip("object storage keeps no temp files")
    leftover = c.settings.uploads_path / "gitlab-workhorse-upload456"
    leftover.write_bytes(b"partial")
    clock.advance(timedelta(hours=2, minutes=59))
    assert (await perform(c))["total_aborted_incomplete_uploads"] == 0
    assert leftover.exists()
    clock.advance(timedelta(minutes=2))
    assert (await perform(c))["total_aborted_incomplete_uploads"] == 1
    assert not leftover.exists()


async def test_workers_are_listed_and_unknown_ones_are_404(coordinator: Coordinator) -> None:
    c = coordinator
    listed = (await c.client.get("/-/mock/workers", headers=ADMIN)).json()
    assert {
        "name": "object_storage_delete_stale_direct_uploads_worker",
        "job_class": "ObjectStorage::DeleteStaleDirectUploadsWorker",
        "cron": "*/6 * * * *",
    } in listed
    by_class = await c.client.post(
        "/-/mock/workers/ObjectStorage::DeleteStaleDirectUploadsWorker/perform", headers=ADMIN
    )
    assert by_class.status_code == 200
    missing = await c.client.post("/-/mock/workers/nope/perform", headers=ADMIN)
    assert (missing.status_code, missing.json()) == (404, {"message": "404 Worker Not Found"})
    assert (await c.client.post(WORKER)).status_code == 401
