"""The backlog, built by the database itself: one ``INSERT ... SELECT`` over a series a table
(``generate_series`` on PostgreSQL, a recursive CTE on SQLite), never a Python loop over rows.

The shape (every attribute a pure function of the row's number, so a population is the same on
both databases and from run to run):

- ``--projects`` projects in one group; ``--refs`` refs spread over them; pipelines in
  chronological order, the k-th on ref ``(k - 1) % refs``, five jobs each, two artifacts a job
  (``archive`` zip, ``metadata`` gzip: the unique ``(job_id, file_type)`` holds).
- Expiry: the oldest ``--expired-share`` of the pipelines expired, spread over the
  ``--past-days`` before the start, the oldest furthest back; the rest expire over the
  ``--future-days`` after it. Jobs of a pipeline a minute apart, microseconds scattered.
- Locks: the latest pipeline of each ref is ``artifacts_locked`` (keep-latest); of the older
  ones a ``--locked-share`` are locked too (keep-latest never unlocked them), spread evenly over
  time. Artifacts copy their pipeline's lock, except the oldest ``--unknown-share`` of the
  pipelines, whose artifacts are ``unknown`` (2): rows from before 15.0.
- Sizes: archives 1 KiB plus up to 64 MiB (cubed, so most are small), metadata up to 16 KiB;
  ``build_artifacts_size`` is their sum by project.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import Database
from app.models import ArtifactLocked, FileFormat, FileStore, FileType
from mockctl.rehearsal.options import ARTIFACTS_PER_JOB, JOBS_PER_PIPELINE, RehearsalOptions

CHUNK = 500_000  # rows a statement: progress to show, and no statement holds the whole WAL
EXPIRE_IN = 30 * 86400  # ``default_artifacts_expire_in``
MARGIN = 300  # the newest expired row expires at least this long before the start
GOLDEN = 0.6180339887498949  # Weyl sequences: evenly spread, the same on both databases
SQRT2 = 0.4142135623730951
SQRT3 = 0.7320508075688772
SQRT5 = 0.2360679774997898
ARCHIVE_SPAN = 64 * 1024 * 1024
METADATA_SPAN = 16 * 1024
ZERO_SHA = "0" * 40


@dataclass(frozen=True)
class Population:
    projects: int
    pipelines: int
    jobs: int
    artifacts: int
    seconds: float
    first_artifact_id: int  # the artifacts are ids first_artifact_id + 1 .. + artifacts


class _Sql:
    """The few places PostgreSQL and SQLite differ, as SQL text."""

    def __init__(self, sqlite: bool) -> None:
        self.sqlite = sqlite

    def series(self, lo: int, hi: int) -> tuple[str, str]:
        """(prefix, source) making rows ``s.i`` for i in lo..hi."""
        if self.sqlite:
            return f"WITH RECURSIVE s(i) AS (SELECT {lo} UNION ALL SELECT i + 1 FROM s WHERE i < {hi}) ", "s"
        return "", f"generate_series({lo}, {hi}) AS s(i)"

    def frac(self, expr: str, alpha: float) -> str:
        """A number in [0, 1), evenly spread over consecutive ``expr``."""
        if self.sqlite:
            return f"(({expr}) * {alpha!r} - CAST(({expr}) * {alpha!r} AS INTEGER))"
        return f"(({expr}) * {alpha!r}::float8 - floor(({expr}) * {alpha!r}::float8))"

    def timestamp(self, epoch: str) -> str:
        """A time from epoch seconds, as SQLAlchemy stores an aware datetime there (SQLite: the
        UTC text ``YYYY-MM-DD HH:MM:SS.ffffff`` its DateTime writes, so comparisons agree)."""
        if self.sqlite:
            whole = f"CAST(({epoch}) AS INTEGER)"
            micro = f"CAST((({epoch}) - {whole}) * 1000000 AS INTEGER)"
            return f"(strftime('%Y-%m-%d %H:%M:%S', {whole}, 'unixepoch') || '.' || printf('%06d', {micro}))"
        return f"to_timestamp({epoch})"

    def boolean(self, value: bool) -> str:
        return ("1" if value else "0") if self.sqlite else ("true" if value else "false")

    def floor_int(self, expr: str) -> str:
        """The integer part (a cast alone rounds on PostgreSQL and truncates on SQLite)."""
        return f"CAST({expr} AS INTEGER)" if self.sqlite else f"floor({expr})::bigint"

    def idiv(self, a: str, b: int) -> str:
        return f"(({a}) / {b})"  # integers on both: PostgreSQL and SQLite truncate


class Shape:
    """Each attribute as SQL over a row number; see the module's docstring."""

    def __init__(self, opts: RehearsalOptions, start: datetime, sql: _Sql) -> None:
        self.sql = sql
        self.start = start.timestamp()
        self.pipelines = opts.pipelines
        self.jobs = opts.jobs
        self.artifacts = opts.artifacts
        self.refs = opts.refs
        self.projects = opts.projects
        self.expired = round(self.pipelines * opts.expired_share)
        self.unknown = round(self.pipelines * opts.unknown_share)
        self.locked_share = opts.locked_share
        self.past = opts.past_days * 86400
        self.future = opts.future_days * 86400
        # created this long before expiry: ``default_artifacts_expire_in`` (30 days), or longer when
        # expiries reach further ahead, so that nothing is created after the start
        self.expire_in = max(EXPIRE_IN, self.future + 2 * MARGIN)

    # pipelines, by k in 1..pipelines
    def ref_index(self, k: str) -> str:
        return f"((({k}) - 1) % {self.refs})"

    def project(self, k: str) -> str:
        return f"({self.ref_index(k)} % {self.projects} + 1)"

    def ref_name(self, k: str) -> str:
        r = self.ref_index(k)
        return f"(CASE WHEN {r} < {self.projects} THEN 'main' ELSE 'branch-' || {r} END)"

    def pipeline_locked(self, k: str) -> str:
        latest = self.pipelines - self.refs
        return (
            f"(CASE WHEN ({k}) > {latest} THEN {ArtifactLocked.artifacts_locked:d} "
            f"WHEN {self.sql.frac(k, GOLDEN)} < {self.locked_share!r} THEN {ArtifactLocked.artifacts_locked:d} "
            f"ELSE {ArtifactLocked.unlocked:d} END)"
        )

    def expire_base(self, k: str) -> str:
        """Epoch seconds: expired ones before the start (oldest furthest), the rest after it."""
        expired, later = max(self.expired, 1), max(self.pipelines - self.expired, 1)
        return (
            f"(CASE WHEN ({k}) <= {self.expired} "
            f"THEN {self.start - MARGIN!r} - {self.past!r} * ({expired} - ({k})) / {expired} "
            f"ELSE {self.start + MARGIN!r} + {self.future!r} * (({k}) - {self.expired} - 1) / {later} END)"
        )

    # jobs, by j in 1..jobs
    def pipeline_of(self, j: str) -> str:
        return f"({self.sql.idiv(f'({j}) - 1', JOBS_PER_PIPELINE)} + 1)"

    def job_expire(self, j: str) -> str:
        k = self.pipeline_of(j)
        return f"({self.expire_base(k)} + ((({j}) - 1) % {JOBS_PER_PIPELINE}) * 60 + {self.sql.frac(j, SQRT2)})"

    def job_created(self, j: str) -> str:
        return f"({self.job_expire(j)} - {self.expire_in!r})"

    # artifacts, by i in 1..artifacts
    def job_of(self, i: str) -> str:
        return self.sql.idiv(f"({i}) + {ARTIFACTS_PER_JOB - 1}", ARTIFACTS_PER_JOB)

    def artifact_locked(self, i: str) -> str:
        k = self.pipeline_of(self.job_of(i))
        return f"(CASE WHEN {k} <= {self.unknown} THEN {ArtifactLocked.unknown:d} ELSE {self.pipeline_locked(k)} END)"

    def is_archive(self, i: str) -> str:
        return f"(({i}) % {ARTIFACTS_PER_JOB} = 1)"

    def size(self, i: str) -> str:
        u = self.sql.frac(i, SQRT3)
        return (
            f"(CASE WHEN {self.is_archive(i)} THEN 1024 + {self.sql.floor_int(f'{u} * {u} * {u} * {ARCHIVE_SPAN}')} "
            f"ELSE 256 + {self.sql.floor_int(f'{self.sql.frac(i, SQRT5)} * {METADATA_SPAN}')} END)"
        )


async def _next_id(conn: AsyncConnection, table: str) -> int:
    return int((await conn.execute(text(f'SELECT coalesce(max(id), 0) FROM "{table}"'))).scalar_one())


async def populate(
    db: Database,
    opts: RehearsalOptions,
    start: datetime,
    storage_remote: bool,
    say: Callable[[str], None] = lambda _line: None,
) -> Population:
    """Writes the population into an empty (bootstrapped) database; ``say`` hears each table."""
    sql = _Sql(db.is_sqlite)
    shape = Shape(opts, start, sql)
    began = time.perf_counter()
    async with db.engine.begin() as conn:
        ns0, proj0, pipe0, job0, art0 = [
            await _next_id(conn, t)
            for t in ("namespaces", "projects", "p_ci_pipelines", "p_ci_builds", "p_ci_job_artifacts")
        ]
        ns_id = ns0 + 1
        created = sql.timestamp(repr(shape.start))
        await conn.execute(
            text(
                "INSERT INTO namespaces (id, name, path, type, visibility_level, created_at) "
                f"VALUES ({ns_id}, 'rehearsal', 'rehearsal', 'Group', 0, {created})"
            )
        )
        prefix, source = sql.series(1, opts.projects)
        await conn.execute(
            text(
                "INSERT INTO projects (id, name, path, namespace_id, visibility_level, public_builds, pending_delete, "
                f"archived, created_at) {prefix}SELECT {proj0} + i, 'project-' || i, 'project-' || i, {ns_id}, 0, "
                f"{sql.boolean(True)}, {sql.boolean(False)}, {sql.boolean(False)}, {created} FROM {source}"
            )
        )
        say(f"projects: {opts.projects:,}")
        for lo, hi in _chunks(opts.pipelines):
            prefix, source = sql.series(lo, hi)
            first_job = f"((i - 1) * {JOBS_PER_PIPELINE} + 1)"
            made = sql.timestamp(shape.job_created(first_job))
            finished = sql.timestamp(f"{shape.job_created(first_job)} + 600")
            await conn.execute(
                text(
                    "INSERT INTO p_ci_pipelines (id, project_id, ref, sha, before_sha, tag, source, status, locked, "
                    "partition_id, created_at, started_at, finished_at, iid, updated_at, duration) "
                    f"{prefix}SELECT {pipe0} + i, {proj0} + {shape.project('i')}, {shape.ref_name('i')}, "
                    f"'{ZERO_SHA}', '{ZERO_SHA}', {sql.boolean(False)}, 'push', 'success', "
                    f"{shape.pipeline_locked('i')}, 100, {made}, {made}, {finished}, i, {finished}, 600 "
                    f"FROM {source}"
                )
            )
        say(f"pipelines: {opts.pipelines:,}")
        for lo, hi in _chunks(opts.jobs):
            prefix, source = sql.series(lo, hi)
            k = shape.pipeline_of("i")
            made = sql.timestamp(shape.job_created("i"))
            await conn.execute(
                text(
                    "INSERT INTO p_ci_builds (id, project_id, commit_id, name, stage, stage_idx, status, ref, tag, "
                    '"when", allow_failure, options, partition_id, artifacts_expire_at, created_at, started_at, '
                    "finished_at) "
                    f"{prefix}SELECT {job0} + i, {proj0} + {shape.project(k)}, {pipe0} + {k}, "
                    f"'job-' || ((i - 1) % {JOBS_PER_PIPELINE} + 1), 'test', 0, 'success', {shape.ref_name(k)}, "
                    f"{sql.boolean(False)}, 'on_success', {sql.boolean(False)}, '{{}}', 100, "
                    f"{sql.timestamp(shape.job_expire('i'))}, {made}, {made}, {made} FROM {source}"
                )
            )
        say(f"jobs: {opts.jobs:,}")
        store = FileStore.REMOTE if storage_remote else FileStore.LOCAL
        for lo, hi in _chunks(opts.artifacts):
            prefix, source = sql.series(lo, hi)
            j = shape.job_of("i")
            k = shape.pipeline_of(j)
            made = sql.timestamp(shape.job_created(j))
            archive = shape.is_archive("i")
            await conn.execute(
                text(
                    "INSERT INTO p_ci_job_artifacts (id, project_id, job_id, partition_id, file_type, size, "
                    "created_at, updated_at, expire_at, file, file_store, file_format, file_location, locked, "
                    "accessibility) "
                    f"{prefix}SELECT {art0} + i, {proj0} + {shape.project(k)}, {job0} + {j}, 100, "
                    f"CASE WHEN {archive} THEN {FileType.archive:d} ELSE {FileType.metadata:d} END, {shape.size('i')}, "
                    f"{made}, {made}, {sql.timestamp(shape.job_expire(j))}, "
                    f"CASE WHEN {archive} THEN 'artifacts.zip' ELSE 'metadata.gz' END, {store:d}, "
                    f"CASE WHEN {archive} THEN {FileFormat.zip:d} ELSE {FileFormat.gzip:d} END, 2, "
                    f"{shape.artifact_locked('i')}, 0 FROM {source}"
                )
            )
            say(f"artifacts: {hi:,} of {opts.artifacts:,}")
        await conn.execute(
            text(
                "INSERT INTO project_statistics (project_id, namespace_id, build_artifacts_size, storage_size) "
                f"SELECT p.id, {ns_id}, coalesce(sum(a.size), 0), coalesce(sum(a.size), 0) FROM projects p "
                f"LEFT JOIN p_ci_job_artifacts a ON a.project_id = p.id WHERE p.id > {proj0} GROUP BY p.id"
            )
        )
        if not db.is_sqlite:  # explicit ids: the sequences move past them
            for table in ("namespaces", "projects", "p_ci_pipelines", "p_ci_builds", "p_ci_job_artifacts"):
                await conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
                )
    await analyze(db)
    say("statistics: build_artifacts_size by project")
    return Population(
        opts.projects, opts.pipelines, opts.jobs, opts.artifacts, time.perf_counter() - began, first_artifact_id=art0
    )


async def analyze(db: Database) -> None:
    """Fresh planner statistics (and, on PostgreSQL, the visibility map index-only counts use)."""
    if db.is_sqlite:
        async with db.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
        return
    async with db.engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("p_ci_pipelines", "p_ci_builds", "p_ci_job_artifacts", "project_statistics"):
            await conn.execute(text(f"VACUUM ANALYZE {table}"))


def _chunks(total: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + CHUNK - 1, total)) for lo in range(1, total + 1, CHUNK)] if total else []


def expected_chunks(total: int) -> int:
    return math.ceil(total / CHUNK)
