"""Archives on both ends of the wire.

Creating: zip (default), gzip (one gzip member per file, gitlab-runner's layout), tar.zst and
raw (one file as it is), written by a worker thread into a bounded queue that the request body
reads, so an archive of any size streams with a few MiB in memory. Each iteration of the body
re-creates the archive, which is what lets retries and 307/308 redirects send it again.

Extracting: by magic number, like the runner (``28 B5 2F FD`` tar.zst, ``1F 8B`` gzip, anything
else zip), refusing entries and links that would land outside the target directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import queue
import shutil
import stat
import struct
import tarfile
import threading
import time
import zipfile
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO

import zstandard

from runner_client.files import FileSet
from runner_client.log import RunnerLog

CHUNK = 1 << 20
FORMATS = ("zip", "gzip", "raw", "tarzstd")
#: ``--compression-level`` names mapped to zlib levels (Go's flate levels for the same words).
COMPRESSION_LEVELS = {"fastest": 1, "fast": 3, "default": 6, "slow": 7, "slowest": 9}


class ArchiveError(Exception):
    pass


def artifact_filename(name: str | None, fmt: str) -> str:
    """The multipart filename: ``Base(--name)`` (``default`` for empty or ``.``) plus the format's suffix."""
    base = os.path.basename((name or "").rstrip("/")) if name else ""
    if base in ("", "."):
        base = "default"
    suffix = {"zip": ".zip", "zipzstd": ".zip", "gzip": ".gz", "tarzstd": ".tar.zst"}.get(fmt, "")
    return base + suffix


# --- creating ---------------------------------------------------------------------------------


class _Stopped(Exception):
    pass


class _QueueWriter(io.RawIOBase):
    """A write-only, unseekable file that hands 1 MiB pieces to a bounded queue."""

    def __init__(self, out: queue.Queue, stop: threading.Event) -> None:
        self.out, self.stop, self.buf = out, stop, bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.buf += data
        if len(self.buf) >= CHUNK:
            self.push()
        return len(data)

    def push(self) -> None:
        if self.buf:
            put(self.out, bytes(self.buf), self.stop)
            self.buf.clear()


def put(out: queue.Queue, item: object, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stopped
        try:
            out.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


async def threaded_stream(write: Callable[[BinaryIO], None]) -> AsyncIterator[bytes]:
    """Run ``write(file)`` in a thread and yield what it writes, at most 4 MiB ahead of the reader."""
    out: queue.Queue = queue.Queue(maxsize=4)
    stop = threading.Event()
    done = object()

    def run() -> None:
        sink = _QueueWriter(out, stop)
        try:
            write(sink)  # type: ignore[arg-type]
            sink.push()
            put(out, done, stop)
        except _Stopped:
            pass
        except Exception as exc:  # handed to the reader, which fails the request with it
            with contextlib.suppress(_Stopped):
                put(out, exc, stop)

    thread = threading.Thread(target=run, name="runner-client-archiver", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = await asyncio.to_thread(out.get, True, 0.5)
            except queue.Empty:
                continue
            if item is done:
                return
            if isinstance(item, Exception):
                raise ArchiveError(str(item)) from item
            yield item
    finally:
        stop.set()


def _zip(files: FileSet, level: int) -> Callable[[BinaryIO], None]:
    def write(sink: BinaryIO) -> None:
        with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED, compresslevel=level, strict_timestamps=False) as zf:
            for rel in files.sorted():
                info = files.files[rel]
                full = files.wd / rel
                date = time.localtime(info.st_mtime)[:6]
                if stat.S_ISDIR(info.st_mode):
                    entry = zipfile.ZipInfo(rel + "/", date)
                    entry.external_attr = (info.st_mode & 0xFFFF) << 16 | 0x10
                    zf.writestr(entry, b"")
                elif stat.S_ISLNK(info.st_mode):
                    entry = zipfile.ZipInfo(rel, date)
                    entry.external_attr = (info.st_mode & 0xFFFF) << 16
                    zf.writestr(entry, os.readlink(full).encode())
                elif stat.S_ISREG(info.st_mode):
                    entry = zipfile.ZipInfo(rel, date)
                    entry.external_attr = (info.st_mode & 0xFFFF) << 16
                    entry.compress_type = zipfile.ZIP_DEFLATED
                    entry.file_size = info.st_size
                    with open(full, "rb") as src, zf.open(entry, "w") as dst:
                        shutil.copyfileobj(src, dst, CHUNK)

    return write


def gzip_member_header(name: str, comment: str, mtime: float) -> bytes:
    """Go's gzip header with ``Name`` (base name) and ``Comment`` (path): FNAME|FCOMMENT, OS unknown."""
    return (
        b"\x1f\x8b\x08\x18"
        + struct.pack("<I", int(mtime) & 0xFFFFFFFF)
        + b"\x00\xff"
        + name.encode("latin-1", "replace")
        + b"\x00"
        + comment.encode("latin-1", "replace")
        + b"\x00"
    )


def _gzip(files: FileSet, level: int) -> Callable[[BinaryIO], None]:
    def write(sink: BinaryIO) -> None:
        for rel in files.sorted():
            info = files.files[rel]
            if not stat.S_ISREG(info.st_mode):
                raise ArchiveError(f'the "{rel}" is not a regular file')
            sink.write(gzip_member_header(posixpath_base(rel), rel, info.st_mtime))
            deflate, crc, size = zlib.compressobj(level, zlib.DEFLATED, -15), 0, 0
            with open(files.wd / rel, "rb") as src:
                while block := src.read(CHUNK):
                    crc, size = zlib.crc32(block, crc), size + len(block)
                    sink.write(deflate.compress(block))
            sink.write(deflate.flush() + struct.pack("<II", crc, size & 0xFFFFFFFF))

    return write


def posixpath_base(rel: str) -> str:
    return rel.rsplit("/", 1)[-1]


def _raw(files: FileSet) -> Callable[[BinaryIO], None]:
    def write(sink: BinaryIO) -> None:
        if len(files.files) > 1:
            raise ArchiveError("only one file can be sent as raw")
        for rel in files.sorted():
            with open(files.wd / rel, "rb") as src:
                shutil.copyfileobj(src, sink, CHUNK)

    return write


def _tarzstd(files: FileSet, level: int) -> Callable[[BinaryIO], None]:
    def write(sink: BinaryIO) -> None:
        with (
            zstandard.ZstdCompressor(level=max(1, level // 2)).stream_writer(sink, closefd=False) as zst,
            tarfile.open(fileobj=zst, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            for rel in files.sorted():
                tar.add(files.wd / rel, arcname=rel, recursive=False)

    return write


def archive_writer(fmt: str, files: FileSet, compression_level: str | None = None) -> Callable[[BinaryIO], None]:
    level = COMPRESSION_LEVELS.get(compression_level or "default", 6)
    if fmt == "zip":
        return _zip(files, level)
    if fmt == "gzip":
        return _gzip(files, level)
    if fmt == "raw":
        return _raw(files)
    if fmt == "tarzstd":
        return _tarzstd(files, level)
    raise ArchiveError(f"unsupported archive format: {fmt}")


# --- extracting -------------------------------------------------------------------------------


def sniff(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"\x28\xb5\x2f\xfd":
        return "tarzstd"
    if magic[:2] == b"\x1f\x8b":
        return "gzip"
    return "zip"


def safe_target(root: Path, name: str) -> Path | None:
    """Where ``name`` lands under ``root``, or None if it (or a symlink on the way) leaves it."""
    name = name.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    target = Path(os.path.normpath(root / name))
    if not target.is_relative_to(root):
        return None
    parent = Path(os.path.realpath(target.parent))
    return target if parent.is_relative_to(Path(os.path.realpath(root))) else None


def _link_ok(root: Path, target: Path, link: str) -> bool:
    resolved = Path(os.path.normpath(target.parent / link))
    return not os.path.isabs(link) and resolved.is_relative_to(root)


def _replace(target: Path) -> None:
    if target.is_symlink() or target.is_file():
        target.unlink()


def _extract_zip(path: Path, root: Path, log: RunnerLog) -> None:
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            target = safe_target(root, info.filename)
            if target is None:
                log.warning(f"{info.filename}: path is outside of the target directory, skipped")
                continue
            mode = info.external_attr >> 16
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            _replace(target)
            if stat.S_ISLNK(mode):
                link = zf.read(info).decode()
                if not _link_ok(root, target, link):
                    log.warning(f"{info.filename}: symlink points outside of the target directory, skipped")
                    continue
                os.symlink(link, target)
                continue
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
            if mode & 0o777:
                os.chmod(target, mode & 0o777)
            os.utime(target, (time.mktime((*info.date_time, 0, 0, -1)),) * 2)


def _read_cstring(f: BinaryIO) -> bytes:
    out = bytearray()
    while (c := f.read(1)) not in (b"", b"\x00"):
        out += c
    return bytes(out)


def _extract_gzip(path: Path, root: Path, log: RunnerLog) -> None:
    """Each member becomes the file its header names (comment = path, else name), as the
    uploader's gzip layout writes them."""
    with open(path, "rb") as f:
        pending = b""
        while True:
            head = pending[:10] + f.read(max(0, 10 - len(pending)))
            pending = pending[10:]
            if len(head) < 10:
                return
            if head[:3] != b"\x1f\x8b\x08":
                raise ArchiveError("gzip: invalid header")
            flags = head[3]
            reader = _Prefixed(pending, f)
            if flags & 0x04:
                (xlen,) = struct.unpack("<H", reader.read(2))
                reader.read(xlen)
            name = _read_cstring(reader).decode("latin-1") if flags & 0x08 else ""
            comment = _read_cstring(reader).decode("latin-1") if flags & 0x10 else ""
            if flags & 0x02:
                reader.read(2)
            member = comment or name or path.stem
            target = safe_target(root, member)
            if target is None:
                log.warning(f"{member}: path is outside of the target directory, skipped")
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                _replace(target)
            inflate = zlib.decompressobj(-15)
            with open(target, "wb") if target is not None else open(os.devnull, "wb") as dst:
                while not inflate.eof:
                    block = reader.read(CHUNK)
                    if not block:
                        raise ArchiveError("gzip: unexpected EOF")
                    dst.write(inflate.decompress(block))
            pending = inflate.unused_data[8:]  # skip CRC32 and ISIZE
            if len(inflate.unused_data) < 8:
                f.read(8 - len(inflate.unused_data))


class _Prefixed:
    """A reader that first returns ``prefix``, then reads ``f``."""

    def __init__(self, prefix: bytes, f: BinaryIO) -> None:
        self.prefix, self.f = prefix, f

    def read(self, n: int) -> bytes:
        if self.prefix:
            out, self.prefix = self.prefix[:n], self.prefix[n:]
            return out
        return self.f.read(n)


def _extract_tarzstd(path: Path, root: Path, log: RunnerLog) -> None:
    with (
        open(path, "rb") as raw,
        zstandard.ZstdDecompressor().stream_reader(raw) as zst,
        tarfile.open(fileobj=zst, mode="r|") as tar,
    ):
        for member in tar:
            try:
                tar.extract(member, root, filter="data")
            except tarfile.FilterError as exc:
                log.warning(f"{member.name}: {exc}, skipped")


def extract(path: str | os.PathLike[str], target_dir: str | os.PathLike[str], log: RunnerLog) -> str:
    """Extract the archive at ``path`` into ``target_dir``; returns the format found."""
    root = Path(os.path.realpath(target_dir))
    root.mkdir(parents=True, exist_ok=True)
    fmt = sniff(path)
    try:
        {"zip": _extract_zip, "gzip": _extract_gzip, "tarzstd": _extract_tarzstd}[fmt](Path(path), root, log)
    except (zipfile.BadZipFile, tarfile.TarError, zstandard.ZstdError, zlib.error, struct.error) as exc:
        raise ArchiveError(str(exc)) from exc
    return fmt
