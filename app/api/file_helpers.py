"""``present_carrierwave_file!``: how Rails answers an artifact download.

Local file -> ``X-Sendfile`` (or the bytes when no Workhorse asked for sendfile);
object storage with ``direct_download`` and no ``proxy_download`` -> 302 to a presigned
URL; otherwise 200 with ``Gitlab-Workhorse-Send-Data: send-url:...``.
"""

from __future__ import annotations

import base64
import json

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from app.errors import not_found
from app.instrumentation import note_step
from app.models import JobArtifact
from app.state import AppState, get_state
from app.uploaders.job_artifact_uploader import artifact_key, content_disposition
from app.workhorse_api import SEND_DATA_HEADER

DOWNLOAD_URL_EXPIRATION = 600
DETECT_CONTENT_TYPE_HEADER = "Gitlab-Workhorse-Detect-Content-Type"


def _send_data(kind: str, params: dict[str, object]) -> str:
    """``Gitlab::Workhorse#encode``: URL-safe base64 of Ruby's compact JSON, after ``<kind>:``."""
    return f"{kind}:{base64.urlsafe_b64encode(json.dumps(params, separators=(',', ':')).encode()).decode()}"


def send_url_header(url: str, response_headers: dict[str, str] | None = None) -> str:
    """``Gitlab::Workhorse.send_url`` with the newest key set and Ruby's compact JSON."""
    params = {
        "URL": url,
        "AllowRedirects": False,
        "AllowLocalhost": True,
        "AllowedEndpoints": [],
        "SSRFFilter": False,
        "Body": "",
        "Header": {},
        "ResponseHeaders": {k: [v] for k, v in (response_headers or {}).items()},
        "Method": "GET",
    }
    return _send_data("send-url", params)


async def present_artifact(request: Request, artifact: JobArtifact | None, *, direct_download: bool) -> Response:
    """Workhorse asks for X-Sendfile with ``X-Sendfile-Type``; a HEAD gets a HEAD-signed URL."""
    if artifact is None:
        raise not_found()
    state = get_state(request)
    sendfile = request.headers.get("x-sendfile-type") == "X-Sendfile"
    head = request.method == "HEAD"
    key = artifact_key(artifact)
    store = state.store
    if state.settings.check_object_exists and await store.head(key) is None:
        note_step("Does the object exist? no")
        raise not_found()
    filename = artifact.file or "artifacts.zip"
    if not store.remote:
        headers = {
            "Content-Disposition": content_disposition(filename),
            "Content-Transfer-Encoding": "binary",
        }
        if sendfile:
            headers["X-Sendfile"] = str(store.path(key))
            note_step("Send X-Sendfile with the local path")
            return Response(b"", headers=headers, media_type="application/octet-stream")
        return StreamingResponse(store.iter_range(key), headers=headers, media_type="application/octet-stream")
    if direct_download and not state.settings.object_store.proxy_download:
        method = "HEAD" if head else "GET"
        url = state.instrument.direct_download_url(
            request, method, key, DOWNLOAD_URL_EXPIRATION
        ) or await store.presigned_url(method, key, DOWNLOAD_URL_EXPIRATION)
        note_step("Send 302 redirect to object storage presigned URL")
        return Response(
            f"This resource has been moved temporarily to {url}.",
            status_code=302,
            headers={"Location": url},
            media_type="text/plain",
        )
    url = await store.presigned_url("GET", key, DOWNLOAD_URL_EXPIRATION)
    note_step("SendURL with object storage presigned URL")
    return Response(b"", headers={SEND_DATA_HEADER: send_url_header(url)}, media_type="application/json")


def _encode64(data: bytes) -> str:
    """Ruby's ``Base64.encode64``: lines of 60 characters, each ending in a newline."""
    encoded = base64.b64encode(data).decode()
    return "".join(encoded[i : i + 60] + "\n" for i in range(0, len(encoded), 60))


async def send_artifacts_entry(
    state: AppState, artifact: JobArtifact, entry: str, *, detect_content_type: bool = False
) -> Response:
    """``send_artifacts_entry``: Workhorse opens the archive (a local path, or a presigned URL it
    reads by ranges) and streams the one entry; ``detect_content_type`` asks it to sniff the
    bytes for a safe Content-Type (``Gitlab-Workhorse-Detect-Content-Type``)."""
    key = artifact_key(artifact)
    store = state.store
    archive = await store.presigned_url("GET", key, DOWNLOAD_URL_EXPIRATION) if store.remote else str(store.path(key))
    headers = {
        SEND_DATA_HEADER: _send_data("artifacts-entry", {"Archive": archive, "Entry": _encode64(entry.encode())})
    }
    if detect_content_type:
        headers[DETECT_CONTENT_TYPE_HEADER] = "true"
    note_step("SendEntry with the archive " + ("presigned URL" if store.remote else "path"))
    return Response(b"", headers=headers, media_type="application/json")
