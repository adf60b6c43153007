"""gitlab-runner's call counts (commands/helpers/artifacts_test.go), transport retries and
redirects, driven by a small counting server over real HTTP."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

import pytest

from runner_client.responses import ArtifactsError
from runner_client.upload import UploadState
from tests.runner_client.conftest import FailureServer, Recorder, Seen, make_client

TOKEN = "glcbt-64a1b2c3d4e5f6a7b8c9"
JSON = {"Content-Type": "application/json"}


@dataclass
class Outcome:
    lines: list[str]
    fatal: str | None


def reply(status: int, body: bytes = b"", **headers: str):  # noqa: ANN201
    async def handler(seen: Seen, n: int) -> tuple[int, dict[str, str], bytes]:
        return status, headers, body

    return handler


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("dep/file.txt", "from the dependency")
    return buf.getvalue()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.txt").write_text("artifact")
    return tmp_path


async def upload(failures: FailureServer, workdir: Path, sleep: Recorder, version: str = "19", **kw) -> Outcome:  # noqa: ANN003
    async with make_client(failures.url, sleep, runner_version=version) as client:
        try:
            await client.upload(10, TOKEN, ["out"], workdir=workdir, **kw)
        except ArtifactsError as exc:
            return Outcome(client.log.lines, str(exc))
        return Outcome(client.log.lines, None)


# --- uploader -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "fatal", "calls"),
    [(413, "too large", 1), (403, "permission denied", 1), (400, "upload failed with no response from coordinator", 3)],
)
async def test_upload_call_counts(failures: FailureServer, workdir: Path, status: int, fatal: str, calls: int) -> None:
    failures.on(reply(status, b'{"message":"duplicate variables"}', **JSON))
    sleep = Recorder()
    assert (await upload(failures, workdir, sleep)).fatal == fatal
    assert len(failures.calls) == calls
    assert sleep.waits == [1.0, 2.0][: calls - 1]


async def test_failed_upload_logs_the_json_message_and_retries(failures: FailureServer, workdir: Path) -> None:
    failures.on(reply(400, b'{"message":"duplicate variables"}', **JSON))
    sleep = Recorder()
    outcome = await upload(failures, workdir, sleep, version="17")
    assert outcome.fatal == "invalid argument"
    lines = outcome.lines
    warn = [line for line in lines if line.startswith("WARNING: Uploading artifacts to coordinator...")]
    assert len(warn) == 3
    assert warn[0].startswith(
        f"WARNING: Uploading artifacts to coordinator... POST {failures.url}/api/v4/jobs/10/artifacts: "
        "400 Bad Request (duplicate variables)  id=10 responseStatus=400 Bad Request status=400 token=64a1b2c3d"
    )
    assert [line for line in lines if line.startswith("WARNING: Retrying...")] == [
        "WARNING: " + "Retrying...".ljust(50 - 9) + "  context=artifacts-uploader error=invalid argument"
    ] * 2


async def test_service_unavailable_is_tried_six_times(failures: FailureServer, workdir: Path) -> None:
    failures.on(reply(503))
    sleep = Recorder()
    outcome = await upload(failures, workdir, sleep, version="17")  # no transport retry before 18.3
    assert outcome.fatal == "service unavailable"
    assert len(failures.calls) == 6
    assert sleep.waits == [1.0, 2.0, 4.0, 5.0, 5.0]


async def test_transport_retry_stacks_under_the_helper(failures: FailureServer, workdir: Path) -> None:
    failures.on(reply(503))
    sleep = Recorder()
    assert (await upload(failures, workdir, sleep)).fatal == "service unavailable"
    assert len(failures.calls) == 5 * 6
    transport = [0.1, 0.15, 0.25, 0.45]  # jittered into [0.1, 0.1 * 2**n] with rng() = 0.5
    helper = [1.0, 2.0, 4.0, 5.0, 5.0]
    assert sleep.waits == pytest.approx([w for h in helper for w in (*transport, h)] + transport)
    failures.on(reply(500))
    sleep = Recorder()
    outcome = await upload(failures, workdir, sleep)
    assert outcome.fatal == "upload failed with no response from coordinator"
    assert len(failures.calls) == 5 * 3
    assert sum(line.startswith("Waiting before making the next call") for line in outcome.lines) == 4 * 3


async def test_retry_after_and_ratelimit_reset_set_the_wait(failures: FailureServer, workdir: Path) -> None:
    async def handler(seen: Seen, n: int) -> tuple[int, dict[str, str], bytes]:
        if n == 1:
            return 429, {"Retry-After": "7"}, b""
        if n == 2:
            return 429, {"RateLimit-ResetTime": formatdate(10**10, usegmt=True), "Retry-After": "7"}, b""
        return 201, {}, b"201"

    failures.on(handler)
    sleep = Recorder()
    assert (await upload(failures, workdir, sleep)).lines[-1].startswith("Uploading artifacts to coordinator... 201")
    assert sleep.waits[0] == 7.0 and sleep.waits[1] > 10**9
    assert len(sleep.waits) == 2


async def test_redirect_re_sends_the_whole_body(failures: FailureServer, workdir: Path) -> None:
    async def handler(seen: Seen, n: int) -> tuple[int, dict[str, str], bytes]:
        if seen.path == "/api/v4/jobs/10/artifacts":
            return 307, {"Location": "/new-location?x=1"}, b""
        return 201, {}, b"201"

    failures.on(handler)
    sleep = Recorder()
    lines = (
        await upload(failures, workdir, sleep, artifact_type="archive", expire_in="1 week", artifact_format="zip")
    ).lines
    first, second = failures.calls
    assert first.query == "artifact_format=zip&artifact_type=archive&expire_in=1+week"
    assert second.path == "/new-location" and second.headers["job-token"] == TOKEN
    assert first.body == second.body and b'filename="artifacts.zip"' in first.body
    assert first.headers["transfer-encoding"] == "chunked" and "content-length" not in first.headers
    assert lines[-1].startswith('Uploading artifacts as "archive" to coordinator... 201 Created  ')


async def test_redirect_without_location_is_a_failure(failures: FailureServer, workdir: Path) -> None:
    failures.on(reply(307))
    sleep = Recorder()
    outcome = await upload(failures, workdir, sleep, version="17")
    assert outcome.fatal == "invalid argument" and len(failures.calls) == 3
    assert any("307 Temporary Redirect empty location" in line for line in outcome.lines)


async def test_wire_format_of_one_upload(failures: FailureServer, workdir: Path) -> None:
    failures.on(reply(201, b"201"))
    sleep = Recorder()
    (workdir / "junit.xml").write_text("<testsuites/>")
    async with make_client(failures.url, sleep) as client:
        assert (
            await client.upload(
                10,
                TOKEN,
                ["junit.xml"],
                workdir=workdir,
                artifact_format="gzip",
                artifact_type="junit",
                name="junit.xml",
            )
            is UploadState.SUCCEEDED
        )
        assert await client.upload(10, TOKEN, ["out/a.txt"], workdir=workdir, name="my-release", artifact_format="raw")
        assert await client.upload(10, TOKEN, ["out"], workdir=workdir, name="")
    gz, raw, default = failures.calls
    assert gz.query == "artifact_format=gzip&artifact_type=junit"
    boundary = gz.headers["content-type"].removeprefix("multipart/form-data; boundary=")
    assert len(boundary) == 60
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="junit.xml.gz"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    assert gz.body.startswith(head) and gz.body.endswith(f"\r\n--{boundary}--\r\n".encode())
    import gzip as gzip_module

    assert gzip_module.decompress(gz.body[len(head) : -len(boundary) - 8]) == b"<testsuites/>"
    assert b'filename="my-release"' in raw.body and b"\r\n\r\nartifact\r\n" in raw.body
    assert raw.query == "artifact_format=raw"
    assert b'filename="default.zip"' in default.body and default.query == ""
    assert gz.headers["user-agent"].startswith("gitlab-runner 19.4.0 (")
    assert len(gz.headers["x-request-id"]) == 32


# --- downloader -----------------------------------------------------------------------------------


async def download(failures: FailureServer, target: Path, sleep: Recorder, version: str = "19", **kw) -> Outcome:  # noqa: ANN003
    async with make_client(failures.url, sleep, runner_version=version, **kw.pop("client", {})) as client:
        try:
            await client.download(10, TOKEN, target_dir=target, **kw)
        except ArtifactsError as exc:
            return Outcome(client.log.lines, str(exc))
        return Outcome(client.log.lines, None)


@pytest.mark.parametrize(
    ("status", "fatal", "calls"),
    [
        (404, "file does not exist", 1),
        (403, "permission denied", 1),
        (401, "permission denied", 1),
        (400, "invalid argument", 3),
    ],
)
@pytest.mark.parametrize("version", ["17", "19"])
async def test_download_call_counts(
    failures: FailureServer, tmp_path: Path, status: int, fatal: str, calls: int, version: str
) -> None:
    failures.on(reply(status, b'{"message":"404 Not Found"}', **JSON))
    sleep = Recorder()
    assert (await download(failures, tmp_path, sleep, version)).fatal == fatal
    assert len(failures.calls) == calls
    assert sleep.waits == [1.0] * (calls - 1)
    assert [c.query for c in failures.calls] == ["direct_download=true"] + [""] * (calls - 1)
    assert all(c.path == "/api/v4/jobs/10/artifacts" and c.headers["job-token"] == TOKEN for c in failures.calls)


async def test_direct_download_flag_off_and_retry_flags(failures: FailureServer, tmp_path: Path) -> None:
    failures.on(reply(400))
    sleep = Recorder()
    outcome = await download(failures, tmp_path, sleep, "17", direct_download=False, retry=4, retry_time=0.25)
    assert outcome.fatal == "invalid argument"
    assert [c.query for c in failures.calls] == [""] * 5
    assert sleep.waits == [0.25] * 4
    lines = [line for line in outcome.lines if "Retrying" in line]
    assert lines == ["WARNING: " + "Retrying...".ljust(41) + "  error=invalid argument"] * 4


async def test_object_storage_xml_403_is_reported(failures: FailureServer, tmp_path: Path) -> None:
    xml = b"<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"

    async def handler(seen: Seen, n: int) -> tuple[int, dict[str, str], bytes]:
        if seen.path == "/api/v4/jobs/10/artifacts":
            return 302, {"Location": "/bucket/object?X-Amz-Signature=x"}, b""
        return 403, {"Content-Type": "application/xml"}, xml

    failures.on(handler)
    sleep = Recorder()
    outcome = await download(failures, tmp_path, sleep, "17")
    assert outcome.fatal == "permission denied"
    assert len(failures.calls) == 2  # coordinator, then object storage; not retried
    lines = outcome.lines
    assert (
        lines[0].startswith("ERROR: Downloading artifacts from coordinator... forbidden  host=127.0.0.1:")
        and "status=403 Forbidden (AccessDenied: Request has expired) token=64a1b2c3d" in lines[0]
    )


async def test_19_direct_flow_asks_the_coordinator_twice(failures: FailureServer, tmp_path: Path) -> None:
    archive = zip_bytes()

    async def handler(seen: Seen, n: int) -> tuple[int, dict[str, str], bytes]:
        if seen.path == "/api/v4/jobs/10/artifacts":
            return 302, {"Location": "/object/store?sig=1"}, b""
        return 200, {}, archive

    failures.on(handler)
    sleep = Recorder()
    lines = (await download(failures, tmp_path, sleep)).lines
    assert failures.paths() == [
        "GET /api/v4/jobs/10/artifacts?direct_download=true",
        "GET /api/v4/jobs/10/artifacts?direct_download=true",
        "GET /object/store?sig=1",
    ]
    first, second, storage = failures.calls
    assert first.headers["user-agent"] == "Go-http-client/1.1" and second.headers["user-agent"].startswith(
        "gitlab-runner"
    )
    assert storage.headers["job-token"] == TOKEN  # Go forwards it across the redirect
    assert (tmp_path / "dep" / "file.txt").read_text() == "from the dependency"
    ok = lines[-1]
    assert ok.startswith("Downloading artifacts from coordinator... ok") and "status=302" in ok and "host=" not in ok


async def test_classic_flow_follows_the_redirect_once(failures: FailureServer, tmp_path: Path) -> None:
    archive = zip_bytes()

    async def handler(seen: Seen, n: int) -> tuple[int, dict[str, str], bytes]:
        if seen.path == "/api/v4/jobs/10/artifacts":
            return 302, {"Location": "/object/store"}, b""
        return 200, {}, archive

    failures.on(handler)
    lines = (await download(failures, tmp_path, Recorder(), "17")).lines
    assert failures.paths() == ["GET /api/v4/jobs/10/artifacts?direct_download=true", "GET /object/store?"]
    assert lines[-1].startswith("Downloading artifacts from coordinator... ok        host=127.0.0.1:")
    assert "responseStatus=200 OK" in lines[-1]


async def test_parallel_ranged_download(failures: FailureServer, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("big.bin", bytes(range(256)) * (150_000))  # ~38 MiB: three 16 MiB ranges
    archive = buf.getvalue()

    async def handler(seen: Seen, n: int) -> tuple[int, dict[str, str], bytes]:
        if seen.path == "/api/v4/jobs/10/artifacts":
            return 302, {"Location": "/object"}, b""
        start, end = (int(x) for x in seen.headers["range"].removeprefix("bytes=").split("-"))
        end = min(end, len(archive) - 1)
        return 206, {"Content-Range": f"bytes {start}-{end}/{len(archive)}"}, archive[start : end + 1]

    failures.on(handler)
    assert (await download(failures, tmp_path, Recorder(), client={"parallel_transfer": True})).fatal is None
    ranges = sorted(c.headers["range"] for c in failures.calls if c.path == "/object")
    assert ranges == sorted(
        ["bytes=0-0", "bytes=0-16777215", "bytes=16777216-33554431", f"bytes=33554432-{len(archive) - 1}"]
    )
    assert all("job-token" not in c.headers for c in failures.calls if c.path == "/object")
    assert (tmp_path / "big.bin").read_bytes() == bytes(range(256)) * 150_000
