"""A Workhorse process killed mid-upload leaves an open S3 multipart upload (or, on local
storage, its temp file) and a pending direct upload; the stale-upload worker, once 3 hours
have passed, or a reset, leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from app import clock
from mockctl.children import listen, stop
from mockctl.front_door import start_workhorse, wait_ready
from mockctl.ports import free_port
from mockctl.reset import reset
from tests.conftest import ADMIN_TOKEN, Coordinator
from tests.rails.helpers import bucket_client, job, open_multipart_keys, pipeline_scenario
from tests.rails.test_stale_direct_uploads import WORKER, pending_paths
from tests.workhorse.helpers import BOUNDARY, file_body

SENT_BEFORE_KILL = 9 * 1024 * 1024  # more than Workhorse's 8 MiB part: the multipart upload has begun


async def stalled_body(sent: asyncio.Event) -> AsyncIterator[bytes]:
    """The first 9 MiB of a larger upload, then nothing: the upload is in flight when Workhorse dies."""
    body = file_body(b"x" * (2 * SENT_BEFORE_KILL))
    for start in range(0, SENT_BEFORE_KILL, 1024 * 1024):
        yield body[start : start + 1024 * 1024]
    sent.set()
    await asyncio.Event().wait()


async def leftovers(c: Coordinator) -> list[str]:
    """What an interrupted upload left: open multipart uploads, or temp files."""
    if c.state.store.remote:
        async with bucket_client(c.settings) as s3:
            return await open_multipart_keys(s3, c.settings)
    return sorted(p.name for p in c.settings.uploads_path.iterdir())


async def kill_workhorse_mid_upload(c: Coordinator) -> None:
    rails_port = int(c.url.rsplit(":", 1)[1])
    settings = c.settings.model_copy(update={"rails_port": rails_port, "workhorse_port": free_port()})
    test = job(await c.seed(pipeline_scenario()), "test")
    front = listen(settings.host, settings.workhorse_port)
    proc = await start_workhorse(settings, front)
    try:
        url = f"http://127.0.0.1:{settings.workhorse_port}"
        await wait_ready(proc, url)
        sent = asyncio.Event()
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            upload = asyncio.create_task(
                client.post(
                    f"/api/v4/jobs/{test['id']}/artifacts?artifact_format=zip&artifact_type=archive",
                    content=stalled_body(sent),
                    headers={"Job-Token": test["token"], "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
                )
            )
            await asyncio.wait_for(sent.wait(), 30)
            async with asyncio.timeout(30):
                while True:
                    if await leftovers(c):
                        break
                    await asyncio.sleep(0.05)
            proc.kill()
            await proc.wait()
            upload.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await upload
    finally:
        await stop(proc)
        front.close()


@pytest.mark.parametrize("cleanup", ["worker", "reset"])
async def test_nothing_left_behind(coordinator: Coordinator, cleanup: str) -> None:
    c = coordinator
    await kill_workhorse_mid_upload(c)
    assert await leftovers(c)
    assert len(await pending_paths(c)) == (1 if c.state.store.remote else 0)
    if cleanup == "reset":
        await reset(c.state)
    else:
        clock.advance(timedelta(hours=3, minutes=1))
        res = await c.client.post(WORKER, headers={"PRIVATE-TOKEN": ADMIN_TOKEN})
        assert res.status_code == 200 and res.json()["total_aborted_incomplete_uploads"] == 1
    assert await leftovers(c) == []
    assert await pending_paths(c) == set()
