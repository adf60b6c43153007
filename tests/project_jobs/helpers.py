"""A seeded project with pipelines, jobs and artifacts, and python-gitlab pointed at the stack.

python-gitlab is synchronous (requests): its calls run in a worker thread so the servers,
which share the test's event loop, keep answering.
"""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import Callable
from typing import Any, TypeVar

import gitlab

from tests.e2e.conftest import Stack

T = TypeVar("T")

HELLO = "Hello from mockcoord!\n"
PAGE = "<html><body><script>alert(1)</script></body></html>\n"
LOGO = '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"></svg>\n'
LATEST_FILES = {
    "out/hello.txt": HELLO,
    "out/build-info.json": '{"ref": "main", "job": "build"}',
    "out/page.html": PAGE,
    "out/logo.svg": LOGO,
    'out/odd "name".txt': "quoted\n",
}
ROLES = {"maria": "maintainer", "dev": "developer", "rita": "reporter", "gus": "guest"}
USERS = [*ROLES, "eve"]


def token(user: str) -> str:
    return f"glpat-{user}-0123456789"


def job_token(name: str) -> str:
    return f"glcbt-{name}-0123456789"


def scenario() -> dict[str, Any]:
    """``demo/app`` (private; maria maintainer, dev developer, rita reporter, gus guest; eve
    nobody) with four pipelines, and ``other/lib`` whose running job holds a job token."""
    archive = {"file_type": "archive", "expire_in": "1 week"}
    return {
        "users": [{"username": u, "token": token(u)} for u in USERS],
        "groups": [
            {"path": "demo", "members": [{"user": u, "access_level": r} for u, r in ROLES.items()]},
            {"path": "other", "members": [{"user": "dev", "access_level": "developer"}]},
        ],
        "projects": [
            {
                "path": "demo/app",
                "pipelines": [
                    {
                        "ref": "main",
                        "user": "dev",
                        "locked": "unlocked",
                        "jobs": [
                            {
                                "name": "build",
                                "stage": "build",
                                "artifacts": [{**archive, "files": {"out/hello.txt": "v1\n"}}],
                            },
                        ],
                    },
                    {
                        "ref": "main",
                        "user": "dev",
                        "jobs": [
                            {
                                "name": "build",
                                "stage": "build",
                                "tags": ["linux", "docker"],
                                "artifacts": [
                                    {**archive, "files": LATEST_FILES},
                                    {"file_type": "junit", "content": "<testsuites/>", "expire_in": "1 week"},
                                    {"file_type": "trace", "content": "job log\n", "expire_in": "1 week"},
                                ],
                            },
                            {"name": "test", "stage": "test"},
                            {"name": "lint", "stage": "test", "status": "failed"},
                            {"name": "deploy", "stage": "deploy", "status": "manual"},
                        ],
                    },
                    {
                        "ref": "main",
                        "user": "dev",
                        "status": "running",
                        "jobs": [
                            {
                                "name": "build",
                                "stage": "build",
                                "artifacts": [{**archive, "files": {"out/hello.txt": "v3\n"}}],
                            },
                            {"name": "test", "stage": "test", "status": "running", "token": job_token("demo")},
                        ],
                    },
                    {
                        "ref": "feature/x",
                        "user": "dev",
                        "jobs": [
                            {
                                "name": "build",
                                "stage": "build",
                                "artifacts": [{**archive, "files": {"out/hello.txt": "feature\n"}}],
                            },
                        ],
                    },
                ],
            },
            {
                "path": "other/lib",
                "pipelines": [
                    {
                        "user": "dev",
                        "status": "running",
                        "jobs": [{"name": "test", "status": "running", "token": job_token("other")}],
                    }
                ],
            },
        ],
    }


def jobs_by(seeded: dict[str, Any], name: str, project: str = "demo/app") -> list[dict[str, Any]]:
    """The seeded jobs of that name, oldest pipeline first."""
    return [j for j in seeded["jobs"] if j["name"] == name and j["project"] == project]


def client(stack: Stack, user: str | None = "dev") -> gitlab.Gitlab:
    return gitlab.Gitlab(url=stack.url, private_token=token(user) if user else None, per_page=None)


async def call(fn: Callable[[], T]) -> T:
    return await asyncio.to_thread(fn)


def members(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}
