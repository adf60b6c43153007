"""Upload failures: each gets GitLab's status, and nothing is left in S3 or TempPath."""

import socket
import time
from urllib.parse import urlparse

import pytest

from tests.workhorse.conftest import free_port
from tests.workhorse.helpers import (
    BOUNDARY,
    HEADERS,
    UPLOAD_PATH,
    chunked,
    eventually,
    file_body,
    make_zip,
    multipart,
)
from tests.workhorse.stub_rails import JOB_TOKEN


def _nothing_left(env) -> None:
    eventually(lambda: env.objects() == [] and env.multipart_uploads() == [] and list(env.temp_path.iterdir()) == [])


def _rails_got_upload(env) -> bool:
    return any(c.method == "POST" and c.path == UPLOAD_PATH for c in env.rails.calls)


@pytest.fixture(params=["local", "s3", "presigned"])
def storage(env, request):
    env.rails.mode = request.param
    return request.param


def test_authorize_refusal_is_passed_through_unchanged(env, client):
    response = client.post(UPLOAD_PATH, headers={**HEADERS, "JOB-TOKEN": "wrong"}, content=file_body(b"x"))
    assert response.status_code == 403
    assert response.content == b'{"message":"403 Forbidden"}'
    assert response.headers["x-stub"] == "refused"
    assert response.headers["content-type"] == "application/json"
    assert env.rails.paths() == [f"POST {UPLOAD_PATH}/authorize"]


def test_over_maximum_size_is_413_and_leaves_nothing(env, client, storage):
    env.rails.maximum_size = 1024 * 1024
    response = client.post(
        UPLOAD_PATH, headers=HEADERS, content=chunked(file_body(b"z" * (6 * 1024 * 1024)), 256 * 1024)
    )
    assert response.status_code == 413
    assert response.text == "Request Entity Too Large\n"
    assert response.headers["content-type"].startswith("text/plain")
    assert not _rails_got_upload(env)
    _nothing_left(env)
    assert any(line.get("limit") == "MaximumSize" for line in env.log_lines())


def test_rails_error_after_upload_deletes_object(env, client, storage):
    env.rails.upload_status = 500
    response = client.post(UPLOAD_PATH, headers=HEADERS, content=chunked(file_body(make_zip())))
    assert response.status_code == 500
    assert response.json() == {"message": "stub failure"}
    assert _rails_got_upload(env)
    _nothing_left(env)


def test_missing_file_part_reaches_rails_which_refuses(env, client):
    body = multipart([("expire_in", None, b"1 day")])
    response = client.post(UPLOAD_PATH, headers=HEADERS, content=body)
    assert response.status_code == 400
    assert response.json() == {"error": "file is missing"}


@pytest.mark.parametrize(
    "body",
    [
        file_body(b"data", "a.zip").replace(BOUNDARY.encode(), b"otherboundary"),  # wrong boundary
        file_body(b"data", "a.zip")[:-4] + b"\r\n",  # ends after the file part, no closing boundary
    ],
)
def test_malformed_multipart_is_400(env, client, body):
    response = client.post(UPLOAD_PATH, headers=HEADERS, content=body)
    assert response.status_code == 400
    assert not _rails_got_upload(env)
    _nothing_left(env)


LONG = "b" * 300  # over python-multipart's 256 bytes, far over RFC 2046's 70


@pytest.mark.parametrize(
    ("boundary", "body"),
    [
        (LONG, multipart([("file", "a.zip", b"data")], boundary=LONG)),
        ('""', file_body(b"data")),  # an empty boundary
        (BOUNDARY, b""),  # no body at all
        (BOUNDARY, file_body(b"data")[:30]),  # cut inside the first part's headers
        (BOUNDARY, f"--{BOUNDARY}\r\n".encode()),  # cut right after the opening boundary
        (BOUNDARY, b"no boundary anywhere in here"),
    ],
    ids=["boundary-over-256", "empty-boundary", "empty-body", "cut-in-headers", "cut-after-boundary", "garbage"],
)
def test_multipart_workhorse_cannot_read_is_400_bad_request(env, client, storage, boundary, body):
    headers = {**HEADERS, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    response = client.post(UPLOAD_PATH, headers=headers, content=chunked(body))
    assert (response.status_code, response.text) == (400, "Bad Request\n")
    assert not _rails_got_upload(env)
    _nothing_left(env)


def test_boundary_longer_than_rfc_2046_is_read_as_go_reads_it(env, client):
    boundary = "c" * 200  # RFC 2046 allows 70; Go's mime/multipart (and so Workhorse) takes it
    headers = {**HEADERS, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    data = make_zip()
    response = client.post(UPLOAD_PATH, headers=headers, content=multipart([("file", "a.zip", data)], boundary))
    assert response.status_code == 201
    (call,) = [c for c in env.rails.calls if c.path == UPLOAD_PATH]
    assert call.form["file.size"] == str(len(data)) and "metadata.size" in call.form


@pytest.mark.parametrize("mode", ["s3", "presigned"])
@pytest.mark.parametrize("store", ["slow-down", "unreachable"])
def test_archive_unreadable_for_metadata_is_500_and_leaves_nothing(env, client, mode, store):
    env.rails.mode = mode
    env.rails.get_url = {
        "slow-down": f"{env.rails_url}/slow-down",  # answers 503
        "unreachable": f"http://127.0.0.1:{free_port()}/unreachable",  # nobody listens there
    }[store]
    response = client.post(UPLOAD_PATH, headers=HEADERS, content=chunked(file_body(make_zip())))
    assert (response.status_code, response.text) == (500, "Internal Server Error\n")  # not a bare 201
    assert not _rails_got_upload(env)
    _nothing_left(env)
    errors = [line["error"] for line in env.log_lines() if line.get("level") == "error"]
    assert any(f"HTTP GET /{store}: " in error for error in errors), errors


def test_archive_missing_for_metadata_goes_on_without_metadata(env, client):
    """gitlab-zip-metadata's "archive not found" (exit 12) is no reason to fail: Rails judges the file."""
    env.rails.mode = "s3"
    env.rails.get_url = env.s3.generate_presigned_url("get_object", Params={"Bucket": "artifacts", "Key": "gone"})
    response = client.post(UPLOAD_PATH, headers=HEADERS, content=chunked(file_body(make_zip())))
    assert response.status_code == 201
    (call,) = [c for c in env.rails.calls if c.path == UPLOAD_PATH]
    assert "file.remote_id" in call.form and not any(name.startswith("metadata.") for name in call.form)


def test_body_cut_inside_file_data_is_500_and_leaves_nothing(env, client, storage):
    body = file_body(b"q" * 200_000)[:150_000]
    response = client.post(UPLOAD_PATH, headers=HEADERS, content=chunked(body))
    assert response.status_code == 500
    assert not _rails_got_upload(env)
    _nothing_left(env)


def test_missing_boundary_param_is_400(env, client):
    headers = {**HEADERS, "Content-Type": "multipart/form-data"}
    assert client.post(UPLOAD_PATH, headers=headers, content=b"x").status_code == 400


def test_injected_file_field_is_400(env, client):
    body = multipart([("file.path", None, b"/etc/passwd"), ("file", "a.zip", b"data")])
    response = client.post(UPLOAD_PATH, headers=HEADERS, content=body)
    assert response.status_code == 400
    assert not _rails_got_upload(env)


def test_more_than_ten_files_is_400(env, client):
    body = multipart([("file", f"f{i}.zip", b"data") for i in range(11)])
    response = client.post(UPLOAD_PATH, headers=HEADERS, content=body)
    assert response.status_code == 400
    assert response.text == "upload request contains more than 10 files\n"
    _nothing_left(env)


def _raw_upload(env, body: bytes, declared: int | None, send: int) -> bytes:
    """Send ``send`` bytes of ``body`` on a raw socket, then close our side; returns the answer."""
    url = urlparse(env.workhorse)
    head = (
        f"POST {UPLOAD_PATH} HTTP/1.1\r\nHost: {url.netloc}\r\nJOB-TOKEN: {JOB_TOKEN}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
    )
    head += f"Content-Length: {declared}\r\n\r\n" if declared is not None else "Transfer-Encoding: chunked\r\n\r\n"
    payload = body[:send] if declared is not None else f"{send:x}\r\n".encode() + body[:send] + b"\r\n"
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head.encode() + payload)
        time.sleep(0.3)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except OSError:
            pass
    return answer


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_client_disconnect_mid_upload_leaves_nothing(env, storage, framing):
    body = file_body(b"d" * 3_000_000)
    declared = len(body) if framing == "content-length" else None
    _raw_upload(env, body, declared, 1_500_000)
    _nothing_left(env)
    assert not _rails_got_upload(env)


def test_content_length_larger_than_body_leaves_nothing(env):
    env.rails.mode = "s3"
    body = file_body(b"l" * 100_000)
    _raw_upload(env, body, len(body) + 5000, len(body))
    _nothing_left(env)
    assert not _rails_got_upload(env)


def test_content_length_smaller_than_body_is_refused(env, client):
    body = file_body(b"s" * 100_000)
    answer = _raw_upload(env, body, len(body) - 5000, len(body))
    assert answer.startswith(b"HTTP/1.1 500") or answer.startswith(b"HTTP/1.1 400"), answer[:200]
    _nothing_left(env)
    assert not _rails_got_upload(env)


def test_object_storage_unreachable_is_500(env, client):
    env.rails.mode = "s3"
    env.rails.s3_endpoint, endpoint = "http://127.0.0.1:9", env.rails.s3_endpoint
    try:
        response = client.post(UPLOAD_PATH, headers=HEADERS, content=chunked(file_body(make_zip())))
    finally:
        env.rails.s3_endpoint = endpoint
    assert response.status_code == 500
    assert not _rails_got_upload(env)


def test_presigned_store_unreachable_is_500(env, client, monkeypatch):
    env.rails.mode = "presigned"
    real = env.rails._remote_object

    def broken():
        remote = real()
        remote["StoreURL"] = "http://127.0.0.1:9/bucket/key"
        return remote

    monkeypatch.setattr(env.rails, "_remote_object", broken)
    response = client.post(UPLOAD_PATH, headers=HEADERS, content=chunked(file_body(b"p" * 3_000_000)))
    assert response.status_code == 500
    assert not _rails_got_upload(env)


def test_empty_region_fails_like_the_go_sdk(env, client):
    env.rails.mode, env.rails.region = "s3", ""
    response = client.post(UPLOAD_PATH, headers=HEADERS, content=chunked(file_body(make_zip())))
    assert response.status_code == 500
    assert response.text == "Internal Server Error\n"
    line = next(line for line in env.log_lines() if line["msg"] == "error uploading S3 session")
    assert line["error"] == "MissingRegion: could not find region configuration"
    assert line["level"] == "error"
    assert not _rails_got_upload(env)
    _nothing_left(env)


def test_client_max_body_size_by_content_length(env, limited_workhorse):
    import httpx

    response = httpx.post(limited_workhorse + UPLOAD_PATH, headers=HEADERS, content=file_body(b"n" * 5000))
    assert response.status_code == 413
    assert response.headers["content-type"] == "text/html"
    assert response.text.startswith("<html>\r\n<head><title>413 Request Entity Too Large</title>")
    assert response.text.endswith("<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
    assert env.rails.calls == []  # Rails never heard of it


def test_client_max_body_size_counted_on_chunked_body(env, limited_workhorse, tmp_path):
    import httpx

    response = httpx.post(
        limited_workhorse + UPLOAD_PATH, headers=HEADERS, content=chunked(file_body(b"n" * 50_000), 512)
    )
    assert response.status_code == 413
    assert "nginx" in response.text
    assert not _rails_got_upload(env)
    _nothing_left(env)
    lines = (tmp_path / "workhorse.log").read_text()
    assert '"limit":"client_max_body_size"' in lines


def test_client_max_body_size_on_proxied_chunked_body(env, limited_workhorse):
    import httpx

    response = httpx.post(limited_workhorse + "/echo", content=chunked(b"e" * 200_000, 4096))
    assert response.status_code == 413
    assert "nginx" in response.text


@pytest.mark.parametrize(
    ("case", "status", "text"),
    [
        ("client_max_body_size", 413, "<center>nginx</center>"),
        ("MaximumSize", 413, "Request Entity Too Large\n"),
        ("wrong job token", 403, '{"message":"403 Forbidden"}'),
    ],
)
async def test_an_early_answer_survives_a_body_still_in_flight(env, limited_workhorse, case, status, text):
    """Answered before the body is read, the front door drains the rest (NGINX's lingering close): a client still
    writing 4 MiB reads the answer, not a connection reset."""
    import httpx

    base, headers = limited_workhorse if case == "client_max_body_size" else env.workhorse, dict(HEADERS)
    if case == "MaximumSize":
        env.rails.maximum_size = 1024
    elif case == "wrong job token":
        headers["JOB-TOKEN"] = "wrong"
    data = file_body(b"n" * (4 << 20))

    async def body():
        for start in range(0, len(data), 32 << 10):
            yield data[start : start + (32 << 10)]

    async with httpx.AsyncClient() as client:
        for _ in range(3):  # without lingering, the reset wins the race nearly every time
            response = await client.post(base + UPLOAD_PATH, headers=headers, content=body())
            assert (response.status_code, text in response.text) == (status, True)
