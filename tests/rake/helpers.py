"""Running ``mockcoord rake`` in-process (its command line, exit status, stdout and stderr) and
building an instance whose bucket holds live, orphaned and risky objects."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from app.config import Settings
from app.models import JobArtifact, PendingDirectUpload
from mockctl.cli.rake import run_command
from tests.conftest import Coordinator

LOG_LINE = re.compile(
    r"([DIWE]), \[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}) #(\d+)\] +(DEBUG|INFO|WARN|ERROR) -- : (.*)"
)
# The tests' own Redis database: 6, or 6 + n for pytest-xdist's worker gw<n> (resume markers are global keys)
REDIS_URL = f"redis://127.0.0.1:6379/{6 + int(os.environ.get('PYTEST_XDIST_WORKER', 'gw0')[2:])}"


@dataclass
class Ran:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        """``SEVERITY message`` of each stdout line, every one checked to be Ruby Logger's format."""
        found = []
        for line in self.out.splitlines():
            match = LOG_LINE.fullmatch(line)
            assert match, f"not a Ruby Logger line: {line!r}"
            assert match.group(1) == match.group(4)[0]
            found.append(f"{match.group(4)} {match.group(5)}")
        return found


async def rake(
    capsys: pytest.CaptureFixture[str], settings: Settings, *words: str, env: Mapping[str, str] | None = None
) -> Ran:
    capsys.readouterr()
    code = await run_command(settings, list(words), dict(env or {}))
    captured = capsys.readouterr()
    return Ran(code, captured.out, captured.err)


async def seed_artifacts(c: Coordinator, count: int) -> list[dict[str, Any]]:
    """``count`` jobs of one project, each with a stored archive: the seed's artifact entries."""
    seeded = await c.seed(
        {
            "groups": [{"path": "rk"}],
            "projects": [
                {
                    "path": "rk/app",
                    "pipelines": [
                        {"jobs": [{"name": f"job{i}", "artifacts": [{"content": f"live {i}"}]} for i in range(count)]}
                    ],
                }
            ],
        }
    )
    return seeded["artifacts"]


async def add_pending_upload(c: Coordinator, path: str) -> None:
    async with c.state.db.session() as session:
        session.add(PendingDirectUpload(path=path))
        await session.commit()


async def add_artifact_row(c: Coordinator, like: dict[str, Any], file_final_path: str) -> int:
    """A row naming ``file_final_path`` (an upload finalized meanwhile), copying a seeded one."""
    async with c.state.db.session() as session:
        model = await session.get(JobArtifact, like["id"])
        assert model is not None
        row = JobArtifact(
            project_id=model.project_id,
            job_id=model.job_id,
            file_type=4,  # junit: the job already has its archive
            file="junit.xml",
            file_store=2,
            size=1,
            file_final_path=file_final_path,
        )
        session.add(row)
        await session.commit()
        assert row.id is not None
        return row.id


def require_s3(c: Coordinator) -> None:
    if not c.state.store.remote:
        pytest.skip("the orphan-object tasks read object storage")


def require_local(c: Coordinator) -> None:
    if c.state.store.remote:
        pytest.skip("the orphan-files task reads local storage")


async def redis_or_skip() -> Any:
    redis = pytest.importorskip("redis.asyncio")
    client = redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {exc}")
    return client
