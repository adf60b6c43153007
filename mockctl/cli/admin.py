"""``mockcoord admin``: the Rails-console snippets of GitLab's job-artifacts troubleshooting page
for administrators, one command each (docs/admin.md sets each beside its snippet).

Presentation only: the queries are finders (``app/finders``), the deletions services
(``app/services/admin``) that go through GitLab's services and its two-phase deletion. Tables
on a terminal, ``--format json|csv`` for scripts; everything that deletes has ``--dry-run`` and
asks before it starts unless ``--yes``.
"""

from __future__ import annotations

import asyncio
import csv
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from mockctl.cli.common import DataDirOpt, DbOpt, build_settings, console

if TYPE_CHECKING:
    from sqlmodel.ext.asyncio.session import AsyncSession

    from app.config import Settings
    from app.state import AppState

app = typer.Typer(
    no_args_is_help=True,
    help="The Rails-console snippets of GitLab's job-artifacts troubleshooting page, as commands.",
)
err = Console(stderr=True, highlight=False, soft_wrap=True)

RECLAIM = (
    "The files stay in storage until Ci::DeleteObjectsWorker removes them (cron ci_schedule_delete_objects_worker, "
    "*/16 * * * *, each file once its pick_up_at has passed). To reclaim the space now, expedite as the page says: "
    "`mockcoord housekeeping expedite`."
)


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOpt = Annotated[Format, typer.Option("--format", help="table (a terminal's), json or csv (for scripts).")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before deleting.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show what would be deleted; change nothing.")]
ProjectOpt = Annotated[
    str | None, typer.Option("--project", help="A project's full path or id; unset: the whole instance.")
]
BeforeOpt = Annotated[
    str,
    typer.Option(
        "--finished-before",
        help="How long ago: 1y, 3mo, 2w, 7d, '1 year', 1.year (the page's 1.year.ago). Start long.",
    ),
]
UserOpt = Annotated[str, typer.Option("--user", help="Who does it (the snippet's User.find_by(username:)).")]


def fail(message: str, code: int = 1) -> None:
    console.print(message, style="red", markup=False, highlight=False)
    raise typer.Exit(code)


# --- durations and sizes ---------------------------------------------------------------


def duration(text: str, option: str) -> Any:
    """An ActiveSupport-like duration (``1.year``, ``1y``, ``3 months``, ``2w``, ``7d``): years and
    months as calendar steps (``1.year.ago`` is the same date a year back), other units in
    seconds as ChronicDuration reads them."""
    from dateutil.relativedelta import relativedelta

    from app.lib.chronic_duration import UNITS, DurationParseError, parse_duration

    value = text.strip().lower()
    calendar = re.fullmatch(r"(\d+)\s*\.?\s*([a-z]+)", value)
    if calendar and calendar[2] in UNITS and UNITS[calendar[2]] in (UNITS["year"], UNITS["month"]):
        number = int(calendar[1])
        step = relativedelta(years=number) if UNITS[calendar[2]] == UNITS["year"] else relativedelta(months=number)
    else:
        try:
            seconds = parse_duration(re.sub(r"(?<=\d)\.(?=[a-z])", " ", value))
        except DurationParseError as exc:
            fail(f"{option} {text!r}: {exc}", 2)
        step = relativedelta(seconds=int(seconds))
    if not (step.years or step.months or step.seconds or step.minutes or step.hours or step.days):
        fail(f"{option} {text!r}: give a duration longer than 0", 2)
    return step


def size(n: int | None) -> str:
    import humanize

    return humanize.naturalsize(n or 0, binary=True)


def when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def relative(value: datetime | None) -> str:
    import humanize

    from app import clock

    if value is None:
        return "never"
    return humanize.naturaltime(value, when=clock.now())


# --- output ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    show: Callable[[Any], str] = str
    justify: str = "left"


def emit(rows: Sequence[dict[str, Any]], columns: Sequence[Column], fmt: Format, title: str | None = None) -> None:
    """Rows as a table, a JSON array (raw values: bytes as integers, ISO times) or CSV."""
    if fmt == Format.json:
        print(json.dumps([{k: _json(v) for k, v in row.items()} for row in rows], indent=2))
        return
    if fmt == Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([c.key for c in columns])
        for row in rows:
            writer.writerow([_json(row[c.key]) if row[c.key] is not None else "" for c in columns])
        return
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=None, pad_edge=False, header_style="bold")
    for c in columns:
        table.add_column(c.header, justify=c.justify, overflow="fold")  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*(c.show(row[c.key]) for c in columns))
    if rows:
        console.print(table)
    else:
        console.print("(none)", markup=False)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


# --- the instance ------------------------------------------------------------------------


def settings_of(data_dir: Any, database_url: Any) -> Settings:
    return build_settings(data_dir=data_dir, database_url=database_url)


def on_instance(settings: Settings, work: Callable[[AppState], Any]) -> Any:
    """Run ``work(state)`` on the instance's database; a missing database is one line."""
    from mockctl.rails_console import InstanceError, console_state

    async def main() -> Any:
        async with console_state(settings) as state:
            return await work(state)

    try:
        return asyncio.run(main())
    except InstanceError as exc:
        fail(str(exc))


async def project_id_of(session: AsyncSession, ref: str) -> int:
    from app.finders.project_finder import lookup_project

    project = await lookup_project(session, ref)
    if project is None or project.id is None:
        fail(f"no project {ref!r} (give its full path, group/project, or its id)")
    return project.id  # type: ignore[union-attr,return-value]


def limit_opt(default: int | None, what: str) -> Any:
    return Annotated[
        int | None if default is None else int,
        typer.Option("--limit", min=1, help=f"At most this many {what} (the snippet's .limit)."),
    ]


# --- listings ----------------------------------------------------------------------------


@app.command("projects-by-size")
def projects_by_size(
    limit: limit_opt(20, "projects") = 20,  # type: ignore[valid-type]
    fmt: FormatOpt = Format.table,
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
) -> None:
    """List projects by total size of job artifacts stored (ProjectStatistics.build_artifacts_size)."""
    from app.finders.project_statistics_finder import by_build_artifacts_size

    async def work(state: AppState) -> list[Any]:
        async with state.db.session() as session:
            return await by_build_artifacts_size(session, limit)

    found = on_instance(settings_of(data_dir, database_url), work)
    rows = [{"size": p.build_artifacts_size, "full_path": p.full_path, "project_id": p.project_id} for p in found]
    emit(rows, [Column("size", "Size", size, "right"), Column("full_path", "Project"), Column("project_id", "ID")], fmt)


ARTIFACT_COLUMNS = {
    "id": Column("id", "ID", justify="right"),
    "job_id": Column("job_id", "Job ID", justify="right"),
    "file_type": Column("file_type", "Type"),
    "size": Column("size", "Size", size, "right"),
    "bytes": Column("size", "Size (bytes)", lambda n: f"{n}b", "right"),
    "created_at": Column("created_at", "Created", when),
    "store": Column("store", "Store"),
    "location": Column("location", "File location"),
}


def _artifact_rows(settings: Settings, project: str, limit: int) -> list[dict[str, Any]]:
    from app.finders.job_artifacts_finder import largest_in_project

    async def work(state: AppState) -> list[Any]:
        async with state.db.session() as session:
            return await largest_in_project(session, await project_id_of(session, project), limit)

    rows = []
    for a in on_instance(settings, work):
        location = str(settings.artifacts_path / a.key) if a.store == "local" else a.key
        rows.append(
            {
                "id": a.id,
                "job_id": a.job_id,
                "file_type": a.file_type,
                "size": a.size,
                "created_at": a.created_at,
                "expire_at": a.expire_at,
                "store": a.store,
                "location": location,
            }
        )
    return rows


@app.command("largest-artifacts")
def largest_artifacts(
    project: Annotated[str, typer.Argument(help="The project's full path (group/project) or id.")],
    limit: limit_opt(50, "artifacts") = 50,  # type: ignore[valid-type]
    fmt: FormatOpt = Format.table,
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
) -> None:
    """List the largest job artifacts in a single project (ID, type, size)."""
    rows = _artifact_rows(settings_of(data_dir, database_url), project, limit)
    columns = [ARTIFACT_COLUMNS[k] for k in ("id", "file_type", "size")]
    emit([{k: r[k] for k in ("id", "file_type", "size")} for r in rows], columns, fmt)


@app.command("project-artifacts")
def project_artifacts(
    project: Annotated[str, typer.Argument(help="The project's full path (group/project) or id.")],
    limit: limit_opt(50, "artifacts") = 50,  # type: ignore[valid-type]
    fmt: FormatOpt = Format.table,
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
) -> None:
    """List the artifacts of a single project by size: job ID, size, type, creation date, location."""
    rows = _artifact_rows(settings_of(data_dir, database_url), project, limit)
    keys = ("job_id", "bytes", "file_type", "created_at", "store", "location")
    columns = [ARTIFACT_COLUMNS[k] for k in keys]
    emit([{c.key: r[c.key] for c in columns} for r in rows], columns, fmt)


@app.command("builds-with-artifacts")
def builds_with_artifacts(
    never_expire: Annotated[bool, typer.Option("--never-expire", help="Artifacts that never expire.")] = False,
    expire_after: Annotated[
        str | None,
        typer.Option("--expire-after", help="Artifacts expiring later than this from now: 7d, 2w, 3mo, 1y."),
    ] = None,
    limit: limit_opt(50, "jobs") = 50,  # type: ignore[valid-type]
    fmt: FormatOpt = Format.table,
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
) -> None:
    """List builds (and their projects) with downloadable artifacts that never expire, or expire
    after a time from now (the page's 7.days.from_now ... 1.year.from_now)."""
    from app import clock
    from app.finders.builds_finder import with_artifacts_expiring

    if never_expire == (expire_after is not None):
        fail("give exactly one of --never-expire, --expire-after DURATION", 2)
    after = clock.now() + duration(expire_after, "--expire-after") if expire_after else None

    async def work(state: AppState) -> list[Any]:
        async with state.db.session() as session:
            return await with_artifacts_expiring(session, after, limit)

    found = on_instance(settings_of(data_dir, database_url), work)
    rows = [
        {"build_id": b.id, "full_path": b.full_path, "artifacts_expire_at": b.artifacts_expire_at, "expires": None}
        for b in found
    ]
    for row in rows:
        row["expires"] = relative(row["artifacts_expire_at"])
    columns = [
        Column("build_id", "Build ID", justify="right"),
        Column("full_path", "Project"),
        Column("artifacts_expire_at", "Artifacts expire at", lambda v: when(v) or "never"),
        Column("expires", "Expires"),
    ]
    emit(rows, columns, fmt)


# --- deletions ---------------------------------------------------------------------------


def confirm(question: str, yes: bool) -> None:
    if yes:
        return
    try:
        ok = typer.confirm(question, default=False, err=True)
    except typer.Abort:
        ok = False
    if not ok:
        err.print("Aborted: nothing was deleted.", markup=False)
        raise typer.Exit(1)


@dataclass(frozen=True)
class Deletion:
    """One deletion command's choices."""

    settings: Settings
    project: str | None
    finished_before: datetime
    dry_run: bool
    yes: bool
    limit: int | None
    fmt: Format

    @property
    def scope(self) -> str:
        return f"in {self.project}" if self.project else "instance-wide"


def deletion(
    data_dir: Any,
    database_url: Any,
    project: str | None,
    before: str,
    dry_run: bool,
    yes: bool,
    limit: int | None,
    fmt: Format,
) -> Deletion:
    from app import clock

    cutoff = clock.now() - duration(before, "--finished-before")
    return Deletion(settings_of(data_dir, database_url), project, cutoff, dry_run, yes, limit, fmt)


def run_deletion(
    d: Deletion,
    planner: Callable[[AsyncSession, datetime, int | None], Any],
    question: Callable[[Any], str | None],
    runner: Callable[[AppState, int | None], Any],
    on_item: Callable[[Any], None],
    with_store: bool = False,
) -> Any:
    """Totals first (``planner``); unless a dry run, ask (``question`` None: nothing to do, no
    question); then each item of ``runner`` to ``on_item`` as it comes. Answers the plan."""
    from mockctl.rails_console import InstanceError, console_state

    async def main() -> Any:
        async with console_state(d.settings, with_store=with_store and not d.dry_run) as state:
            async with state.db.session() as session:
                project_id = await project_id_of(session, d.project) if d.project else None
                the_plan = await planner(session, d.finished_before, project_id)
            asked = question(the_plan)
            if asked is not None and not d.dry_run:
                await asyncio.to_thread(confirm, asked, d.yes)
            if asked is not None or d.dry_run:
                async for item in runner(state, project_id):
                    on_item(item)
            return the_plan

    try:
        return asyncio.run(main())
    except InstanceError as exc:
        fail(str(exc))


def say(d: Deletion, line: str) -> None:
    """A line of the snippet's own output, as it happens (table format only)."""
    if d.fmt == Format.table:
        console.print(line, markup=False, highlight=False)


def finish(
    d: Deletion, rows: list[dict[str, Any]], columns: list[Column], summary: dict[str, Any], lines: list[str]
) -> None:
    """JSON: the summary with every row; CSV: the rows, the summary on stderr; table: the summary."""
    if d.fmt == Format.json:
        print(
            json.dumps(
                {
                    **{k: _json(v) for k, v in summary.items()},
                    "items": [{k: _json(v) for k, v in r.items()} for r in rows],
                },
                indent=2,
            )
        )
        return
    if d.fmt == Format.csv:
        emit(rows, columns, Format.csv)
    out = console if d.fmt == Format.table else err
    for line in lines:
        out.print(line, markup=False, highlight=False)


@app.command("delete-old-artifacts")
def delete_old_artifacts(
    finished_before: BeforeOpt,
    project: ProjectOpt = None,
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Stop after this many jobs.")] = None,
    fmt: FormatOpt = Format.table,
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Delete old artifacts for a project or instance-wide: every downloadable job artifact of jobs
    finished before the time, kept ones included (the page's DeleteService loop, batch by batch,
    then batch.update_all(artifacts_expire_at: Time.current))."""
    from app.services.admin import delete_old_artifacts as service

    d = deletion(data_dir, database_url, project, finished_before, dry_run, yes, limit, fmt)
    rows: list[dict[str, Any]] = []
    batches: list[Any] = []

    def question(plan: Any) -> str | None:
        if not plan.jobs:
            return None
        refused = (
            f"; {plan.refused_jobs} of them in projects under a stats refresh keep theirs" if plan.refused_jobs else ""
        )
        return (
            f"Delete {plan.artifacts} artifacts ({size(plan.bytes)}) of {plan.jobs} jobs finished before "
            f"{when(d.finished_before)} {d.scope}, kept ones included{refused}?"
        )

    def on_item(item: Any) -> None:
        if isinstance(item, service.BatchDone):
            batches.append(item)
            return
        rows.append(
            {
                "build_id": item.build_id,
                "project": item.full_path,
                "artifacts": item.artifacts,
                "bytes": item.bytes,
                "error": item.error,
            }
        )
        if item.error:
            say(d, f"Ci::Build ID {item.build_id}: {item.error}")

    plan = run_deletion(
        d,
        service.plan,
        question,
        lambda state, project_id: service.run(state, d.finished_before, project_id, dry_run=d.dry_run, limit=d.limit),
        on_item,
    )
    artifacts, total = sum(r["artifacts"] for r in rows), sum(r["bytes"] for r in rows)
    refused = sum(1 for r in rows if r["error"])
    verb = "Would delete" if d.dry_run else "Deleted"
    lines = [
        f"{verb} {artifacts} artifacts ({size(total)}) of {len(rows) - refused} jobs finished before "
        f"{when(d.finished_before)} {d.scope}."
    ]
    if refused:
        lines.append(f"{refused} jobs kept theirs: their project is undergoing a stats refresh.")
    if not d.dry_run and rows:
        lines.append(
            f"artifacts_expire_at set to now on {sum(b.expire_at_set for b in batches)} jobs "
            "(batch.update_all: the jobs that still have downloadable artifacts)."
        )
        lines.append(RECLAIM)
    if not plan.jobs:
        lines = [f"No job finished before {when(d.finished_before)} {d.scope} has downloadable artifacts."]
    columns = [
        Column("build_id", "Build ID"),
        Column("project", "Project"),
        Column("artifacts", "Artifacts"),
        Column("bytes", "Bytes"),
        Column("error", "Error"),
    ]
    summary = {
        "dry_run": d.dry_run,
        "finished_before": d.finished_before,
        "project": d.project,
        "jobs": len(rows) - refused,
        "artifacts": artifacts,
        "bytes": total,
        "refused_jobs": refused,
    }
    finish(d, rows, columns, summary, lines)


@app.command("erase-old-jobs")
def erase_old_jobs(
    finished_before: BeforeOpt,
    project: ProjectOpt = None,
    user: UserOpt = "root",
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Stop after this many jobs.")] = None,
    fmt: FormatOpt = Format.table,
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Delete old job logs and artifacts for a project or instance-wide: every job finished before
    the time is erased (Ci::BuildEraseService) when erasable, printing Erased or Skipped."""
    from app.services.admin import erase_old_builds as service

    d = deletion(data_dir, database_url, project, finished_before, dry_run, yes, limit, fmt)
    rows: list[dict[str, Any]] = []
    user_id = on_instance(d.settings, lambda state: user_id_of(state, user))

    def question(plan: Any) -> str | None:
        if not plan.jobs:
            return None
        return (
            f"Erase {plan.erasable_jobs} of {plan.jobs} jobs finished before {when(d.finished_before)} {d.scope}: "
            f"their logs and {plan.artifacts} artifacts ({size(plan.bytes)}), as {user}?"
        )

    def on_item(item: Any) -> None:
        rows.append(
            {
                "build_id": item.build_id,
                "project": item.full_path,
                "erased": item.erased,
                "artifacts": item.artifacts,
                "bytes": item.bytes,
            }
        )
        say(d, item.line if not d.dry_run else item.line.replace("Erased", "would be erased"))

    plan = run_deletion(
        d,
        service.plan,
        question,
        lambda state, project_id: service.run(
            state, d.finished_before, project_id, user_id, dry_run=d.dry_run, limit=d.limit
        ),
        on_item,
        with_store=True,  # releases that destroy logs as records remove their files at once
    )
    erased = [r for r in rows if r["erased"]]
    artifacts, total = sum(r["artifacts"] for r in erased), sum(r["bytes"] for r in erased)
    verb = "Would erase" if d.dry_run else "Erased"
    lines = [
        f"{verb} {len(erased)} jobs ({artifacts} artifacts, logs included, {size(total)}); "
        f"{len(rows) - len(erased)} skipped."
    ]
    if not d.dry_run and erased:
        lines.append(RECLAIM)
    if not plan.jobs:
        lines = [f"No job finished before {when(d.finished_before)} {d.scope}."]
    columns = [
        Column("build_id", "Build ID"),
        Column("project", "Project"),
        Column("erased", "Erased"),
        Column("artifacts", "Artifacts"),
        Column("bytes", "Bytes"),
    ]
    summary = {
        "dry_run": d.dry_run,
        "finished_before": d.finished_before,
        "project": d.project,
        "user": user,
        "jobs": len(rows),
        "erased_jobs": len(erased),
        "artifacts": artifacts,
        "bytes": total,
    }
    finish(d, rows, columns, summary, lines)


@app.command("delete-old-pipelines")
def delete_old_pipelines(
    finished_before: BeforeOpt,
    project: ProjectOpt = None,
    user: UserOpt = "root",
    dry_run: DryRunOpt = False,
    yes: YesOpt = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Stop after this many pipelines.")] = None,
    fmt: FormatOpt = Format.table,
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Delete old pipelines for a project or instance-wide (Ci::DestroyPipelineService): their jobs,
    logs and artifacts go with them."""
    from app.services.admin import delete_old_pipelines as service

    d = deletion(data_dir, database_url, project, finished_before, dry_run, yes, limit, fmt)
    rows: list[dict[str, Any]] = []
    the_user = on_instance(d.settings, lambda state: user_of(state, user))

    def question(plan: Any) -> str | None:
        if not plan.pipelines:
            return None
        return (
            f"Delete {plan.pipelines} pipelines finished before {when(d.finished_before)} {d.scope}, with "
            f"{plan.jobs} jobs and {plan.artifacts} artifacts ({size(plan.bytes)}), as {user}?"
        )

    def on_item(item: Any) -> None:
        rows.append(
            {
                "pipeline_id": item.pipeline_id,
                "project_id": item.project_id,
                "jobs": item.jobs,
                "artifacts": item.artifacts,
                "bytes": item.bytes,
            }
        )
        line = item.line(instance_wide=d.project is None)
        say(d, line if not d.dry_run else line.replace("Erasing", "Would erase"))

    try:
        plan = run_deletion(
            d,
            service.plan,
            question,
            lambda state, project_id: service.run(
                state, d.finished_before, project_id, the_user, dry_run=d.dry_run, limit=d.limit
            ),
            on_item,
            with_store=True,  # canceling a pipeline archives its running jobs' logs
        )
    except service.AccessDeniedError as exc:
        fail(f"Gitlab::Access::AccessDeniedError: {exc}")
    jobs, artifacts, total = (sum(r[k] for r in rows) for k in ("jobs", "artifacts", "bytes"))
    verb = "Would delete" if d.dry_run else "Deleted"
    lines = [f"{verb} {len(rows)} pipelines: {jobs} jobs, {artifacts} artifacts ({size(total)})."]
    if not d.dry_run and artifacts:
        lines.append(RECLAIM)
    if not plan.pipelines:
        lines = [f"No pipeline finished before {when(d.finished_before)} {d.scope}."]
    columns = [
        Column("pipeline_id", "Pipeline ID"),
        Column("project_id", "Project ID"),
        Column("jobs", "Jobs"),
        Column("artifacts", "Artifacts"),
        Column("bytes", "Bytes"),
    ]
    summary = {
        "dry_run": d.dry_run,
        "finished_before": d.finished_before,
        "project": d.project,
        "user": user,
        "pipelines": len(rows),
        "jobs": jobs,
        "artifacts": artifacts,
        "bytes": total,
    }
    finish(d, rows, columns, summary, lines)


async def user_of(state: AppState, username: str) -> Any:
    from sqlmodel import select

    from app.models import User

    async with state.db.session() as session:
        found = (await session.exec(select(User).where(User.username == username))).first()
    if found is None:
        fail(f"no user {username!r} (--user takes a username; root is the instance's administrator)")
    return found


async def user_id_of(state: AppState, username: str) -> int:
    return (await user_of(state, username)).id
