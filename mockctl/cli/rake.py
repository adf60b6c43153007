"""``mockcoord rake``: GitLab's rake tasks (``sudo gitlab-rake TASK`` on the page) against this
instance's database and store: task strings ``name[arg,...]``, ``VAR=value`` words and ``ENV`` as
rake reads them, Ruby Logger lines on stdout, a Rich progress bar when stdout is a terminal."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from mockctl.cli.common import (
    BucketOpt,
    DataDirOpt,
    DbOpt,
    PathStyleOpt,
    RedisOpt,
    S3EndpointOpt,
    S3PortOpt,
    S3RegionOpt,
    StorageOpt,
    build_settings,
    check_storage,
)

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from app.config import Settings

errors = Console(stderr=True, highlight=False, soft_wrap=True)


def rake(
    task: Annotated[
        list[str] | None,
        typer.Argument(
            help="Tasks as rake takes them, name\\[arg,...], and VAR=value words that set the environment: "
            "'gitlab:cleanup:list_orphan_job_artifact_final_objects\\[aws]' FILENAME=orphans.csv",
            show_default=False,
        ),
    ] = None,
    list_tasks: Annotated[bool, typer.Option("--tasks", "-T", help="List the tasks and exit.")] = False,
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
    redis_url: RedisOpt = None,
    storage: StorageOpt = None,
    s3_endpoint: S3EndpointOpt = None,
    s3_region: S3RegionOpt = None,
    s3_port: S3PortOpt = None,
    bucket: BucketOpt = None,
    path_style: PathStyleOpt = None,
) -> None:
    """Run GitLab's rake tasks (gitlab-rake) on this instance's database and object storage.

    The environment variables are the page's: FILENAME, FORCE_RESTART, DRY_RUN, NICENESS, DEBUG (and mockcoord's REMOVE_EMPTY_DIRS). Without --s3-endpoint the store is the embedded S3 of a running `mockcoord serve` (--s3-port); the export line of its banner points here.
    """  # noqa: E501 (one paragraph: --help rewraps it)
    from app.tasks.index import TASKS

    check_storage(storage)
    if list_tasks:
        for definition in TASKS.values():
            shown = definition.name + (f"[{','.join(definition.args)}]" if definition.args else "")
            print(f"mockcoord rake {shown:<70} # {definition.description}")
        return
    settings = build_settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        storage=storage,
        endpoint=s3_endpoint,
        region=s3_region,
        s3_port=s3_port,
        bucket=bucket,
        path_style=path_style,
    )
    embedded = reach_embedded_s3(settings)
    try:
        code = asyncio.run(run_command(settings, task or [], os.environ, embedded))
    except KeyboardInterrupt:  # Ctrl-C: the markers saved so far stay, as GitLab's do
        errors.print("Interrupted", style="red", markup=False)
        code = 130
    if code:
        raise typer.Exit(code)


async def run_command(
    settings: Settings, words: list[str], environ: Mapping[str, str], embedded: str | None = None
) -> int:
    """rake's command line run: the exit status (a bad task name, 1, before anything runs)."""
    from app.tasks.index import TASKS as tasks
    from app.tasks.rake import parse_task_string, split_command_line

    names, assignments = split_command_line(words)
    if not names:
        errors.print("Name a task: mockcoord rake --tasks lists them.", style="red", markup=False)
        return 1
    parsed = [parse_task_string(name) for name in names]
    for name, _args in parsed:
        if name not in tasks:
            errors.print(
                f"Don't know how to build task '{name}' "
                "(See the list of available tasks with `mockcoord rake --tasks`)",
                style="red",
                markup=False,
            )
            return 1
    env = {**environ, **assignments}
    return await _run(settings, env, [(tasks[name], args) for name, args in parsed], embedded)


def reach_embedded_s3(settings: Settings) -> str | None:
    """No endpoint configured: the embedded S3 of a running serve (it lives in serve's memory)."""
    from mockctl.ports import embedded_s3_host

    if not settings.embedded_s3:
        return None
    endpoint = f"http://{embedded_s3_host(settings)}:{settings.s3_port}"
    settings.object_store.connection.endpoint = endpoint
    return endpoint


async def _run(settings: Settings, env: dict[str, str], run: list[Any], embedded: str | None) -> int:
    from app.storage.base import StorageError
    from app.tasks.rake import RakeAbort, RakeEnvironment, RakeError, RubyLogger

    terminal = sys.stdout.isatty()
    progress = TerminalProgress() if terminal else None
    logger = RubyLogger(progress.line if progress else plain_line, debug=bool(env.get("DEBUG", "").strip()))
    environment = RakeEnvironment(settings, env, logger)
    if progress is not None:
        environment.progress = progress
    try:
        await environment.db()  # :gitlab_environment: a wrong database stops before any task runs
        for definition, args in run:
            if progress is not None:
                with progress.live():
                    await definition.run(environment, args)
            else:
                await definition.run(environment, args)
    except RakeAbort as exc:
        errors.print(str(exc), markup=False)
        return 1
    except RakeError as exc:
        errors.print(str(exc), style="red", markup=False)
        return 1
    except StorageError as exc:
        hint = (
            f" (no --s3-endpoint: this is the embedded S3 of a `mockcoord serve` on port {settings.s3_port}; "
            "is it running? its banner's export line sets MOCKCOORD_S3_PORT and MOCKCOORD_DATA_DIR)"
            if embedded
            else ""
        )
        where = settings.object_store.connection.endpoint
        errors.print(f"object storage {where}: {exc}{hint}", style="red", markup=False)
        return 1
    finally:
        await environment.close()
    return 0


def plain_line(line: str, color: str | None) -> None:
    sys.stdout.write(line)
    sys.stdout.flush()


class TerminalProgress:
    """The task's log lines scrolling above a Rich bar: counts and rate."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = Console(highlight=False, soft_wrap=True)
        self.progress: Progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self.task: TaskID | None = None
        self.unit, self.total, self.done, self.started = "", None, 0.0, time.monotonic()
        self.counts: dict[str, int] = {}

    def live(self) -> Progress:
        return self.progress

    def line(self, line: str, color: str | None) -> None:
        from rich.text import Text

        self.console.print(Text(line.rstrip("\n"), style=color or ""))

    def start(self, description: str, total: float | None = None, unit: str = "") -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.unit, self.total, self.done, self.started, self.counts = unit, total, 0.0, time.monotonic(), {}
        self.task = self.progress.add_task(description, total=total, status="")

    def advance(self, amount: float = 1, **fields: int) -> None:
        if self.task is None:
            return
        self.done += amount
        for name, count in fields.items():
            self.counts[name] = self.counts.get(name, 0) + count
        elapsed = max(time.monotonic() - self.started, 1e-6)
        parts = [] if self.unit == "bytes" else [f"{self.done:,.0f} {self.unit}"]
        parts += [f"{count:,} {name}" for name, count in self.counts.items()]
        if self.unit == "bytes" and self.total:
            parts.insert(0, f"{self.done / self.total:.0%} of the list")
        rated = next(iter(self.counts.values()), 0) if self.unit == "bytes" else self.done
        parts.append(f"{rated / elapsed:,.0f}/s")
        self.progress.update(self.task, advance=amount, status=", ".join(parts))
