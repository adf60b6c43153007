"""Running ``mockcoord`` commands on a test instance's database, and reading its rows."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from click.testing import Result
from sqlmodel import select
from typer.testing import CliRunner

from app import clock
from app.models import ProjectStatistics
from mockctl.cli import cli
from tests.conftest import Coordinator


def instance_args(c: Coordinator) -> list[str]:
    return ["--data-dir", str(c.settings.data_dir), "--database-url", c.settings.resolved_database_url]


async def run_cli(c: Coordinator, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    """``mockcoord ARGS`` in-process (a thread: the command runs its own event loop) on ``c``'s
    database: the instance options go after the command's words (``admin top-projects``)."""
    words = 2 if args[0] == "admin" else 1
    argv = [*args[:words], *instance_args(c), *args[words:]]
    return await asyncio.to_thread(CliRunner().invoke, cli, argv, input=input, env=env, catch_exceptions=False)


async def rows(c: Coordinator, model: Any, *where: Any) -> list[Any]:
    async with c.state.db.session() as session:
        return list((await session.exec(select(model).where(*where))).all())


async def usage(c: Coordinator, project_id: int) -> int:
    (stats,) = await rows(c, ProjectStatistics, ProjectStatistics.project_id == project_id)
    return stats.build_artifacts_size


async def seed_at(c: Coordinator, when: datetime, scenario: dict[str, Any]) -> dict[str, Any]:
    """Seed as if ``when`` were now (the rows' times), then back to real time."""
    clock.set_to(when)
    try:
        return await c.seed(scenario)
    finally:
        clock.reset()
