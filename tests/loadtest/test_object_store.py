"""The load test's object store streams a whole-object GET from moto's spooled file (moto alone
reads the object whole into memory for each GET: 50 concurrent 1 GiB downloads would need 50 GiB),
and leaves ranges, small objects and unsigned requests to moto and ``S3Gate``."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import httpx
import pytest

from mockctl.embedded_s3 import EmbeddedS3
from mockctl.loadtest.object_store import StreamingGet
from tests.rails.test_embedded_s3 import s3_client

BIG = 12 << 20  # past moto's ~5 MiB in-memory spool: on disk


@pytest.fixture(scope="module")
def store() -> Iterator[EmbeddedS3]:
    s3 = EmbeddedS3(wrap=StreamingGet).start()
    yield s3
    s3.stop()


def test_a_big_object_streams_in_pieces_with_the_same_bytes(store: EmbeddedS3, monkeypatch: pytest.MonkeyPatch) -> None:
    streamed: list[int] = []
    monkeypatch.setattr("mockctl.loadtest.object_store._pieces", lambda fd, size: streamed.append(size) or iter([]))
    s3 = s3_client(store.endpoint)
    s3.create_bucket(Bucket="streamed")
    body = os.urandom(BIG)
    s3.put_object(Bucket="streamed", Key="dir/big.bin", Body=body)
    s3.put_object(Bucket="streamed", Key="small.bin", Body=b"small")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "streamed", "Key": "dir/big.bin"})
    with httpx.stream("GET", url) as res, pytest.raises(httpx.RemoteProtocolError):
        res.read()  # no pieces: the body ends short
    assert streamed == [BIG]  # the middleware answered, not moto
    monkeypatch.undo()
    with httpx.stream("GET", url) as res:
        assert res.status_code == 200
        assert int(res.headers["Content-Length"]) == BIG
        assert res.headers["ETag"] == s3.head_object(Bucket="streamed", Key="dir/big.bin")["ETag"]
        digest = hashlib.sha256()
        for chunk in res.iter_bytes():
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(body).hexdigest()
    ranged = s3.get_object(Bucket="streamed", Key="dir/big.bin", Range="bytes=10-19")["Body"].read()
    assert ranged == body[10:20]
    assert s3.get_object(Bucket="streamed", Key="small.bin")["Body"].read() == b"small"
    assert httpx.get(url.split("?")[0]).status_code == 403  # unsigned: refused before the stream
