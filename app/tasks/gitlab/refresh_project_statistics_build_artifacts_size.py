"""``gitlab:refresh_project_statistics_build_artifacts_size[csv_path]``
(``lib/tasks/gitlab/refresh_project_statistics_build_artifacts_size.rake``): queue a refresh of
``build_artifacts_size`` for the projects a CSV lists.

As GitLab's task: the CSV comes from a URL when the argument starts with ``http`` (the answer's
status is not checked: its body is read as the CSV) or from a file; its header row must name a
``PROJECT_ID`` column. It prints ``Loaded N project ids to import`` (N counts the data rows,
whatever the header), then for each group of 500 ids queues a refresh of the projects that exist
(``Projects::BuildArtifactsSizeRefresh.enqueue_refresh``, a project already queued keeps its
row), sleeps a second for replication, and prints ``DONE/N (missing projects: M)``; then
``Done.``. With no id under ``PROJECT_ID``: the red ``Project IDs must be listed in the CSV
under the header PROJECT_ID``. It only queues: ``Projects::RefreshBuildArtifactsSizeStatisticsWorker``
does the counting (cron ``2/17 * * * *``).

Where mockcoord differs: GitLab's task crashes with a Ruby backtrace when the argument is missing,
the file cannot be read, the URL cannot be reached or the CSV is malformed; here each is one line
(``TaskError``) before anything is queued.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlmodel import col, select

from app.models import Project, record_id
from app.services.projects.build_artifacts_size_refresh import enqueue_refresh
from app.state import AppState
from app.tasks.rake import RakeEnvironment, RakeError, TaskDefinition

TASK = "gitlab:refresh_project_statistics_build_artifacts_size"
HEADER = "PROJECT_ID"
NO_IDS = "Project IDs must be listed in the CSV under the header PROJECT_ID"
RUBY_TO_I = re.compile(r"^\s*([+-]?\d+(?:_\d+)*)")


class TaskError(Exception):
    """The task cannot start; nothing was queued."""


@dataclass
class Output:
    """Where the task's lines go: ``puts``, ``puts ....red``, and progress for a terminal's bar."""

    line: Callable[[str], None]
    red: Callable[[str], None]
    progress: Callable[[int, int], None] = lambda done, total: None


async def read_source(csv_path: str | None, warn: Callable[[str], None]) -> str:
    """``HTTParty.get(csv_path)`` or ``File.read(csv_path)``; ``TaskError`` when neither answers."""
    if not csv_path:
        raise TaskError(f"no CSV given: rake '{TASK}[FILE_OR_URL]'")
    if csv_path.startswith("http"):
        try:
            async with httpx.AsyncClient(follow_redirects=True, timeout=60) as client:
                res = await client.get(csv_path)
        except (httpx.HTTPError, ValueError) as exc:
            raise TaskError(f"{csv_path}: {exc or type(exc).__name__}") from None
        if res.is_error:
            warn(f"{csv_path} answered {res.status_code} {res.reason_phrase}; GitLab reads the body as the CSV anyway")
        return res.text
    try:
        return await asyncio.to_thread(Path(csv_path).read_text)
    except OSError as exc:
        raise TaskError(f"{csv_path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise TaskError(f"{csv_path}: not text ({exc.reason})") from None


def project_ids(body: str, source: str) -> list[str | None]:
    """``CSV.parse(body, headers: true)['PROJECT_ID']``: one value a data row (a blank line is a
    row too), ``None`` where the row has no such field or the header has no such column."""
    try:
        rows = list(csv.reader(io.StringIO(body, newline=""), strict=True))
    except csv.Error as exc:
        raise TaskError(f"{source}: malformed CSV: {exc}") from None
    if not rows:
        return []
    header, data = rows[0], rows[1:]
    if HEADER not in header:
        return [None] * len(data)
    index = header.index(HEADER)
    return [row[index] if index < len(row) else None for row in data]


def ruby_to_i(value: str | None) -> int | None:
    """How ActiveRecord casts an id from the CSV (``String#to_i``): leading digits, else 0."""
    if value is None:
        return None
    match = RUBY_TO_I.match(value)
    return int(match.group(1).replace("_", "")) if match else 0


async def existing_projects(state: AppState, values: list[str | None]) -> set[int]:
    """``Project.where(id: ids)``."""
    ids = {record_id(i) for i in map(ruby_to_i, values) if i is not None}
    if not ids:
        return set()
    async with state.db.session() as session:
        return set((await session.exec(select(Project.id).where(col(Project.id).in_(ids)))).all())  # type: ignore[arg-type]


async def run(
    state: AppState,
    csv_path: str | None,
    out: Output,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    limits = state.settings.housekeeping
    body = await read_source(csv_path, out.line)
    values = project_ids(body, csv_path or "")
    total = len(values)
    out.line(f"Loaded {total} project ids to import")
    out.progress(0, total)
    if not any(v is not None for v in values):  # Ruby's ``any?``: an empty field ("") counts
        out.red(NO_IDS)
        return
    imported = missing = 0
    for first in range(0, total, limits.refresh_enqueue_batch_size):
        group = values[first : first + limits.refresh_enqueue_batch_size]
        found = await existing_projects(state, group)
        async with state.db.session() as session:
            await enqueue_refresh(session, sorted(found))
            await session.commit()
        await sleep(limits.refresh_enqueue_sleep_seconds)  # "a short break to allow replication to catch up"
        imported += len(found)
        missing += len(group) - len(found)
        out.line(f"{imported}/{total} (missing projects: {missing})")
        out.progress(first + len(group), total)
    out.line("Done.")


async def rake_task(env: RakeEnvironment, args: list[str]) -> None:
    """The task on rake's environment: ``puts`` lines (not the Logger's), a bar on a terminal."""
    state = AppState(settings=env.settings, db=await env.db(), store=None, secret=b"", raw_store=None)  # type: ignore[arg-type]
    shown = [0]

    def progress(done: int, total: int) -> None:
        if done == 0:
            env.progress.start("queueing project ids", total, unit="ids")
        env.progress.advance(done - shown[0])
        shown[0] = done

    out = Output(
        line=lambda text: env.logger.sink(text + "\n", None),
        red=lambda text: env.logger.sink(text + "\n", "red"),
        progress=progress,
    )
    try:
        await run(state, args[0] if args else None, out)
    except TaskError as exc:
        raise RakeError(str(exc)) from None


DEFINITION = TaskDefinition(
    TASK,
    "GitLab | Refresh build artifacts size project statistics for given list of Project IDs from CSV file",
    ("csv_path",),
    rake_task,
)
