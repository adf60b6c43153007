"""Turn Rails' authorize answer into upload options (GitLab's preparer and UploadOpts)."""

from dataclasses import dataclass, field
from typing import Any

DEFAULT_TIMEOUT = 4 * 3600.0  # what Workhorse uses when RemoteObject.Timeout is 0


class PrepareError(Exception):
    """The authorize answer cannot drive an upload (a Rails bug: 500)."""


@dataclass(frozen=True)
class S3Config:
    bucket: str
    region: str
    endpoint: str
    path_style: bool


@dataclass(frozen=True)
class UploadOpts:
    """Where the file part goes and how big it may get."""

    local_temp_path: str = ""
    remote_id: str = ""
    remote_url: str = ""
    store_url: str = ""
    delete_url: str = ""
    put_headers: dict[str, str] = field(default_factory=dict)
    skip_delete: bool = False
    timeout: float = DEFAULT_TIMEOUT
    maximum_size: int = 0
    remote_temp_object_id: str = ""
    s3: S3Config | None = None

    @property
    def is_local(self) -> bool:
        return not self.remote_id


def prepare(answer: dict[str, Any], has_s3_credentials: bool) -> UploadOpts:
    """Exactly one of TempPath or RemoteObject.ID must be set; UseWorkhorseClient needs our S3 creds."""
    remote = answer.get("RemoteObject") or {}
    temp_path = answer.get("TempPath") or ""
    if bool(temp_path) == bool(remote.get("ID")):
        raise PrepareError("exactly one of TempPath or RemoteObject.ID must be set")
    maximum_size = int(answer.get("MaximumSize") or 0)
    if temp_path:
        return UploadOpts(local_temp_path=temp_path, maximum_size=maximum_size)
    put_headers = dict(remote.get("PutHeaders") or {})
    if not remote.get("CustomPutHeaders"):
        put_headers = {"Content-Type": "application/octet-stream"}
    storage = remote.get("ObjectStorage") or {}
    s3_config = storage.get("S3Config") or {}
    s3 = None
    if (
        remote.get("UseWorkhorseClient")
        and storage.get("Provider") == "AWS"
        and s3_config.get("Bucket")
        and has_s3_credentials
    ):
        s3 = S3Config(
            bucket=s3_config["Bucket"],
            region=s3_config.get("Region") or "",
            endpoint=s3_config.get("Endpoint") or "",
            path_style=bool(s3_config.get("PathStyle")),
        )
    return UploadOpts(
        remote_id=remote["ID"],
        remote_url=remote.get("GetURL") or "",
        store_url=remote.get("StoreURL") or "",
        delete_url=remote.get("DeleteURL") or "",
        put_headers=put_headers,
        skip_delete=bool(remote.get("SkipDelete")),
        timeout=float(remote.get("Timeout") or DEFAULT_TIMEOUT),
        maximum_size=maximum_size,
        remote_temp_object_id=remote.get("RemoteTempObjectID") or "",
        s3=s3,
    )
