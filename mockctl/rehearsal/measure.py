"""What is left after a step.

Per step: expired artifacts by their own ``locked``, unknown ones in all, the deleted-object
queue and how much of it is ready. Counting a million expired rows takes ~0.1 s, too long to do
after each of the ~1,500 runs of three simulated days, so ``Tally`` keeps the artifact counts
with triggers of the rehearsal's own (a statement trigger on PostgreSQL, row triggers on SQLite)
against a boundary time it moves to each fire time, counting only the rows that expired since;
``counts`` (a full count) checks it at the end. At the start, the window's start and the end, a
join over every expired row sorts them by what will become of them (``fates``), for the forecast.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col
from sqlmodel.sql.sqltypes import UTCDateTime

from app.db import Database
from app.lib import feature
from app.models import ArtifactLocked, Build, DeletedObject, JobArtifact, Pipeline


@dataclass(frozen=True)
class Counts:
    expired_unlocked: int
    expired_locked: int
    expired_unknown: int
    unknown_total: int
    queue_length: int
    queue_ready: int

    @property
    def expired_total(self) -> int:
        return self.expired_unlocked + self.expired_locked + self.expired_unknown

    def as_row(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"expired_total": self.expired_total}


async def counts(db: Database, now: datetime, conn: AsyncConnection | None = None) -> Counts:
    """Everything counted from the tables (the check on ``Tally``)."""
    a, d = JobArtifact, DeletedObject

    def expired(state: ArtifactLocked):  # type: ignore[no-untyped-def]
        return select(func.count()).where(a.locked == state, col(a.expire_at) < now).scalar_subquery()

    query = select(
        expired(ArtifactLocked.unlocked),
        expired(ArtifactLocked.artifacts_locked),
        expired(ArtifactLocked.unknown),
        select(func.count()).where(a.locked == ArtifactLocked.unknown).scalar_subquery(),
        select(func.count()).select_from(d).scalar_subquery(),
        select(func.count()).where(col(d.pick_up_at) < now).scalar_subquery(),
    )
    if conn is not None:
        row = (await conn.execute(query)).one()
    else:
        async with db.reads.connect() as fresh:
            row = (await fresh.execute(query)).one()
    return Counts(*(int(v) for v in row))


TALLY = "mockcoord_rehearsal_tally"
BOUNDARY = "mockcoord_rehearsal_boundary"
_metadata = MetaData()
tally_table = Table(TALLY, _metadata, Column("name", String(32), primary_key=True), Column("n", BigInteger))
boundary_table = Table(BOUNDARY, _metadata, Column("id", Integer, primary_key=True), Column("at", UTCDateTime()))
STATES = (ArtifactLocked.unlocked, ArtifactLocked.artifacts_locked, ArtifactLocked.unknown)

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION {TALLY}_fn() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE b timestamptz;
BEGIN
  SELECT at INTO b FROM {BOUNDARY} WHERE id = 1;
  IF TG_OP IN ('DELETE', 'UPDATE') THEN
    UPDATE {TALLY} t SET n = t.n - d.k FROM (
      SELECT 'expired_' || locked AS name, count(*) AS k FROM old_rows WHERE expire_at < b GROUP BY locked
      UNION ALL SELECT 'unknown', count(*) FROM old_rows WHERE locked = 2) d
    WHERE t.name = d.name;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE {TALLY} t SET n = t.n + d.k FROM (
      SELECT 'expired_' || locked AS name, count(*) AS k FROM new_rows WHERE expire_at < b GROUP BY locked
      UNION ALL SELECT 'unknown', count(*) FROM new_rows WHERE locked = 2) d
    WHERE t.name = d.name;
  END IF;
  RETURN NULL;
END $$"""
_PG_TRIGGERS = {
    "del": "AFTER DELETE ON p_ci_job_artifacts REFERENCING OLD TABLE AS old_rows",
    "upd": "AFTER UPDATE ON p_ci_job_artifacts REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "ins": "AFTER INSERT ON p_ci_job_artifacts REFERENCING NEW TABLE AS new_rows",
}


def _sqlite_change(row: str, sign: str) -> str:
    boundary = f"(SELECT at FROM {BOUNDARY} WHERE id = 1)"
    return (
        f"UPDATE {TALLY} SET n = n {sign} 1 WHERE name = 'expired_' || {row}.locked AND {row}.expire_at < {boundary}; "
        f"UPDATE {TALLY} SET n = n {sign} 1 WHERE name = 'unknown' AND {row}.locked = 2; "
    )


_SQLITE_TRIGGERS = {
    "del": f"AFTER DELETE ON p_ci_job_artifacts BEGIN {_sqlite_change('OLD', '-')}END",
    "upd": "AFTER UPDATE OF locked, expire_at ON p_ci_job_artifacts "
    f"BEGIN {_sqlite_change('OLD', '-')}{_sqlite_change('NEW', '+')}END",
    "ins": f"AFTER INSERT ON p_ci_job_artifacts BEGIN {_sqlite_change('NEW', '+')}END",
}


class Tally:
    """Expired artifacts by ``locked`` and unknown ones in all, kept by triggers as rows change,
    and moved on in time by counting only the rows that expired since the last boundary.

    The workers only ever touch rows that have expired, and the boundary is moved to a fire time
    before its worker runs, so every change they make passes the triggers with the boundary
    where the counts stand."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.at: datetime | None = None

    async def install(self, at: datetime) -> None:
        await self.uninstall()
        async with self.db.engine.begin() as conn:
            await conn.run_sync(_metadata.create_all)
            await conn.execute(boundary_table.insert().values(id=1, at=at))
            exact = await counts(self.db, at, conn)
            await conn.execute(
                tally_table.insert(),
                [
                    {"name": "expired_0", "n": exact.expired_unlocked},
                    {"name": "expired_1", "n": exact.expired_locked},
                    {"name": "expired_2", "n": exact.expired_unknown},
                    {"name": "unknown", "n": exact.unknown_total},
                ],
            )
            if self.db.is_sqlite:
                for name, body in _SQLITE_TRIGGERS.items():
                    await conn.execute(text(f"CREATE TRIGGER {TALLY}_{name} {body}"))
            else:
                await conn.execute(text(_PG_FUNCTION))
                for name, body in _PG_TRIGGERS.items():
                    await conn.execute(
                        text(f"CREATE TRIGGER {TALLY}_{name} {body} FOR EACH STATEMENT EXECUTE FUNCTION {TALLY}_fn()")
                    )
        self.at = at

    async def uninstall(self) -> None:
        async with self.db.engine.begin() as conn:
            for name in _PG_TRIGGERS:
                on = "" if self.db.is_sqlite else " ON p_ci_job_artifacts"
                await conn.execute(text(f"DROP TRIGGER IF EXISTS {TALLY}_{name}{on}"))
            if not self.db.is_sqlite:
                await conn.execute(text(f"DROP FUNCTION IF EXISTS {TALLY}_fn()"))
            await conn.run_sync(_metadata.drop_all)
        self.at = None

    async def advance(self, at: datetime) -> None:
        """Moves the boundary to ``at``: the rows that expired meanwhile join the counts."""
        assert self.at is not None and at >= self.at
        a = JobArtifact
        async with self.db.engine.begin() as conn:
            for state in STATES:
                newly = (
                    select(func.count())
                    .where(a.locked == state, col(a.expire_at) >= self.at, col(a.expire_at) < at)
                    .scalar_subquery()
                )
                await conn.execute(
                    update(tally_table)
                    .where(tally_table.c.name == f"expired_{state:d}")
                    .values(n=tally_table.c.n + newly)
                )
            await conn.execute(update(boundary_table).where(boundary_table.c.id == 1).values(at=at))
        self.at = at

    async def read(self) -> Counts:
        assert self.at is not None
        d = DeletedObject
        query = select(
            select(tally_table.c.n).where(tally_table.c.name == "expired_0").scalar_subquery(),
            select(tally_table.c.n).where(tally_table.c.name == "expired_1").scalar_subquery(),
            select(tally_table.c.n).where(tally_table.c.name == "expired_2").scalar_subquery(),
            select(tally_table.c.n).where(tally_table.c.name == "unknown").scalar_subquery(),
            select(func.count()).select_from(d).scalar_subquery(),
            select(func.count()).where(col(d.pick_up_at) < self.at).scalar_subquery(),
        )
        async with self.db.reads.connect() as conn:
            row = (await conn.execute(query)).one()
        return Counts(*(int(v) for v in row))


@dataclass(frozen=True)
class Fates:
    """Expired artifacts by what the workers rehearsed do with them."""

    expired: int
    locked: int  # kept: locked (by their own column, or by the pipeline when expiry joins it)
    unknown_idle: int  # unknown, and the backlog worker is off: nobody looks at them
    drainable: int  # some worker destroys them, if it reaches them
    unknown_to_lock: int  # unknown of a locked pipeline: the backlog worker will lock them (kept)


async def fates(db: Database, now: datetime) -> Fates:
    """Classifies every expired artifact by (its ``locked``, its pipeline's ``locked``) and the
    flags in force: fast expiry (``ci_destroy_unlocked_job_artifacts``) goes by the artifact's
    column, the slow walk (15.2 and before) by the pipeline's, whatever the row says; with fast
    expiry the backlog worker destroys unknown rows of unlocked pipelines and locks the others."""
    a = JobArtifact
    query = (
        select(a.locked, Pipeline.locked, func.count())
        .select_from(a)
        .join(Build, col(Build.id) == a.job_id)
        .join(Pipeline, col(Pipeline.id) == Build.commit_id)
        .where(col(a.expire_at) < now)
        .group_by(a.locked, Pipeline.locked)
    )
    async with db.session() as session:
        fast = await feature.enabled(session, "ci_destroy_unlocked_job_artifacts")
        backlog = await feature.enabled(session, "ci_job_artifacts_backlog_work")
        rows = (await session.exec(query)).all()  # type: ignore[call-overload]
    expired = locked = unknown_idle = drainable = to_lock = 0
    for artifact_locked, pipeline_locked, n in rows:
        expired += n
        pipeline_unlocked = pipeline_locked == ArtifactLocked.unlocked
        if not fast:  # the slow walk goes by the pipeline's lock, whatever the row's own column says
            if pipeline_unlocked:
                drainable += n
            else:
                locked += n
        elif artifact_locked == ArtifactLocked.unknown:
            if not backlog:
                unknown_idle += n
            elif pipeline_unlocked:
                drainable += n
            else:
                to_lock += n
        elif artifact_locked == ArtifactLocked.unlocked:
            drainable += n
        else:
            locked += n
    return Fates(expired, locked, unknown_idle, drainable, to_lock)


async def real_objects_left(store, keys: list[str]) -> int:  # type: ignore[no-untyped-def]
    """How many of the objects written are still in the store: one listing pass."""
    wanted = set(keys)
    left = 0
    async for page in store.list("", max_keys=1000):
        left += sum(1 for info in page if info.key in wanted)
    return left


class Autovacuum:
    """What PostgreSQL's autovacuum (and, for SQLite, a periodic ``ANALYZE``) would have done over
    the simulated days: the workers delete rows by the million, and with planner statistics from
    before the drain PostgreSQL picks a sequential scan for "100 expired unlocked rows", reading
    the whole table when there are none (170 ms a query with 200,000 rows left, 500 queries a
    run). A simulated day passes in minutes, faster than any server's autovacuum keeps up (and
    some run with it off), so after each step the tables the workers churn are vacuumed and
    analyzed by autovacuum's own default thresholds: dead rows over 20% of the table (+50),
    changed rows since the last analyze over 10% (+50)."""

    TABLES = ("p_ci_job_artifacts", "ci_deleted_objects", "p_ci_builds", "project_statistics")

    def __init__(self, db: Database) -> None:
        self.db = db
        self.runs = 0
        self.seconds = 0.0
        self._changed = 0  # SQLite: rows changed since the last ANALYZE, as the steps report them
        self._rows = 0

    async def after(self, changed: int) -> None:
        began = time.perf_counter()
        if self.db.is_sqlite:
            self._changed += changed
            if self._changed > 0.1 * self._rows + 50:
                async with self.db.engine.begin() as conn:
                    await conn.execute(text("ANALYZE"))
                    rows = await conn.execute(select(func.count()).select_from(JobArtifact))
                    self._rows = int(rows.scalar_one())
                self._changed = 0
                self.runs += 1
            self.seconds += time.perf_counter() - began
            return
        names = ", ".join(f"'{t}'" for t in self.TABLES)
        due = text(
            "SELECT s.relname, s.n_dead_tup > 0.2 * greatest(c.reltuples, 0) + 50, "
            "s.n_mod_since_analyze > 0.1 * greatest(c.reltuples, 0) + 50 "
            f"FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid WHERE s.relname IN ({names})"
        )
        async with self.db.engine.connect() as conn:
            work = [
                f"{'VACUUM ANALYZE' if vacuum else 'ANALYZE'} {table}"
                for table, vacuum, analyze in (await conn.execute(due)).all()
                if vacuum or analyze
            ]
        if work:
            async with self.db.engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                for statement in work:
                    await conn.execute(text(statement))
            self.runs += 1
        self.seconds += time.perf_counter() - began
