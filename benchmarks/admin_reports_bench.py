"""The administrator's reports over 1,000,000 artifact rows on PostgreSQL.

Populates a database set-based (``INSERT ... SELECT generate_series``: 50 groups, 1,000
projects, 100,000 pipelines, 500,000 jobs, 1,000,000 artifacts, one project holding a fifth of
everything), then times each report the way ``mockcoord admin`` runs it (the same finders and
services, in-process, best of three), the page's SQL through ``mockcoord dbconsole``, and one
command end to end (a process of its own: start-up included). Prints a Markdown table and the
plan of each query (``EXPLAIN``), so the indexes that answer are named.

Usage: ``python benchmarks/admin_reports_bench.py --database-url postgresql+asyncpg://.../db``
(the database is emptied: its mockcoord tables are dropped and made again).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from app import clock
from app.db import Database
from app.finders.builds_finder import with_artifacts_expiring
from app.finders.job_artifacts_finder import largest_in_project
from app.finders.project_statistics_finder import by_build_artifacts_size
from app.services.admin import delete_old_artifacts

GROUPS, PROJECTS, PIPELINES, JOBS_PER_PIPELINE = 50, 1_000, 100_000, 5
JOBS = PIPELINES * JOBS_PER_PIPELINE  # 500,000; two artifacts each: 1,000,000
SPAN_SECONDS = 3 * 365 * 86400  # finished over the last three years, oldest first
PAGE_QUERY = """select expire_at, file_type, locked, count(*) from ci_job_artifacts
where expire_at is not null and
file_type != 3
group by expire_at, file_type, locked having count(*) > 1;"""

# project of pipeline g: a fifth to project 1, the rest spread over 2..1000
PROJECT_OF = "(CASE WHEN {g} % 5 = 0 THEN 1 ELSE 2 + {g} % 999 END)"
POPULATE = [
    f"""INSERT INTO namespaces (id, name, path, type, visibility_level, created_at)
        SELECT g, 'Group ' || g, 'group' || g, 'Group', 0, now() FROM generate_series(1, {GROUPS}) g""",
    f"""INSERT INTO projects (id, name, path, namespace_id, visibility_level, public_builds, pending_delete, archived,
                             created_at)
        SELECT g, 'project' || g, 'project' || g, 1 + g % {GROUPS}, 0, true, false, false, now()
        FROM generate_series(1, {PROJECTS}) g""",
    f"""INSERT INTO p_ci_pipelines (id, project_id, ref, sha, before_sha, tag, source, status, locked, partition_id,
                                   created_at, started_at, finished_at, updated_at, iid)
        SELECT g, {PROJECT_OF.format(g="g")}, 'main', md5(g::text) || '00000000', repeat('0', 40), false, 'push',
               'success', 0, 100, t, t, t, t, g
        FROM generate_series(1, {PIPELINES}) g,
             LATERAL (SELECT now() - make_interval(secs => ({PIPELINES} - g) * {SPAN_SECONDS / PIPELINES})) AS w(t)""",
    f"""INSERT INTO p_ci_builds (id, project_id, commit_id, name, stage, stage_idx, status, ref, tag, "when",
                                allow_failure, options, partition_id, artifacts_expire_at, created_at, started_at,
                                finished_at)
        SELECT g, {PROJECT_OF.format(g="p")}, p, 'job' || (g % {JOBS_PER_PIPELINE}), 'test', 0, 'success', 'main',
               false, 'on_success', false, '{{}}'::json, 100,
               CASE WHEN g % 50 = 0 THEN NULL ELSE t + interval '30 days' END, t, t, t
        FROM generate_series(1, {JOBS}) g,
             LATERAL (SELECT 1 + (g - 1) / {JOBS_PER_PIPELINE}) AS q(p),
             LATERAL (SELECT now() - make_interval(secs => ({PIPELINES} - p) * {SPAN_SECONDS / PIPELINES})) AS w(t)""",
    # two a job: the archive (odd ids, ~1 MiB) and the log (even ids, ~10 KiB); the oldest third
    # written before housekeeping knew locks (unknown, 2), the rest unlocked
    f"""INSERT INTO p_ci_job_artifacts (id, project_id, job_id, partition_id, file_type, size, created_at, updated_at,
                                       expire_at, file, file_store, file_format, file_location, locked, accessibility)
        SELECT a.id, b.project_id, b.id, 100, CASE WHEN a.id % 2 = 1 THEN 1 ELSE 3 END,
               CASE WHEN a.id % 2 = 1 THEN 524288 + (a.id::bigint * 7919) % 1048576 ELSE 10240 + a.id % 4096 END,
               b.finished_at, b.finished_at, b.artifacts_expire_at,
               CASE WHEN a.id % 2 = 1 THEN 'artifacts.zip' ELSE 'job.log' END, 1,
               CASE WHEN a.id % 2 = 1 THEN 2 ELSE 1 END, 2,
               CASE WHEN b.id < {JOBS // 3} THEN 2 ELSE 0 END, 0
        FROM generate_series(1, {2 * JOBS}) AS a(id)
        JOIN p_ci_builds b ON b.id = (a.id + 1) / 2""",
    """INSERT INTO project_statistics (project_id, namespace_id, build_artifacts_size, storage_size)
        SELECT p.id, p.namespace_id, COALESCE(s.total, 0), COALESCE(s.total, 0)
        FROM projects p LEFT JOIN (SELECT project_id, sum(size) AS total FROM p_ci_job_artifacts GROUP BY project_id) s
          ON s.project_id = p.id""",
    "SELECT setval(pg_get_serial_sequence('namespaces', 'id'), (SELECT max(id) FROM namespaces))",
    "SELECT setval(pg_get_serial_sequence('projects', 'id'), (SELECT max(id) FROM projects))",
    "SELECT setval(pg_get_serial_sequence('p_ci_pipelines', 'id'), (SELECT max(id) FROM p_ci_pipelines))",
    "SELECT setval(pg_get_serial_sequence('p_ci_builds', 'id'), (SELECT max(id) FROM p_ci_builds))",
    "SELECT setval(pg_get_serial_sequence('p_ci_job_artifacts', 'id'), (SELECT max(id) FROM p_ci_job_artifacts))",
    "ANALYZE",
]


async def populate(db: Database) -> float:
    started = time.monotonic()
    await db.drop_all()
    await db.create_all()
    async with db.engine.begin() as conn:
        for statement in POPULATE[:-1]:
            await conn.execute(text(statement))
    async with db.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE"))
    return time.monotonic() - started


async def best_of(runs: int, work: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = await work()
        times.append(time.perf_counter() - started)
    return min(times), result


class Bench:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def session_call(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        async with self.db.session() as session:
            return await fn(session, *args)

    async def collect(self, gen: Any) -> int:
        return sum([1 async for _ in gen])


async def explain(db: Database, statement: Any) -> str:
    """PostgreSQL's plan of a SQLAlchemy statement, its index lines kept."""
    compiled = statement.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text(f"EXPLAIN {compiled}"))).all()
    return "\n".join(r[0] for r in rows)


async def erase_and_pipelines(timed: Any, bench: Bench, year_ago: Any, erase: Any, pipelines: Any) -> None:
    await timed(
        "erase old jobs, instance-wide: the totals",
        "admin erase-old-jobs --finished-before 1y (plan)",
        lambda: bench.session_call(erase.plan, year_ago, None),
        lambda p: f"{p.jobs:,} jobs",
    )
    await timed(
        "delete old pipelines, instance-wide: the totals",
        "admin delete-old-pipelines --finished-before 1y (plan)",
        lambda: bench.session_call(pipelines.plan, year_ago, None),
        lambda p: f"{p.pipelines:,} pipelines",
    )


async def main(url: str, runs: int) -> None:
    db = Database(url)
    print(f"populating {2 * JOBS:,} artifacts ...", file=sys.stderr)
    took = await populate(db)
    async with db.engine.connect() as conn:
        artifacts = (await conn.execute(text("SELECT count(*) FROM p_ci_job_artifacts"))).scalar_one()
    print(f"populated {artifacts:,} artifacts in {took:.1f} s", file=sys.stderr)
    bench = Bench(db)
    from app.state import AppState

    state = AppState(settings=None, db=db, store=None, secret=b"", raw_store=None)  # type: ignore[arg-type]
    now = clock.now()
    year_ago = now - timedelta(days=365)
    results: list[tuple[str, str, float, str]] = []

    async def timed(name: str, command: str, work: Callable[[], Awaitable[Any]], show: Callable[[Any], str]) -> None:
        seconds, result = await best_of(runs, work)
        results.append((name, command, seconds, show(result)))
        print(f"{name}: {seconds * 1000:.0f} ms", file=sys.stderr)

    await timed(
        "projects by total artifact size (top 20)",
        "admin projects-by-size",
        lambda: bench.session_call(by_build_artifacts_size, 20),
        lambda r: f"{len(r)} rows",
    )
    await timed(
        "largest artifacts in the largest project (50)",
        "admin largest-artifacts group2/project1",
        lambda: bench.session_call(largest_in_project, 1, 50),
        lambda r: f"{len(r)} rows of {JOBS * 2 // 5:,}",
    )
    await timed(
        "artifacts of a small project (50)",
        "admin project-artifacts group3/project2",
        lambda: bench.session_call(largest_in_project, 2, 50),
        lambda r: f"{len(r)} rows",
    )
    await timed(
        "builds whose artifacts never expire (50)",
        "admin builds-with-artifacts --never-expire",
        lambda: bench.session_call(with_artifacts_expiring, None, 50),
        lambda r: f"{len(r)} rows",
    )
    await timed(
        "builds whose artifacts expire after 7 days (50)",
        "admin builds-with-artifacts --expire-after 7d",
        lambda: bench.session_call(with_artifacts_expiring, now + timedelta(days=7), 50),
        lambda r: f"{len(r)} rows",
    )
    await timed(
        "delete old artifacts, instance-wide: the question's totals",
        "admin delete-old-artifacts --finished-before 1y (plan)",
        lambda: bench.session_call(delete_old_artifacts.plan, year_ago, None),
        lambda p: f"{p.jobs:,} jobs, {p.artifacts:,} artifacts",
    )
    await timed(
        "delete old artifacts in the largest project: the totals",
        "... --project group2/project1 (plan)",
        lambda: bench.session_call(delete_old_artifacts.plan, year_ago, 1),
        lambda p: f"{p.jobs:,} jobs",
    )
    await timed(
        "delete old artifacts, dry run of the first 1,000 jobs",
        "admin delete-old-artifacts --dry-run --limit 1000",
        lambda: bench.collect(delete_old_artifacts.run(state, year_ago, None, dry_run=True, limit=1000)),
        lambda n: f"{n:,} lines",
    )
    try:  # these two stand on Ci::BuildEraseService and Ci::DestroyPipelineService
        from app.services.admin import delete_old_pipelines, erase_old_builds
    except ImportError as exc:
        print(f"skipping the erase and pipeline totals: {exc}", file=sys.stderr)
    else:
        await erase_and_pipelines(timed, bench, year_ago, erase_old_builds, delete_old_pipelines)

    async def page_query() -> str:
        out = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "app", "dbconsole", "--database-url", url, "-c", PAGE_QUERY],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout

    await timed(
        "the page's unknown-artifacts SQL (dbconsole, psql)",
        "dbconsole -c '<the page's query>'",
        page_query,
        lambda out: f"{out.strip().splitlines()[-1]}",
    )

    async def cli() -> str:
        out = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "app", "admin", "largest-artifacts", "1", "--format", "json", "--database-url", url],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout

    await timed(
        "largest-artifacts end to end (a process, JSON)",
        "mockcoord admin largest-artifacts 1 --format json",
        cli,
        lambda out: f"{len(out):,} bytes",
    )

    print(f"\n{artifacts:,} artifacts, populated in {took:.0f} s; best of {runs}; {machine()}\n")
    print("| report | command | time | answer |\n|---|---|---:|---|")
    for name, command, seconds, answer in results:
        print(f"| {name} | `{command}` | {seconds * 1000:,.0f} ms | {answer} |")

    from sqlmodel import col, select

    from app.finders.builds_finder import with_downloadable_artifacts
    from app.models import Build, JobArtifact

    print("\nPlans:\n")
    plans = {
        "largest artifacts": select(JobArtifact)
        .where(JobArtifact.project_id == 1)
        .order_by(col(JobArtifact.size).desc().nulls_last(), col(JobArtifact.id))
        .limit(50),
        "never expire": select(Build.id)
        .where(with_downloadable_artifacts(), col(Build.artifacts_expire_at).is_(None))
        .order_by(col(Build.id))
        .limit(50),
    }
    for name, statement in plans.items():
        print(f"{name}:\n{await explain(db, statement)}\n")
    await db.dispose()


def machine() -> str:
    cpus = os.cpu_count()
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
        mem = next(line for line in lines if line.startswith("MemTotal")).split()[1]
        memory = f", {int(mem) // 1024 // 1024} GiB"
    except (OSError, StopIteration):
        memory = ""
    pg = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip() or "psql ?"
    return f"{platform.machine()}, {cpus} CPUs{memory}, Python {platform.python_version()}, {pg}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="a PostgreSQL SQLAlchemy URL; its tables are replaced")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        parser.error("--database-url must be PostgreSQL (postgresql+asyncpg://...)")
    asyncio.run(main(args.database_url, args.runs))
