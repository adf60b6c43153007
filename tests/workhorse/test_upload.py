"""Artifact uploads through Workhorse: local TempPath and S3, zip metadata, hashes, signed fields."""

import time

import jwt
import pytest

from tests.workhorse.helpers import (
    HEADERS,
    UPLOAD_PATH,
    chunked,
    eventually,
    expected_metadata,
    file_body,
    hashes,
    make_zip,
    multipart,
    read_metadata,
)

QUERY = "artifact_type=archive&expire_in=1+day"


def _upload_call(env):
    calls = [c for c in env.rails.calls if c.method == "POST" and c.path == UPLOAD_PATH]
    assert len(calls) == 1, env.rails.paths()
    assert not calls[0].problems, calls[0].problems
    return calls[0]


def _check_file_fields(call, data: bytes, key: bytes) -> None:
    form = call.form
    assert form["file.name"] == "artifacts.zip"
    assert form["file.size"] == str(len(data))
    for name, digest in hashes(data).items():
        assert form[f"file.{name}"] == digest
    signed = jwt.decode(form["file.gitlab-workhorse-upload"], key, algorithms=["HS256"], issuer="gitlab-workhorse")
    assert signed["upload"]["sha256"] == hashes(data)["sha256"]
    assert float(form["file.upload_duration"]) >= 0


@pytest.mark.parametrize("body_kind", ["content-length", "chunked"])
def test_local_zip_upload_writes_file_and_metadata(env, client, body_kind):
    data = make_zip()
    body = file_body(data)
    response = client.post(
        f"{UPLOAD_PATH}?{QUERY}",
        headers=HEADERS,
        content=body if body_kind == "content-length" else chunked(body, 1000),
    )
    assert response.status_code == 201, response.text
    assert response.text == "201"
    call = _upload_call(env)
    _check_file_fields(call, data, env.key)
    assert call.form["file.path"].startswith(str(env.temp_path))
    assert call.form["file.remote_id"] == "" and call.form["file.remote_url"] == ""
    assert call.query == QUERY
    assert call.files["file"] == data
    assert read_metadata(call.files["metadata"]) == expected_metadata(data)
    assert call.form["metadata.name"] == "metadata.gz"
    assert call.form["metadata.sha256"] == hashes(call.files["metadata"])["sha256"]
    fields = jwt.decode(
        call.headers["gitlab-workhorse-multipart-fields"], env.key, algorithms=["HS256"], issuer="gitlab-workhorse"
    )["rewritten_fields"]
    assert fields == {"file": call.form["file.path"], "metadata": call.form["metadata.path"]}
    eventually(lambda: list(env.temp_path.iterdir()) == [])  # temp files go after the request
    saved = [line for line in env.log_lines() if line["msg"] == "saved file"]
    assert [s["client_mode"] for s in saved] == ["local_tempfile", "local_tempfile"]
    assert saved[0]["copied_bytes"] == len(data) and saved[0]["is_local"] is True


@pytest.mark.parametrize("mode", ["s3", "presigned"])
def test_s3_zip_upload_stores_object_and_metadata(env, client, mode):
    env.rails.mode = mode
    data = make_zip(extra_size=12 * 1024 * 1024 if mode == "s3" else 0)  # > one part: multipart upload
    response = client.post(f"{UPLOAD_PATH}?{QUERY}", headers=HEADERS, content=chunked(file_body(data)))
    assert response.status_code == 201, response.text
    call = _upload_call(env)
    _check_file_fields(call, data, env.key)
    assert call.form["file.path"] == ""
    assert call.form["file.remote_id"] == env.rails.remote_key.removeprefix("prefix/")
    assert call.form["file.remote_url"].startswith(env.s3_endpoint)
    stored = env.s3.get_object(Bucket="artifacts", Key=env.rails.remote_key)["Body"].read()
    assert stored == data
    assert read_metadata(call.files["metadata"]) == expected_metadata(data)
    assert env.multipart_uploads() == []
    saved = next(line for line in env.log_lines() if line["msg"] == "saved file")
    assert saved["client_mode"] == ("s3_client_v2" if mode == "s3" else "presigned_put")
    assert saved["is_remote"] is True and saved["remote_id"] == call.form["file.remote_id"]


@pytest.mark.parametrize("fmt", ["gzip", "raw"])
def test_non_zip_formats_get_no_metadata(env, client, fmt):
    data = b"\x1f\x8b not really a zip" * 100
    response = client.post(
        f"{UPLOAD_PATH}?artifact_format={fmt}&artifact_type=junit", headers=HEADERS, content=file_body(data)
    )
    assert response.status_code == 201
    call = _upload_call(env)
    assert not any(k.startswith("metadata.") for k in call.form)
    assert call.files["file"] == data


def test_zip_format_that_is_not_a_zip_still_uploads_without_metadata(env, client):
    env.rails.mode = "s3"
    data = b"plain bytes, no central directory" * 1000
    response = client.post(UPLOAD_PATH, headers=HEADERS, content=chunked(file_body(data)))
    assert response.status_code == 201
    call = _upload_call(env)
    assert "metadata.path" not in call.form
    assert call.form["file.sha256"] == hashes(data)["sha256"]


def test_plain_fields_pass_through(env, client):
    data = make_zip()
    body = multipart([("expire_in", None, b"3 days"), ("file", "artifacts.zip", data)])
    assert client.post(UPLOAD_PATH, headers=HEADERS, content=body).status_code == 201
    assert _upload_call(env).form["expire_in"] == "3 days"


def test_request_id_propagates_and_proxy_names_workhorse_unsigned(env, client):
    response = client.get("/echo?private_token=secret123", headers={"X-Request-Id": "abc123"})
    assert response.headers["x-request-id"] == "abc123"
    seen = response.json()
    assert seen["problems"] == []
    assert "gitlab-workhorse-api-request" not in seen["headers"]  # only intercepted routes are signed
    assert seen["headers"]["x-request-id"] == "abc123"
    generated = client.get("/echo").headers["x-request-id"]
    assert len(generated) == 26
    access = [line for line in env.log_lines() if line["msg"] == "access" and line["uri"].startswith("/echo")]
    assert access[0]["uri"] == "/echo?private_token=[FILTERED]"
    assert access[0]["correlation_id"] == "abc123" and access[0]["status"] == 200
    assert access[0]["written_bytes"] == len(response.content)


def test_non_ascii_header_bytes_reach_rails_as_sent(env, client):
    """A placeholder pasted as a token (``glcbt-…``): Rails answers it, Workhorse does not fail."""
    sent = "glcbt-…".encode()
    for path in ("/echo", "/api/v4/jobs/1/artifacts/authorize"):
        response = client.post(path, headers={"Job-Token": sent})
        assert response.status_code != 500, response.text
    seen = client.get("/echo", headers={"Job-Token": sent}).json()
    assert seen["headers"]["job-token"].encode("latin-1") == sent


def test_proxy_streams_request_body(env, client):
    response = client.post("/echo", content=chunked(b"x" * 3_000_000))
    assert response.json()["size"] == 3_000_000


def test_client_cannot_smuggle_internal_headers_through_the_proxy(env, client):
    forged = jwt.encode({"iss": "gitlab-workhorse", "iat": int(time.time())}, env.key, algorithm="HS256")
    sent = {
        "Gitlab-Workhorse-Api-Request": forged,
        "Gitlab-Workhorse": "0.0.0-client",
        "Gitlab-Workhorse-Multipart-Fields": forged,
        "X-Sendfile-Type": "X-Accel-Redirect",
    }
    seen = client.get("/echo", headers=sent).json()["headers"]
    assert "gitlab-workhorse-api-request" not in seen and "gitlab-workhorse-multipart-fields" not in seen
    assert seen["gitlab-workhorse"] != "0.0.0-client" and seen["x-sendfile-type"] == "X-Sendfile"


def test_non_multipart_upload_is_proxied_signed(env, client):
    response = client.post(UPLOAD_PATH, headers={**HEADERS, "Content-Type": "application/json"}, content=b"{}")
    assert response.status_code == 400  # the stub's "file is missing": it got there, signed
    assert [(c.path, c.problems) for c in env.rails.calls] == [(UPLOAD_PATH + "/authorize", []), (UPLOAD_PATH, [])]
