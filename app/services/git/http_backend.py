"""Serve one smart-HTTP request with ``git http-backend`` (CGI), streamed both ways.

The request body goes to git's stdin as it arrives and git's stdout goes to the client as
it is written, so a pack never sits whole in memory. git itself handles what clients send:
``Content-Encoding: gzip`` bodies, chunked bodies (no ``CONTENT_LENGTH``) and protocol v2
(``Git-Protocol`` -> ``GIT_PROTOCOL``). Only upload-pack is ever enabled: the repositories
are read-only. No system or user git configuration is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from pathlib import Path

from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

log = logging.getLogger("mockcoord.git")
CHUNK = 64 * 1024
# What Gitaly sets for upload-pack (partial clone filters, fetching a pipeline's sha directly).
GIT_CONFIG = {
    "http.receivepack": "false",
    "http.getanyfile": "false",
    "uploadpack.allowFilter": "true",
    "uploadpack.allowAnySHA1InWant": "true",
}


def cgi_environment(scope: Scope, root: Path, path_info: str) -> dict[str, str]:
    headers = Headers(scope=scope)
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "GIT_PROJECT_ROOT": str(root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "HOME": str(root),
        "PATH_INFO": path_info,
        "REQUEST_METHOD": scope["method"],
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "CONTENT_TYPE": headers.get("content-type", ""),
        "REMOTE_ADDR": (scope.get("client") or ("", 0))[0],
        "GIT_CONFIG_COUNT": str(len(GIT_CONFIG)),
    }
    for i, (key, value) in enumerate(GIT_CONFIG.items()):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    for header, variable in (
        ("content-length", "CONTENT_LENGTH"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
        ("git-protocol", "GIT_PROTOCOL"),
    ):
        if value := headers.get(header):
            env[variable] = value
    return env


async def _feed(process: asyncio.subprocess.Process, receive: Receive, answered: asyncio.Event) -> None:
    """Request body -> git's stdin; afterwards, stop git if the client leaves before the
    answer is complete (uvicorn would drop the rest of it silently)."""
    assert process.stdin is not None
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            if body := message.get("body", b""):
                process.stdin.write(body)
                await process.stdin.drain()
            if not message.get("more_body", False):
                process.stdin.close()
                message = await receive()  # returns when the client disconnects or the answer is complete
                break
    except (BrokenPipeError, ConnectionResetError):
        return  # git stopped reading: its answer says why
    if not answered.is_set() and process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()


async def _cgi_head(stdout: asyncio.StreamReader) -> tuple[int, list[tuple[bytes, bytes]]] | None:
    """The CGI header block: ``Status:`` and the response headers; None if git wrote none."""
    status, headers = 200, []
    while True:
        line = (await stdout.readline()).rstrip(b"\r\n")
        if not line:
            return (status, headers) if headers or status != 200 else None
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"status":
            status = int(value.split()[0])
        else:
            headers.append((name.strip().lower(), value.strip()))


async def serve(scope: Scope, receive: Receive, send: Send, root: Path, path_info: str) -> None:
    git = shutil.which("git")
    if git is None:
        await _plain(send, 503, b"git is not installed on the coordinator")
        return
    process = await asyncio.create_subprocess_exec(
        git,
        "http-backend",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cgi_environment(scope, root, path_info),
    )
    assert process.stdout is not None and process.stderr is not None
    answered = asyncio.Event()
    feeder = asyncio.create_task(_feed(process, receive, answered))
    errors = asyncio.create_task(process.stderr.read())
    try:
        head = await _cgi_head(process.stdout)
        if head is None:
            await _plain(send, 500, b"git http-backend gave no answer")
            return
        await send({"type": "http.response.start", "status": head[0], "headers": head[1]})
        while chunk := await process.stdout.read(CHUNK):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        answered.set()
        await send({"type": "http.response.body", "body": b""})
    finally:
        feeder.cancel()
        if not answered.is_set() and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        code = await process.wait()
        stderr = (await errors).decode(errors="replace").strip()
        if stderr or (answered.is_set() and code != 0):
            log.warning("git http-backend %s exited %s: %s", path_info, code, stderr)


async def _plain(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
