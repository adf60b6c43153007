"""``mockcoord housekeeping rehearse``: a backlog built in a database of its own, GitLab's
housekeeping cron workers run over simulated time (``mockctl.rehearsal``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from mockctl.cli.common import console

LIMIT_NAMES = (
    "expire_batch_size, expire_loop_limit, unknown_batch_size, unknown_loop_limit, loop_timeout_seconds, "
    "lease_timeout_seconds, delete_objects_batch_size, delete_objects_max_running_jobs, delete_objects_retry_in_seconds"
)


def rehearse(
    artifacts: Annotated[
        int, typer.Option(help="Artifacts in the population (two a job, five jobs a pipeline).")
    ] = 100_000,
    expired_share: Annotated[float, typer.Option(help="Share of the artifacts already expired (the oldest).")] = 0.9,
    locked_share: Annotated[
        float, typer.Option(help="Share of the older pipelines (not the latest of a ref) still locked.")
    ] = 0.0,
    unknown_share: Annotated[
        float, typer.Option(help="Share of the artifacts written 'unknown' (the oldest: rows from before 15.0).")
    ] = 0.0,
    refs: Annotated[int, typer.Option(help="Refs; the latest pipeline of each is locked (keep-latest).")] = 10,
    projects: Annotated[int, typer.Option(help="Projects the refs are spread over.")] = 10,
    past_days: Annotated[float, typer.Option(help="Expired artifacts expired over this many days.")] = 180.0,
    future_days: Annotated[float, typer.Option(help="The others expire over this many days.")] = 30.0,
    objects: Annotated[
        int, typer.Option(help="Write real small objects for this many artifacts (the rest are rows only).")
    ] = 0,
    storage: Annotated[str, typer.Option(help="local (files in a temp dir) or s3 (an embedded moto S3).")] = "local",
    days: Annotated[float, typer.Option(help="Simulated days to run the cron schedule over.")] = 3.0,
    gitlab_version: Annotated[
        str, typer.Option(help="GitLab release whose defaults and bugs to rehearse: 15.2, 16.1, ... or newest.")
    ] = "newest",
    flag: Annotated[
        list[str] | None, typer.Option("--flag", help="A feature flag, NAME=true|false (repeatable).")
    ] = None,
    limits: Annotated[
        list[str] | None,
        typer.Option("--limits", help=f"Housekeeping limits, KEY=VALUE[,KEY=VALUE] (repeatable): {LIMIT_NAMES}."),
    ] = None,
    lifted: Annotated[
        bool, typer.Option("--lifted", help="Batch sizes 10,000 and an hour a run instead of GitLab's 100 and 5 min.")
    ] = False,
    run_idle: Annotated[
        bool,
        typer.Option(
            "--run-idle",
            help="Make every empty pass: runs go on to their loop limit as GitLab's do (by default a run "
            "ends at its first empty pass; the rows are the same).",
        ),
    ] = False,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="SQLAlchemy async URL of an empty database (default: a temp SQLite file)."),
    ] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Drop the database's tables first.")] = False,
    existing: Annotated[
        bool, typer.Option("--existing", help="Rehearse on the database's own rows (a copy of a backlog).")
    ] = False,
    out: Annotated[Path, typer.Option("--out", help="Where series.csv, drain.png and drain.html go.")] = Path(
        "rehearsal"
    ),
) -> None:
    """Build a backlog and run GitLab's housekeeping cron workers over simulated time.

    Writes series.csv, drain.png, drain.html and forecast.txt into --out, and prints the forecast.
    """
    from mockctl.rehearsal.options import OptionError, RehearsalOptions, parse_flags, parse_limits

    try:
        opts = RehearsalOptions(
            artifacts=artifacts,
            expired_share=expired_share,
            locked_share=locked_share,
            unknown_share=unknown_share,
            refs=refs,
            projects=projects,
            past_days=past_days,
            future_days=future_days,
            objects=objects,
            storage=storage,
            days=days,
            gitlab_version=gitlab_version,
            flags=parse_flags(flag or []),
            limits=parse_limits(limits or []),
            lifted=lifted,
            run_idle=run_idle,
            database_url=database_url,
            replace=replace,
            existing=existing,
            out=out,
        ).check()
    except OptionError as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None
    try:
        result = asyncio.run(_run(opts))
    except OptionError as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None
    for name, path in result.paths.items():
        console.print(f"{name}: {path}", markup=False)
    console.print(result.forecast.line, style="bold", markup=False)


async def _run(opts):  # type: ignore[no-untyped-def]
    from mockctl.rehearsal.progress import Progress
    from mockctl.rehearsal.run import rehearse as run

    with Progress(console) as progress:
        return await run(opts, say=progress.say, on_step=progress.step)
