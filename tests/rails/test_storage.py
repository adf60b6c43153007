"""Both artifact stores behind one interface, against real disk and a real S3 server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.config import ObjectStore
from app.storage import LocalStore, S3Store, StorageError
from app.storage.paths import final_path, hashed_store_dir, is_final_path
from mockctl.embedded_s3 import EmbeddedS3
from mockctl.ports import free_port


@pytest.fixture(params=["local", "s3", "s3-prefixed"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, s3_server: EmbeddedS3) -> AsyncIterator:
    if request.param == "local":
        yield LocalStore(tmp_path / "artifacts")
        return
    bucket = f"store-{tmp_path.name.lower().replace('_', '-')[-40:]}"
    if request.param == "s3-prefixed":
        bucket += "/some/prefix"
    s3 = await S3Store(
        ObjectStore(connection={"endpoint": s3_server.endpoint}, objects={"artifacts": {"bucket": bucket}})
    ).open()
    await s3.ensure_bucket()
    yield s3
    await s3.close()


async def read(store, key: str, start: int = 0, end: int | None = None) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join([chunk async for chunk in store.iter_range(key, start, end)])


async def test_put_head_ranged_read_delete(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "upload.bin"
    source.write_bytes(bytes(range(256)) * 8192)  # 2 MiB: more than one read chunk
    await store.put_file("a/b/file.bin", source)
    await store.put_bytes("a/c/small", b"hello")
    assert (await store.head("a/b/file.bin")).size == 2 * 1024 * 1024
    assert await store.head("a/b/missing") is None
    assert await read(store, "a/c/small") == b"hello"
    assert await read(store, "a/b/file.bin", 256, 511) == bytes(range(256))
    assert len(await read(store, "a/b/file.bin", 1024)) == 2 * 1024 * 1024 - 1024
    await store.delete("a/c/small")
    assert await store.head("a/c/small") is None


async def test_listing_pages_with_a_marker(store) -> None:  # type: ignore[no-untyped-def]
    keys = [f"h/{i:03d}" for i in range(7)]
    for key in keys:
        await store.put_bytes(key, key.encode())
    await store.put_bytes("other/x", b"x")
    pages = [[o.key for o in page] async for page in store.list("h/", max_keys=3)]
    assert pages == [keys[0:3], keys[3:6], keys[6:7]]
    resumed = [o.key async for page in store.list("h/", marker="h/004", max_keys=3) for o in page]
    assert resumed == keys[5:]
    await store.clear()
    assert [o async for page in store.list() for o in page] == []


async def test_presigned_urls_work(store) -> None:  # type: ignore[no-untyped-def]
    if not store.remote:
        with pytest.raises(NotImplementedError):
            await store.presigned_url("GET", "k", 60)
        return
    put = await store.presigned_url("PUT", "p/q", 60)
    async with httpx.AsyncClient() as raw:
        assert (await raw.put(put, content=b"direct")).status_code == 200
        assert (await raw.get(await store.presigned_url("GET", "p/q", 60))).content == b"direct"
        assert (await raw.head(await store.presigned_url("HEAD", "p/q", 60))).status_code == 200
        assert (await raw.delete(await store.presigned_url("DELETE", "p/q", 60))).status_code == 204
    assert await store.head("p/q") is None


async def test_unreachable_object_storage_is_a_storage_error() -> None:
    s3 = await S3Store(ObjectStore(connection={"endpoint": f"http://127.0.0.1:{free_port()}"})).open()
    try:
        with pytest.raises(StorageError):
            await s3.put_bytes("k", b"v")
        with pytest.raises(StorageError):
            await s3.head("k")
        with pytest.raises(StorageError):
            await s3.ensure_bucket()
    finally:
        await s3.close()


def test_local_keys_cannot_escape_the_root(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="escapes"):
        LocalStore(tmp_path).path("../../etc/passwd")


def test_gitlab_paths() -> None:
    from datetime import UTC, datetime

    h = "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"  # sha256("1")
    assert hashed_store_dir(1, datetime(2026, 1, 2, tzinfo=UTC), 10, 20) == f"6b/86/{h}/2026_01_02/10/20"
    key = final_path(1)
    prefix, _, rest = key.partition("/@final/")
    assert prefix == f"6b/86/{h}" and [len(p) for p in rest.split("/")] == [2, 2, 60]
    assert is_final_path(key) and not is_final_path(hashed_store_dir(1, datetime.now(UTC), 1, 1))
    assert final_path(1) != key
