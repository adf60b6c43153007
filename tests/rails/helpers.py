"""Scenario builders and a stand-in for Workhorse's side of an upload.

Rails-only tests play Workhorse here (sign the JWTs, put the bytes where authorize said)
so each Rails rule can be checked on its own; end-to-end tests go through real Workhorse.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aioboto3
import httpx

from app.config import Settings
from app.workhorse_api import MULTIPART_FIELDS_HEADER, sign
from tests.conftest import Coordinator


def zip_bytes(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buf.getvalue()


def pipeline_scenario(
    *,
    job_status: str = "running",
    visibility: str = "private",
    extra_jobs: list | None = None,
    project: dict[str, Any] | None = None,
    pipeline: dict[str, Any] | None = None,
) -> dict:
    """alice (developer) owns acme/app; its pipeline has ``build`` (with an archive) and ``test``."""
    return {
        "users": [{"username": "alice"}, {"username": "mallory"}],
        "groups": [{"path": "acme", "members": [{"user": "alice", "access_level": "developer"}]}],
        "projects": [
            {
                "path": "acme/app",
                "visibility": visibility,
                **(project or {}),
                "pipelines": [
                    {
                        "user": "alice",
                        "status": "running",
                        **(pipeline or {}),
                        "jobs": [
                            {
                                "name": "build",
                                "stage": "build",
                                "status": "success",
                                "artifacts": [{"file_type": "archive", "files": {"out/a.txt": "hello"}}],
                            },
                            {"name": "test", "stage": "test", "status": job_status},
                            *(extra_jobs or []),
                        ],
                    }
                ],
            }
        ],
    }


def job(seeded: dict, name: str) -> dict:
    return next(j for j in seeded["jobs"] if j["name"] == name)


async def authorize(
    c: Coordinator, job_id: int, token: str, query: str = "artifact_type=archive", **headers: str
) -> httpx.Response:
    return await c.client.post(
        f"/api/v4/jobs/{job_id}/artifacts/authorize?{query}",
        headers=c.workhorse_headers(**{"JOB-TOKEN": token, **headers}),
    )


async def store_like_workhorse(c: Coordinator, answer: dict, data: bytes, name: str = "artifacts.zip") -> dict:
    """Put the bytes where the authorize answer says and describe them as Workhorse does."""
    if "RemoteObject" in answer:
        remote = answer["RemoteObject"]
        async with httpx.AsyncClient() as raw:
            res = await raw.put(remote["StoreURL"], content=data)
            assert res.status_code == 200, res.text
        path, remote_id, remote_url = "", remote["ID"], remote["GetURL"]
    else:
        target = Path(answer["TempPath"]) / f"upload-{uuid.uuid4().hex}"
        target.write_bytes(data)
        path, remote_id, remote_url = str(target), "", ""
    return {
        "name": name,
        "path": path,
        "remote_id": remote_id,
        "remote_url": remote_url,
        "size": len(data),
        "md5": hashlib.md5(data).hexdigest(),
        "sha1": hashlib.sha1(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
        "sha512": hashlib.sha512(data).hexdigest(),
        "upload_duration": 0.01,
    }


def local_metadata(c: Coordinator, data: bytes) -> dict:
    target = c.settings.uploads_path / f"metadata-{uuid.uuid4().hex}.gz"
    target.write_bytes(data)
    return {
        "name": "metadata.gz",
        "path": str(target),
        "remote_id": "",
        "remote_url": "",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def rewritten_form(secret: bytes, fields: dict[str, dict]) -> tuple[dict[str, str], dict[str, str]]:
    """The multipart fields and header Workhorse sends Rails after saving the files."""
    form: dict[str, str] = {}
    for field, upload in fields.items():
        for key, value in upload.items():
            form[f"{field}.{key}"] = str(value)
        form[f"{field}.gitlab-workhorse-upload"] = sign({"upload": upload}, secret)
    header = sign({"rewritten_fields": {f: u["path"] for f, u in fields.items()}}, secret)
    return form, {MULTIPART_FIELDS_HEADER: header}


async def finalize(
    c: Coordinator,
    job_id: int,
    token: str,
    fields: dict[str, dict],
    query: str = "artifact_type=archive",
    **headers: str,
) -> httpx.Response:
    form, extra = rewritten_form(c.state.secret, fields)
    return await c.client.post(
        f"/api/v4/jobs/{job_id}/artifacts?{query}",
        files=[(k, (None, v)) for k, v in form.items()] or None,
        headers=c.workhorse_headers(**{"JOB-TOKEN": token, **extra, **headers}),
    )


async def upload(
    c: Coordinator,
    job_id: int,
    token: str,
    data: bytes,
    query: str = "artifact_type=archive",
    metadata: bytes | None = None,
) -> httpx.Response:
    res = await authorize(c, job_id, token, query)
    assert res.status_code == 200, res.text
    fields = {"file": await store_like_workhorse(c, res.json(), data)}
    if metadata is not None:
        fields["metadata"] = local_metadata(c, metadata)
    return await finalize(c, job_id, token, fields, query)


@asynccontextmanager
async def bucket_client(settings: Settings) -> AsyncIterator[Any]:
    """An S3 client of our own on the coordinator's bucket, to see what Rails does not list."""
    conn = settings.object_store.connection
    session = aioboto3.Session(
        aws_access_key_id=conn.aws_access_key_id,
        aws_secret_access_key=conn.aws_secret_access_key,
        region_name=conn.region or "us-east-1",
    )
    async with session.client("s3", endpoint_url=conn.endpoint) as client:
        yield client


async def open_multipart_keys(client: Any, settings: Settings) -> list[str]:
    listed = await client.list_multipart_uploads(Bucket=settings.object_store.artifacts_bucket)
    return sorted(u["Key"] for u in listed.get("Uploads", []))
