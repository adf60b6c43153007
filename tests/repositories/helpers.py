"""A project with a repository, a runner to take its job, and the real git CLI to fetch it."""

from __future__ import annotations

import asyncio
import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.runner_api.helpers import RUNNER_TOKEN

FILES = {
    ".gitlab-ci.yml": "test:\n  script: [make test]\n",
    "README.md": "# app\n",
    "src/main.py": "print('hello')\n",
}
MESSAGE = "Add the app\n\nWith a README and a script.\n"
ALICE_TOKEN = "glpat-alice-token-0001"
MALLORY_TOKEN = "glpat-mallory-token-01"
DONE_TOKEN = "glcbt-finished-job-0001"
OTHER_TOKEN = "glcbt-other-project-001"


def repo_scenario(
    repository: dict[str, Any] | None = None, visibility: str = "private", ref: str = "main", **project: Any
) -> dict[str, Any]:
    """acme/app (alice developer) with a repository, a pending ``test`` job and a finished
    ``build`` job; acme/other runs a job of its own; mallory is no member."""
    return {
        "users": [{"username": "alice", "token": ALICE_TOKEN}, {"username": "mallory", "token": MALLORY_TOKEN}],
        "groups": [{"path": "acme", "members": [{"user": "alice", "access_level": "developer"}]}],
        "projects": [
            {
                "path": "acme/app",
                "visibility": visibility,
                "repository": repository if repository is not None else {"files": FILES, "message": MESSAGE},
                "pipelines": [
                    {
                        "user": "alice",
                        "status": "running",
                        "ref": ref,
                        "jobs": [
                            {"name": "build", "stage": "build", "status": "success", "token": DONE_TOKEN},
                            {"name": "test", "stage": "test", "status": "pending", "script": ["make test"]},
                        ],
                    }
                ],
                **project,
            },
            {
                "path": "acme/other",
                "repository": {"files": {"other.txt": "other\n"}},
                "pipelines": [
                    {
                        "user": "alice",
                        "status": "running",
                        "jobs": [{"name": "o", "status": "running", "token": OTHER_TOKEN}],
                    }
                ],
            },
        ],
        "runners": [{"token": RUNNER_TOKEN}],
    }


def basic(login: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


@dataclass
class Git:
    """The git CLI with no user configuration and no prompts (a wrong password fails at once)."""

    home: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(self.home),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": "Runner",
            "GIT_AUTHOR_EMAIL": "runner@example.com",
            "GIT_COMMITTER_NAME": "Runner",
            "GIT_COMMITTER_EMAIL": "runner@example.com",
        }

    async def run(self, *args: str, cwd: Path | None = None) -> tuple[int, str, str]:
        """Asynchronously: the coordinator answering git runs in this same event loop."""
        process = await asyncio.create_subprocess_exec(
            "git",
            *args,
            cwd=cwd or self.home,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
        return process.returncode or 0, out.decode(), err.decode()

    async def ok(self, *args: str, cwd: Path | None = None) -> str:
        code, out, err = await self.run(*args, cwd=cwd)
        assert code == 0, f"git {' '.join(args)} failed ({code}): {err}"
        return out.strip()


def variables(payload: dict) -> dict[str, str]:
    return {v["key"]: v["value"] for v in payload["variables"]}
