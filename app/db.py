"""The database: one async engine per process, SQLite file by default, PostgreSQL by URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from app import models  # registers the tables


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: AsyncEngine = create_async_engine(url, connect_args={"timeout": 30})
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_async_engine(url, pool_size=10, max_overflow=20)
        # Single-statement reads on PostgreSQL skip BEGIN/ROLLBACK: two round trips fewer on
        # the hot path. (SQLite has no round trips to save; measured slower there.)
        self.reads = self.engine if self.is_sqlite else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.sessionmaker = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

    async def create_all(self) -> None:
        """Missing tables, and the ``ci_job_artifacts`` view (made with its table; here too for a
        database whose table an earlier mockcoord made without it)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)
            await conn.execute(text(models.CREATE_CI_JOB_ARTIFACTS_VIEW[conn.dialect.name]))

    async def stale_tables(self) -> list[str]:
        """Tables an older mockcoord made: ``name (missing, columns)`` for each that lacks a model column
        (``create_all`` adds missing tables, never missing columns)."""

        def check(conn: Connection) -> list[str]:
            found = inspect(conn)
            stale = []
            for table in SQLModel.metadata.sorted_tables:
                if not found.has_table(table.name):
                    continue
                have = {column["name"] for column in found.get_columns(table.name)}
                if missing := [c.name for c in table.columns if c.name not in have]:
                    stale.append(f"{table.name} ({', '.join(missing)})")
            return stale

        async with self.engine.connect() as conn:
            return await conn.run_sync(check)

    async def drop_all(self) -> None:
        """Every table, and the view over the artifacts table first (PostgreSQL refuses to drop a
        table a view depends on; a database an older mockcoord made may hold the view alone)."""
        async with self.engine.begin() as conn:
            await conn.execute(text(models.DROP_CI_JOB_ARTIFACTS_VIEW))
            await conn.run_sync(SQLModel.metadata.drop_all)

    @asynccontextmanager
    async def emptied(self) -> AsyncIterator[AsyncSession]:
        """A session in the transaction that empties every table and restarts ids: what it adds
        commits with the emptying when the block ends (its own ``commit()`` does not end that
        transaction), so a concurrent reader finds the old rows or the new ones, never none.

        On PostgreSQL, DELETE in one script: TRUNCATE of every table costs ~75 ms (new
        relfilenodes) and locks readers out; DELETE of a test-sized instance takes a few."""
        tables = [t.name for t in SQLModel.metadata.sorted_tables]
        deletes = [f'DELETE FROM "{name}"' for name in reversed(tables)]
        async with self.engine.begin() as conn:
            if self.is_sqlite:
                for statement in deletes:
                    await conn.execute(text(statement))
                has_seq = await conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"))
                if has_seq.first():
                    await conn.execute(text("DELETE FROM sqlite_sequence"))
            else:
                # Through SQLAlchemy first: that opens the transaction the script then runs in
                # (sequences are not transactional either way).
                restarts = [f"setval(pg_get_serial_sequence('\"{name}\"', 'id'), 1, false)" for name in tables]
                await conn.execute(text(f"SELECT {', '.join(restarts)}"))
                raw = await conn.get_raw_connection()
                await raw.driver_connection.execute(";\n".join(deletes))
            async with AsyncSession(bind=conn, expire_on_commit=False) as session:
                yield session

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
