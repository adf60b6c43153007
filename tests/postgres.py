"""PostgreSQL databases beside the test one: each pytest-xdist worker's, the rehearsals', scale-out's.

Tests that need a database of their own name it after ``MOCKCOORD_TEST_DATABASE_URL``'s, which
under pytest-xdist is already the worker's (``test_gw0``), so two workers never share one.
"""

from __future__ import annotations

import asyncio
import os
import socket
from concurrent.futures import ThreadPoolExecutor

import asyncpg
from sqlalchemy.engine import make_url


def reachable(url: str) -> bool:
    parsed = make_url(url)
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 5432), timeout=2):
            return True
    except OSError:
        return False


def _run(sql: list[str], url: str, unless_exists: str | None = None) -> None:
    """Runs outside any event loop of the caller's (pytest-asyncio's stays the current one)."""

    async def run() -> None:
        conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
        try:
            if unless_exists and await conn.fetchval("select 1 from pg_database where datname = $1", unless_exists):
                return
            for statement in sql:
                await conn.execute(statement)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def database_beside(url: str, suffix: str, *, empty: bool = False) -> str:
    """The URL of ``<database>_<suffix>`` on the same server, created if missing (recreated if ``empty``)."""
    name = f"{make_url(url).database}_{suffix}"
    create = f'CREATE DATABASE "{name}"'
    if empty:
        _run([_drop(name), create], url)
    else:
        _run([create], url, unless_exists=name)
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_beside(url: str, suffix: str) -> None:
    _run([_drop(f"{make_url(url).database}_{suffix}")], url)


def _drop(name: str) -> str:
    return f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'


def claim_for_xdist_worker() -> None:
    """Point this pytest-xdist worker at a database of its own, so workers never empty each other's."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    given = os.environ.get("MOCKCOORD_TEST_DATABASE_URL", "")
    if worker and given.startswith("postgresql") and reachable(given):
        os.environ["MOCKCOORD_TEST_DATABASE_URL"] = database_beside(given, worker)
