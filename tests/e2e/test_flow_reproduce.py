"""``mockcoord flows reproduce``: the three flows of GitLab's troubleshooting page, from real traffic."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mockctl.flow_reproduce import reproduce
from tests.conftest import ADMIN_TOKEN
from tests.e2e.conftest import Stack

GITLAB_STEPS = [
    "R->>P: Look up job for CI_JOB_TOKEN",
    "R->>P: Find user who triggered job",
    "R->>R: Does user have :read_build access? yes",
]


def steps(diagram: str) -> list[str]:
    return [line.strip() for line in diagram.splitlines()[7:]]


async def test_direct(stack: Stack) -> None:
    if not stack.rails.state.store.remote:
        pytest.skip("a 302 needs object storage")
    lines = steps(await reproduce(stack.url, ADMIN_TOKEN, "direct"))
    assert lines[0].startswith("C->>+W: GET /api/v4/jobs/") and lines[0].endswith("?direct_download=true")
    assert lines[3:6] == GITLAB_STEPS
    assert "R->>W: Send 302 redirect to object storage presigned URL" in lines
    assert lines[-3:-1] == ["W-->>-C: 302 Found", "C->>O: GET <presigned URL>"]
    assert lines[-1].startswith("O-->>C: 200 OK (")


async def test_proxy(stack: Stack) -> None:
    lines = steps(await reproduce(stack.url, ADMIN_TOKEN, "proxy"))
    assert lines[3:6] == GITLAB_STEPS
    if stack.rails.state.store.remote:
        assert lines[-5:-2] == [
            "R->>W: SendURL with object storage presigned URL",
            "deactivate R",
            "W->>O: GET <presigned URL>",
        ]
        assert lines[-2].startswith("O-->>W: 200 OK (")
    else:
        assert lines[-3:-1] == ["R->>W: Send X-Sendfile with the local path", "deactivate R"]
    assert lines[-1].startswith("W-->>-C: 200 OK (")


async def test_denied(stack: Stack) -> None:
    lines = steps(await reproduce(stack.url, ADMIN_TOKEN, "denied"))
    assert lines[3:] == [
        "R->>P: Look up job for CI_JOB_TOKEN",
        "R-->>-W: 401 Unauthorized",
        "W-->>-C: 401 Unauthorized",
    ]


async def test_upload(stack: Stack) -> None:
    lines = steps(await reproduce(stack.url, ADMIN_TOKEN, "upload"))
    assert lines[0].startswith("C->>+W: POST /api/v4/jobs/") and lines[0].endswith("artifact_type=archive")
    calls = [line for line in lines if line.startswith("W->>+R: POST ")]
    assert [call.split("?")[0].rsplit("/", 1)[-1] for call in calls] == ["authorize", "artifacts"]
    assert lines[-2:] == ["R-->>-W: 201 Created", "W-->>-C: 201 Created (3 bytes)"]


def test_cli_starts_its_own_coordinator() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "app", "flows", "reproduce", "denied"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("sequenceDiagram\n") and "W-->>-C: 401 Unauthorized" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "app", "flows", "reproduce", "sideways"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "kind must be one of direct, proxy, denied, upload" in bad.stderr + bad.stdout
