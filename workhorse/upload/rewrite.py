"""Read the client's multipart, save its file part, and build the form Rails gets instead.

File parts become ``file.name``, ``file.path``, ... fields; other fields pass through as
they came. The result is small (fields only) and is sent to Rails in one piece.
"""

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from workhorse.upload.destination import open_destination
from workhorse.upload.destination.upload import SavedFile, Upload
from workhorse.upload.multipart import PartData, PartEnd, PartStart, events
from workhorse.upload.preparer import UploadOpts
from workhorse.upstream import State

MAX_FILES = 10
RESERVED_PREFIXES = ("file.", "metadata.")


class InjectedClientParam(Exception):
    """The client sent a field Workhorse writes itself (400)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"injected client parameter: {name}")


class TooManyFiles(Exception):
    def __init__(self) -> None:
        super().__init__(f"upload request contains more than {MAX_FILES} files")


class BadFilePart(Exception):
    """A file part the artifacts endpoint cannot take (GitLab answers 500)."""


@dataclass
class Form:
    """The rewritten request: pass-through parts, Workhorse's fields and the files behind them."""

    parts: list[tuple[list[tuple[str, str]], bytes]] = field(default_factory=list)
    saved: dict[str, SavedFile] = field(default_factory=dict)
    uploads: list[Upload] = field(default_factory=list)
    committed: bool = False  # Rails accepted the upload: the stored object is its now

    def add_file(self, name: str, saved: SavedFile, key: bytes) -> None:
        self.saved[name] = saved
        for field_name, value in saved.fields(name, key):
            disposition = f'form-data; name="{field_name}"'
            self.parts.append(([("Content-Disposition", disposition)], value.encode()))

    def encode(self) -> tuple[str, bytes]:
        """``(content type, body)`` of the rewritten multipart."""
        boundary = uuid.uuid4().hex
        body = bytearray()
        for headers, value in self.parts:
            body += f"--{boundary}\r\n".encode()
            for name, header_value in headers:
                body += f"{name}: {header_value}\r\n".encode()
            body += b"\r\n" + value + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        return f"multipart/form-data; boundary={boundary}", bytes(body)


def _check_filename(filename: str) -> str:
    base = os.path.basename(filename.replace("\\", "/")) or filename
    if base in (".", "..") or "/" in base:
        raise BadFilePart(f"illegal filename: {filename!r}")
    return base


async def rewrite(
    state: State,
    body: AsyncIterator[bytes],
    boundary: bytes,
    opts: UploadOpts,
    form: Form,
    on_saved: Callable[[SavedFile], Awaitable[None]],
) -> None:
    """Consume the whole body into ``form``; ``on_saved`` runs once the ``file`` part is stored."""
    upload: Upload | None = None
    value: bytearray | None = None
    headers: list[tuple[str, str]] = []
    file_parts = 0
    extra_files = 0
    async for event in events(body, boundary):
        if isinstance(event, PartData):
            if upload is not None:
                await upload.feed(event.data)
            elif value is not None:
                value += event.data
        elif isinstance(event, PartStart):
            name = event.name
            if name.startswith(RESERVED_PREFIXES):
                raise InjectedClientParam(name)
            if not event.filename:
                headers, value = event.headers, (bytearray() if name else None)
                continue
            file_parts += 1
            if file_parts > MAX_FILES:
                raise TooManyFiles()
            if name != "file":
                raise BadFilePart(f"invalid form field: {name!r}")
            if file_parts > 1:
                extra_files += 1  # drained; refused once the body is read
                continue
            filename = _check_filename(event.filename)
            upload = Upload(state, await open_destination(state, opts), opts, filename)
            form.uploads.append(upload)
        elif isinstance(event, PartEnd):
            if upload is not None:
                saved = await upload.finish()
                form.add_file("file", saved, state.key)
                upload = None
                await on_saved(saved)
            elif value is not None:
                form.parts.append((headers, bytes(value)))
            value = None
    if extra_files:
        raise BadFilePart("artifacts request contains more than one file")
