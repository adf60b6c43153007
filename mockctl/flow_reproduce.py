"""Reproduce GitLab's artifact download flows against a coordinator and draw what happened.

``direct``: ``?direct_download=true`` answered 302, the redirect followed to object storage;
``proxy``: the download Workhorse serves with send-url (no ``direct_download``, as a
runner's retries ask); ``denied``: a token that is no running job's, answered 401;
``upload``: the running job's archive sent as gitlab-runner sends it (Workhorse authorizes,
stores the file, then calls Rails to finalize).
"""

from __future__ import annotations

import io
import secrets
import zipfile
from typing import Literal

import httpx

Kind = Literal["direct", "proxy", "denied", "upload"]
KINDS: tuple[Kind, ...] = ("direct", "proxy", "denied", "upload")


def scenario(name: str) -> dict:
    return {
        "users": [{"username": name}],
        "projects": [
            {
                "path": f"{name}/app",
                "pipelines": [
                    {
                        "user": name,
                        "status": "running",
                        "jobs": [
                            {
                                "name": "build",
                                "stage": "build",
                                "status": "success",
                                "artifacts": [{"file_type": "archive", "files": {"out/flow.txt": f"{name}\n"}}],
                            },
                            {"name": "test", "stage": "test", "status": "running"},
                        ],
                    }
                ],
            }
        ],
    }


async def reproduce(base_url: str, admin_token: str, kind: Kind) -> str:
    """Seed a fresh project, make the runner's request, return the Mermaid diagram."""
    name = f"flows-{secrets.token_hex(4)}"
    admin = {"PRIVATE-TOKEN": admin_token}
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        seeded = await client.post("/-/mock/seed", json=scenario(name), headers=admin)
        seeded.raise_for_status()
        jobs = {j["name"]: j for j in seeded.json()["jobs"]}
        correlation_id = f"{name}-{kind}"
        token = "glcbt-not-a-running-job" if kind == "denied" else jobs["test"]["token"]
        headers = {"JOB-TOKEN": token, "X-Request-Id": correlation_id}
        if kind == "upload":
            res = await client.post(
                f"/api/v4/jobs/{jobs['test']['id']}/artifacts?artifact_format=zip&artifact_type=archive",
                headers=headers,
                files={"file": ("artifacts.zip", _archive(name), "application/octet-stream")},
            )
        else:
            query = "?direct_download=true" if kind in ("direct", "denied") else ""
            res = await client.get(f"/api/v4/jobs/{jobs['build']['id']}/artifacts{query}", headers=headers)
        client_steps = []
        if res.status_code in (302, 307) and "location" in res.headers:
            async with httpx.AsyncClient(timeout=60) as object_storage:
                fetched = await object_storage.get(res.headers["location"])
            client_steps = [
                "C->>O: GET <presigned URL>",
                f"O-->>C: {fetched.status_code} {fetched.reason_phrase} ({len(fetched.content)} bytes)",
            ]
        drawn = await client.get(f"/-/mock/flows/{correlation_id}", headers=admin)
        drawn.raise_for_status()
    return drawn.text + "".join(f"    {step}\n" for step in client_steps)


def _archive(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("out/result.txt", f"{name}\n")
    return buffer.getvalue()
