"""Downloads Rails hands to Workhorse: send-url (object storage) and X-Sendfile (local disk)."""

import os

import httpx
import pytest

DOWNLOAD = "/api/v4/jobs/42/artifacts"
DATA = os.urandom(3 * 1024 * 1024 + 17)


@pytest.fixture
def stored_object(env):
    env.s3.put_object(Bucket="artifacts", Key="prefix/dl/artifacts.zip", Body=DATA)
    return env.s3.generate_presigned_url(
        "get_object", Params={"Bucket": "artifacts", "Key": "prefix/dl/artifacts.zip"}, ExpiresIn=600
    )


def test_send_url_streams_object_with_rails_cache_headers(env, client, stored_object):
    env.rails.download = ("send-url", stored_object, {"ResponseHeaders": {"X-Extra": ["yes"]}})
    response = client.get(DOWNLOAD, headers={"JOB-TOKEN": "t"})
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["cache-control"] == "private"  # Rails', not the object store's
    assert response.headers["content-disposition"] == 'attachment; filename="artifacts.zip"'
    assert response.headers["x-extra"] == "yes"
    assert "gitlab-workhorse-send-data" not in response.headers
    assert "etag" in response.headers  # from the object store


@pytest.mark.parametrize("read_size", [1024, 4 * 1024 * 1024])
def test_send_url_relays_every_byte_whatever_it_reads_at_a_time(env, workhorse_with, stored_object, read_size):
    env.rails.download = ("send-url", stored_object, {})
    response = httpx.get(workhorse_with(storage_read_size=read_size) + DOWNLOAD, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(DATA))
    assert response.content == DATA


@pytest.mark.parametrize("kind", ["send-url", "sendfile"])
def test_rails_connection_is_kept_after_an_instruction(env, workhorse_with, stored_object, tmp_path, kind):
    """Rails' empty body beside an instruction is read, so its keep-alive connection is reused."""
    (tmp_path / "artifacts.zip").write_bytes(DATA)
    env.rails.download = (kind, stored_object if kind == "send-url" else str(tmp_path / "artifacts.zip"), {})
    with httpx.Client(base_url=workhorse_with(), timeout=30) as client:
        for _ in range(3):
            assert client.get(DOWNLOAD).content == DATA
    assert len({call.peer for call in env.rails.calls}) == 1


def test_send_url_forwards_range(env, client, stored_object):
    env.rails.download = ("send-url", stored_object, {})
    response = client.get(DOWNLOAD, headers={"Range": "bytes=100-199"})
    assert response.status_code == 206
    assert response.content == DATA[100:200]
    assert response.headers["content-range"] == f"bytes 100-199/{len(DATA)}"


def test_send_url_failure_is_500(env, client):
    env.rails.download = ("send-url", "http://127.0.0.1:9/unreachable", {})
    response = client.get(DOWNLOAD)
    assert response.status_code == 500
    assert response.text == "Internal Server Error\n"
    assert any(line["msg"] == "SendURL: Get request failed" for line in env.log_lines())


def test_sendfile_serves_whole_file_and_ranges(env, client, tmp_path):
    path = tmp_path / "artifacts.zip"
    path.write_bytes(DATA)
    env.rails.download = ("sendfile", str(path), {})
    whole = client.get(DOWNLOAD)
    assert whole.status_code == 200 and whole.content == DATA
    assert whole.headers["content-disposition"] == 'attachment; filename="artifacts.zip"'
    assert "x-sendfile" not in whole.headers
    part = client.get(DOWNLOAD, headers={"Range": "bytes=-10"})
    assert part.status_code == 206 and part.content == DATA[-10:]
    assert part.headers["content-range"] == f"bytes {len(DATA) - 10}-{len(DATA) - 1}/{len(DATA)}"
    beyond = client.get(DOWNLOAD, headers={"Range": f"bytes={len(DATA)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(DATA)}"


def test_sendfile_missing_file_is_404(env, client, tmp_path):
    env.rails.download = ("sendfile", str(tmp_path / "gone.zip"), {})
    response = client.get(DOWNLOAD)
    assert response.status_code == 404
    assert response.text == "404 page not found\n"
