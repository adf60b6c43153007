"""Against the real coordinator (Workhorse + Rails, S3 and local storage): upload then
download both ways, byte for byte."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from runner_client.responses import ArtifactsError
from runner_client.upload import UploadState
from tests.e2e.conftest import Stack
from tests.rails.helpers import job, pipeline_scenario
from tests.runner_client.conftest import Recorder, make_client


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "out/report.txt": b"ok\n",
        "out/bin/app": os.urandom(700_000),
        "out/.hidden": b"dot files count too",
        "out/skip.log": b"excluded",
        "other.txt": b"not matched",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(("version", "flow"), [("19", "direct"), ("17", "classic"), ("19", "classic")])
async def test_upload_then_download_is_byte_identical(stack: Stack, tmp_path: Path, version: str, flow: str) -> None:
    seeded = await stack.rails.seed(
        pipeline_scenario(extra_jobs=[{"name": "deploy", "stage": "deploy", "status": "running"}])
    )
    test, deploy = job(seeded, "test"), job(seeded, "deploy")
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    make_tree(src)
    async with make_client(stack.url, runner_version=version, download_flow=flow) as client:
        state = await client.upload(
            test["id"],
            test["token"],
            ["out/**"],
            exclude=["out/*.log"],
            workdir=src,
            artifact_format="zip",
            artifact_type="archive",
            expire_in="1 week",
        )
        assert state is UploadState.SUCCEEDED
        await client.download(test["id"], deploy["token"], target_dir=dst)
        lines = client.log.lines
    expected = {k: v for k, v in tree(src).items() if k.startswith("out/") and not k.endswith(".log")}
    assert tree(dst) == expected
    status = "status=201" if version == "19" else "responseStatus=201 Created"
    upload_line = next(line for line in lines if line.startswith('Uploading artifacts as "archive"'))
    assert upload_line.startswith('Uploading artifacts as "archive" to coordinator... 201 Created  ')
    assert status in upload_line and f"id={test['id']}" in upload_line
    assert test["token"] not in "\n".join(lines)
    ok = next(line for line in lines if line.startswith("Downloading artifacts from coordinator... ok"))
    if flow == "direct":  # 19.x: the no-redirect request's status, no host
        assert "host=" not in ok
        if stack.rails.state.store.remote:
            assert "status=302" in ok
            assert any(line.startswith("Direct download from 127.0.0.1:") for line in lines)
        else:
            assert "status=200" in ok
    else:
        assert "host=127.0.0.1:" in ok
    # as doublestar + filepath.Walk: "out" and each match below it are walked again, so entries count twice
    assert "out/**: found 10 matching artifact files and directories" in "\n".join(lines)
    assert any(line.startswith("out/*.log: excluded 2 files") for line in lines)


async def test_gzip_and_raw_formats_reach_the_coordinator(stack: Stack, tmp_path: Path) -> None:
    seeded = await stack.rails.seed(pipeline_scenario())
    test = job(seeded, "test")
    (tmp_path / "junit.xml").write_text("<testsuites/>")
    async with make_client(stack.url) as client:
        assert (
            await client.upload(
                test["id"],
                test["token"],
                ["junit.xml"],
                workdir=tmp_path,
                artifact_format="gzip",
                artifact_type="junit",
                name="junit.xml",
            )
            is UploadState.SUCCEEDED
        )
        assert (
            await client.upload(
                test["id"],
                test["token"],
                ["junit.xml"],
                workdir=tmp_path,
                artifact_format="raw",
                artifact_type="sast",
                name="my-release",
            )
            is UploadState.SUCCEEDED
        )


async def test_no_files_to_upload_makes_no_request(stack: Stack, tmp_path: Path) -> None:
    async with make_client("http://127.0.0.1:9") as client:  # nothing listens: a request would fail
        assert await client.upload(1, "glcbt-whatever", ["missing/**"], workdir=tmp_path) is None
        lines = client.log.lines
    assert lines[-1].startswith("ERROR: No files to upload")
    assert lines[0].startswith("WARNING: missing/**: no matching files.")


async def test_coordinator_refusals_end_fatal(stack: Stack, tmp_path: Path) -> None:
    seeded = await stack.rails.seed(pipeline_scenario())
    build, test = job(seeded, "build"), job(seeded, "test")
    (tmp_path / "a.txt").write_text("a")
    sleep = Recorder()
    async with make_client(stack.url, sleep) as client:
        with pytest.raises(ArtifactsError, match="^permission denied$"):
            await client.upload(build["id"], build["token"], ["a.txt"], workdir=tmp_path, artifact_type="archive")
        with pytest.raises(ArtifactsError, match="^file does not exist$"):
            await client.download(test["id"], test["token"], target_dir=tmp_path / "x")
        with pytest.raises(ArtifactsError, match="^permission denied$"):
            await client.download(build["id"], "glcbt-not-a-token-at-all", target_dir=tmp_path / "x")
        lines = client.log.lines
    assert sleep.waits == []  # none of these is retried
    forbidden = next(line for line in lines if line.startswith('ERROR: Uploading artifacts as "archive"'))
    assert "POST " in forbidden and ": 403 Forbidden (403 Forbidden - Job is not processing on runner)" in forbidden
    assert "status=403" in forbidden


async def test_too_large_is_fatal_without_retry(stack: Stack, tmp_path: Path) -> None:
    seeded = await stack.rails.seed(pipeline_scenario(project={"max_artifacts_size": 1}))
    test = job(seeded, "test")
    (tmp_path / "big.bin").write_bytes(os.urandom((1 << 20) + 4096))
    sleep = Recorder()
    async with make_client(stack.url, sleep) as client:
        with pytest.raises(ArtifactsError, match="^too large$"):
            await client.upload(test["id"], test["token"], ["big.bin"], workdir=tmp_path, artifact_format="raw")
        lines = client.log.lines
    assert sleep.waits == []
    assert any(
        line.startswith("ERROR: Uploading artifacts to coordinator... 413 Request Entity Too Large") for line in lines
    )


async def test_uploaded_zip_is_a_real_zip(stack: Stack, tmp_path: Path) -> None:
    seeded = await stack.rails.seed(
        pipeline_scenario(extra_jobs=[{"name": "deploy", "stage": "deploy", "status": "running"}])
    )
    test, deploy = job(seeded, "test"), job(seeded, "deploy")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("x")
    async with make_client(stack.url) as client:
        await client.upload(test["id"], test["token"], ["d"], workdir=tmp_path)
    res = await stack.client.get(f"/api/v4/jobs/{test['id']}/artifacts", headers={"Job-Token": deploy["token"]})
    assert res.status_code == 200
    archive = tmp_path / "a.zip"
    archive.write_bytes(res.content)
    with zipfile.ZipFile(archive) as zf:
        assert zf.namelist() == ["d/", "d/f.txt"] and zf.read("d/f.txt") == b"x"
