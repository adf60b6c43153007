"""Request bodies and artifacts for Workhorse tests."""

import calendar
import gzip
import hashlib
import io
import json
import time
import zipfile
from collections.abc import Iterator

from tests.workhorse.stub_rails import JOB_TOKEN

BOUNDARY = "runnerboundary1234"
UPLOAD_PATH = "/api/v4/jobs/42/artifacts"
HEADERS = {"JOB-TOKEN": JOB_TOKEN, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = BOUNDARY) -> bytes:
    """Encode (name, filename or None, content) parts as the runner does."""
    out = io.BytesIO()
    for name, filename, content in parts:
        out.write(f"--{boundary}\r\n".encode())
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out.write(f"Content-Disposition: {disposition}\r\n".encode())
        if filename:
            out.write(b"Content-Type: application/octet-stream\r\n")
        out.write(b"\r\n" + content + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue()


def file_body(content: bytes, filename: str = "artifacts.zip") -> bytes:
    return multipart([("file", filename, content)])


def chunked(data: bytes, size: int = 65536) -> Iterator[bytes]:
    """A generator body: httpx sends it with Transfer-Encoding: chunked, like the runner."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def make_zip(extra_size: int = 0) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("build/out/app.bin", b"A" * 5000 + bytes(range(256)) * 4)
        archive.writestr("build/readme.txt", "hello <world> & co")
        info = zipfile.ZipInfo("logs/", date_time=(2024, 5, 6, 7, 8, 10))
        info.external_attr = (0o40755 << 16) | 0x10
        archive.writestr(info, b"")
        info = zipfile.ZipInfo("top.txt", date_time=(2023, 1, 2, 3, 4, 6))
        info.external_attr = 0o644 << 16
        info.comment = b"a <comment> & more"
        archive.writestr(info, b"top")
        if extra_size:
            archive.writestr("big.bin", b"\x00" * extra_size, compress_type=zipfile.ZIP_STORED)
    return out.getvalue()


def hashes(data: bytes) -> dict[str, str]:
    return {name: hashlib.new(name, data).hexdigest() for name in ("md5", "sha1", "sha256", "sha512")}


def read_metadata(gz: bytes) -> list[bytes]:
    """Split a metadata.gz into its length-prefixed records."""
    raw = gzip.decompress(gz)
    records, pos = [], 0
    while pos < len(raw):
        length = int.from_bytes(raw[pos : pos + 4], "big")
        records.append(raw[pos + 4 : pos + 4 + length])
        pos += 4 + length
    return records


def expected_metadata(data: bytes) -> list[bytes]:
    """The records GitLab would write for ``data``, computed independently with zipfile."""
    entries: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            fields = {
                "modified": calendar.timegm((*info.date_time, 0, 0, 0)),
                "mode": format((info.external_attr >> 16) & 0o777, "o"),
                "crc": info.CRC,
                "size": info.file_size,
                "zipped": info.compress_size,
                "comment": info.comment.decode(),
            }
            text = json.dumps({k: v for k, v in fields.items() if v}, separators=(",", ":"))
            text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            entries[info.filename] = text.encode() + b"\n"
            parts = info.filename.rstrip("/").split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                entries.setdefault("/".join(parts[:depth]) + "/", b"{}\n")
    records = [b"GitLab Build Artifacts Metadata 0.0.2\n", b"{}"]
    for name in sorted(entries):
        records += [name.encode(), entries[name]]
    return records


def eventually(check, timeout: float = 3.0) -> None:
    """Cleanup runs once the response is out (as in Workhorse), so poll briefly for it."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
