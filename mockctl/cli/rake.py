"""``mockcoord rake TASK[ARGS] [VAR=value ...]``: GitLab's rake tasks as the page types them
(``sudo gitlab-rake`` becomes ``mockcoord rake``), on the instance's database.

Each task is a handler in ``TASKS`` (task name -> handler); the task's logic lives in
``app/tasks/gitlab/``, this module only parses the command line and prints.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from mockctl.cli.common import DataDirOpt, DbOpt, build_settings, console

if TYPE_CHECKING:
    from app.config import Settings

TASK_SYNTAX = re.compile(r"^(?P<name>[^\[\]]+)(?:\[(?P<args>.*)\])?$", re.S)


def parse_task(text: str) -> tuple[str, list[str]]:
    """Rake's ``name[arg1,arg2]``; a missing or empty bracket means no arguments."""
    match = TASK_SYNTAX.match(text.strip())
    if match is None:
        console.print(f"Don't know how to build task '{text}'", style="red", markup=False)
        raise typer.Exit(1)
    args = match.group("args")
    return match.group("name"), ([a.strip() for a in args.split(",")] if args else [])


def refresh_project_statistics_build_artifacts_size(args: list[str], settings: Settings) -> int:
    from app.tasks.gitlab import refresh_project_statistics_build_artifacts_size as task
    from mockctl.rails_console import InstanceError, console_state

    async def main() -> None:
        async with console_state(settings) as state:
            if not console.is_terminal:  # plain lines, GitLab's, for logs and pipes
                out = task.Output(
                    line=lambda text: print(text, flush=True),
                    red=lambda text: console.print(text, style="red", markup=False, highlight=False),
                )
                await task.run(state, args[0] if args else None, out)
                return
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            columns = (
                TextColumn("queueing"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("ids"),
                TimeRemainingColumn(),
            )
            with Progress(*columns, console=console, transient=True) as bar:
                shown = bar.add_task("ids", total=None)
                out = task.Output(
                    line=lambda text: bar.console.print(text, markup=False, highlight=False),
                    red=lambda text: bar.console.print(text, style="red", markup=False, highlight=False),
                    progress=lambda done, total: bar.update(shown, completed=done, total=total),
                )
                await task.run(state, args[0] if args else None, out)

    try:
        asyncio.run(main())
    except (task.TaskError, InstanceError) as exc:
        console.print(str(exc), style="red", markup=False, highlight=False)
        return 1
    return 0


# Task name -> handler(args, settings) -> exit code. The orphan-cleanup tasks register here too.
TASKS: dict[str, Callable[[list[str], Settings], int]] = {
    "gitlab:refresh_project_statistics_build_artifacts_size": refresh_project_statistics_build_artifacts_size,
}


def rake(
    task: Annotated[str, typer.Argument(help="GitLab's task, with its arguments in brackets: 'gitlab:...[ARG]'.")],
    variables: Annotated[
        list[str] | None, typer.Argument(help="VAR=value settings, as rake takes them (or the environment).")
    ] = None,
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Run a GitLab rake task of the job-artifacts troubleshooting page on this instance.

    Tasks: gitlab:refresh_project_statistics_build_artifacts_size[FILE_OR_URL]."""
    name, args = parse_task(task)
    handler = TASKS.get(name)
    if handler is None:
        console.print(
            f"Don't know how to build task '{name}' (known: {', '.join(sorted(TASKS))})", style="red", markup=False
        )
        raise typer.Exit(1)
    for assignment in variables or []:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            console.print(f"not a VAR=value setting: {assignment!r}", style="red", markup=False)
            raise typer.Exit(2)
        os.environ[key] = value
    settings = build_settings(data_dir=data_dir, database_url=database_url)
    sys.stdout.flush()
    raise typer.Exit(handler(args, settings))
