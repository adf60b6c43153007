"""Memory under load: Workhorse's own S3 client keeps parts on disk, and the heap is trimmed when idle."""

import asyncio
import tempfile
import tracemalloc
from types import SimpleNamespace
from typing import Any

from workhorse import heap
from workhorse.upload.destination import s3
from workhorse.upload.preparer import S3Config

CHUNK = 1024 * 1024


class HeldS3:
    """An S3 that holds every part until released, so parts pile up in flight."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.parts: dict[int, bytes] = {}
        self.completed: list[int] = []

    async def create_multipart_upload(self, **_: Any) -> dict[str, str]:
        return {"UploadId": "upload-1"}

    async def upload_part(self, Body: Any, PartNumber: int, ContentLength: int, **_: Any) -> dict[str, str]:  # noqa: N803
        await self.release.wait()
        self.parts[PartNumber] = Body.read()
        assert len(self.parts[PartNumber]) == ContentLength
        return {"ETag": f'"{PartNumber}"'}

    async def complete_multipart_upload(self, MultipartUpload: dict[str, Any], **_: Any) -> None:  # noqa: N803
        self.completed = [part["PartNumber"] for part in MultipartUpload["Parts"]]


async def test_parts_in_flight_wait_on_disk_not_in_memory(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where part buffers go
    client = HeldS3()
    upload = s3.S3Object(SimpleNamespace(log=None), client, S3Config("artifacts", "us-east-1", "", True), "/tmp/key")
    count = s3.MAX_PARTS_IN_FLIGHT * s3.PART_SIZE // CHUNK + 2  # every part in flight, and a next one started
    chunks = [bytes([n]) * CHUNK for n in range(count)]
    tracemalloc.start()
    try:
        for chunk in chunks:
            await upload.write(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < s3.PART_SIZE  # not even one part in memory, with four held in flight
    assert list(tmp_path.iterdir()) == []  # unlinked at once: nothing left behind if Workhorse dies
    client.release.set()
    await upload.finish()
    assert client.completed == list(range(1, s3.MAX_PARTS_IN_FLIGHT + 2))
    assert b"".join(client.parts[n] for n in client.completed) == b"".join(chunks)


async def test_heap_is_trimmed_when_the_last_upload_ends(monkeypatch):
    trims: list[str] = []
    monkeypatch.setattr(heap, "trim", lambda: trims.append("trim"))
    async with heap.trimmed_when_idle():
        async with heap.trimmed_when_idle():
            pass
        assert trims == []  # another upload is still running
    assert trims == ["trim"]
