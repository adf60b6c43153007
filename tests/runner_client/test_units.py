"""Token masking, the log format, archives (gzip layout, path-escape protection) and the CLI."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import zstandard

from runner_client.archive import ArchiveError, artifact_filename, extract, gzip_member_header
from runner_client.cli import go_duration
from runner_client.log import RunnerLog, format_line
from runner_client.tokens import TokenRule, shorten_token
from tests.runner_client.conftest import FailureServer, Seen


@pytest.mark.parametrize(
    ("token", "rule", "short"),
    [
        ("short", TokenRule.V18_2, "short"),
        ("glcbt-64a1b2c3d4e5", TokenRule.V17_8, "glcbt-64"),
        ("glcbt-64a1b2c3d4e5", TokenRule.V17_9, "64a1b2c3d"),
        ("glcbt-64a1b2c3d4e5", TokenRule.V18_2, "64a1b2c3d"),
        ("glrt-t1_abcdefghijkl", TokenRule.V18_2, "abcdefghi"),
        ("glrt-abcdefghijkl", TokenRule.V17_8, "abcdefghi"),
        ("GR1348941abcdefghijkl", TokenRule.V17_8, "GR1348941abcdefgh"),
        ("GR1348941abcdefghijkl", TokenRule.V18_2, "abcdefghi"),
        ("glrtr-abcdefghijkl", TokenRule.V18_2, "abcdefghi"),
        ("plain-token-value", TokenRule.V18_2, "plain-tok"),
    ],
)
def test_shorten_token(token: str, rule: TokenRule, short: str) -> None:
    assert shorten_token(token, rule) == short


def test_log_line_pads_to_fifty_columns_minus_the_prefix() -> None:
    assert format_line("info", "x", {"b": 2, "a": "1 2"}) == "x" + " " * 49 + "  a=1 2 b=2"
    assert format_line("fatal", "too large", {}) == "FATAL: too large" + " " * 34 + " "
    colored = format_line("warning", "w", {"k": "v"}, color=True)
    assert colored == "\033[0;33mWARNING: w" + " " * 40 + "\033[0;m  \033[0;33mk\033[0;m=v"
    stream = io.StringIO()
    RunnerLog(stream, color=False).info("Uploading artifacts to coordinator...", "201 Created", id=1)
    assert stream.getvalue() == "Uploading artifacts to coordinator... 201 Created".ljust(50) + "  id=1\n"


@pytest.mark.parametrize(
    ("name", "fmt", "filename"),
    [
        (None, "zip", "default.zip"),
        (".", "zip", "default.zip"),
        ("a/b/junit.xml", "gzip", "junit.xml.gz"),
        ("my-release", "raw", "my-release"),
        ("artifacts", "tarzstd", "artifacts.tar.zst"),
    ],
)
def test_artifact_filename(name: str | None, fmt: str, filename: str) -> None:
    assert artifact_filename(name, fmt) == filename


def test_zip_entries_escaping_the_target_are_skipped(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escape.txt", "no")
        zf.writestr("/abs.txt", "no")
        zf.writestr("ok/fine.txt", "yes")
        link = zipfile.ZipInfo("ok/link")
        link.external_attr = (0o120777) << 16
        zf.writestr(link, "../../outside")
    target = tmp_path / "target"
    log = RunnerLog(io.StringIO(), color=False)
    assert extract(archive, target, log) == "zip"
    assert (target / "ok" / "fine.txt").read_text() == "yes"
    assert not (tmp_path / "escape.txt").exists() and not (target / "ok" / "link").exists()
    assert sum("skipped" in line for line in log.lines) == 3


def test_symlinked_directory_cannot_be_written_through(tmp_path: Path) -> None:
    outside, target = tmp_path / "outside", tmp_path / "target"
    outside.mkdir()
    target.mkdir()
    os.symlink(outside, target / "dir")
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("dir/pwned.txt", "no")
    extract(archive, target, RunnerLog(io.StringIO()))
    assert list(outside.iterdir()) == []


def test_gzip_members_become_files(tmp_path: Path) -> None:
    import zlib

    def member(name: str, comment: str, data: bytes) -> bytes:
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = deflate.compress(data) + deflate.flush()
        crc = zlib.crc32(data).to_bytes(4, "little") + len(data).to_bytes(4, "little")
        return gzip_member_header(name, comment, 0) + body + crc

    archive = tmp_path / "a.gz"
    archive.write_bytes(member("a.txt", "r/a.txt", b"A" * 5000) + member("b.txt", "../b.txt", b"B"))
    log = RunnerLog(io.StringIO())
    assert extract(archive, tmp_path / "t", log) == "gzip"
    assert (tmp_path / "t" / "r" / "a.txt").read_bytes() == b"A" * 5000
    assert not (tmp_path / "b.txt").exists()


def test_tar_zst_is_extracted_with_the_data_filter(tmp_path: Path) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in (("d/x.txt", b"x"), ("../up.txt", b"no")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = tmp_path / "a.tar.zst"
    archive.write_bytes(zstandard.ZstdCompressor().compress(raw.getvalue()))
    assert extract(archive, tmp_path / "t", RunnerLog(io.StringIO())) == "tarzstd"
    assert (tmp_path / "t" / "d" / "x.txt").read_bytes() == b"x" and not (tmp_path / "up.txt").exists()


def test_a_bad_archive_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bad").write_bytes(b"not a zip at all")
    with pytest.raises(ArchiveError):
        extract(tmp_path / "bad", tmp_path / "t", RunnerLog(io.StringIO()))


def test_go_durations() -> None:
    assert go_duration("1s") == 1 and go_duration("250ms") == 0.25 and go_duration("1m30s") == 90
    assert go_duration("2") == 2


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner_client", *args, "--progress", "off"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_cli_exit_codes_and_env(failures: FailureServer, tmp_path: Path) -> None:
    async def handler(seen: Seen, n: int) -> tuple[int, dict[str, str], bytes]:
        return (201, {}, b"201") if seen.method == "POST" else (404, {}, b"")

    failures.on(handler)
    (tmp_path / "f.txt").write_text("x")
    env = {"CI_SERVER_URL": failures.url, "CI_JOB_TOKEN": "glcbt-abcdefghijkl", "CI_JOB_ID": "7"}
    import asyncio

    nothing = await asyncio.to_thread(cli, "artifacts-uploader", "--path", "nope", cwd=tmp_path, env=env)
    assert nothing.returncode == 0 and "ERROR: No files to upload" in nothing.stderr and failures.calls == []
    ok = await asyncio.to_thread(
        cli, "artifacts-uploader", "--path", "f.txt", "--artifact-type", "archive", cwd=tmp_path, env=env
    )
    assert ok.returncode == 0, ok.stderr
    assert 'Uploading artifacts as "archive" to coordinator... 201 Created  ' in ok.stderr
    assert failures.paths() == ["POST /api/v4/jobs/7/artifacts?artifact_type=archive"]
    missing = await asyncio.to_thread(
        cli,
        "artifacts-downloader",
        "--retry-time",
        "10ms",
        cwd=tmp_path,
        env={**env, "FF_USE_DIRECT_DOWNLOAD": "false"},
    )
    assert missing.returncode == 1 and missing.stderr.splitlines()[-1] == "FATAL: file does not exist".ljust(50) + " "
    assert failures.paths()[-1] == "GET /api/v4/jobs/7/artifacts?"
    incomplete = await asyncio.to_thread(cli, "artifacts-downloader", cwd=tmp_path, env={"CI_SERVER_URL": ""})
    assert incomplete.returncode == 1 and "FATAL: Incomplete arguments" in incomplete.stderr
