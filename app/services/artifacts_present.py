"""``present_carrierwave_file!``: how Rails answers an artifact download.

Local file -> ``X-Sendfile`` (or the bytes when no Workhorse asked for sendfile);
object storage with ``direct_download`` and no ``proxy_download`` -> 302 to a presigned
URL; otherwise 200 with ``Gitlab-Workhorse-Send-Data: send-url:...``.
"""

from __future__ import annotations

import base64
import json

from fastapi.responses import Response, StreamingResponse

from app.errors import not_found
from app.journal import note_step
from app.models import JobArtifact
from app.services.artifact_files import artifact_key, content_disposition
from app.state import AppState
from app.workhorse_api import SEND_DATA_HEADER

DOWNLOAD_URL_EXPIRATION = 600


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
    encoded = base64.urlsafe_b64encode(json.dumps(params, separators=(",", ":")).encode()).decode()
    return f"send-url:{encoded}"


async def present_artifact(
    state: AppState, artifact: JobArtifact | None, *, direct_download: bool, sendfile: bool, head: bool = False
) -> Response:
    if artifact is None:
        raise not_found()
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
        url = await store.presigned_url("HEAD" if head else "GET", key, DOWNLOAD_URL_EXPIRATION)
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
