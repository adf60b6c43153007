"""What ``gitlab-rails console`` and ``gitlab-rake`` load: the instance's settings, database and
(when asked) object store, without serving anything.

The administrator's commands (``mockcoord rake``, ``dbconsole``, ``admin``) work on the
database of an instance that ``mockcoord serve`` (or ``rails``) made, as GitLab's console works
on GitLab's: they find it through the same settings (``--data-dir``, ``--database-url``,
``MOCKCOORD_*``), and read the time from the instance's mock clock (``mockctl.shared_state``), so
"a year ago" is the instance's year. They never create or drop tables: a missing or outdated
database is one line saying so (``InstanceError``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from app.config import Settings
from app.db import Database
from app.lib import gitlab_version
from app.state import AppState
from app.storage import ArtifactStore, StorageError, open_store
from mockctl import shared_state


class InstanceError(RuntimeError):
    """The instance cannot be opened; the message is one line naming where it looked."""


def display_url(settings: Settings) -> str:
    """The database URL as it may be shown (password hidden)."""
    return make_url(settings.resolved_database_url).render_as_string()


def sqlite_path(settings: Settings) -> Path | None:
    url = make_url(settings.resolved_database_url)
    return Path(url.database or "") if url.get_backend_name() == "sqlite" else None


class UnopenedStore:
    """Stands in for an object store the console was not asked to open: any use says so."""

    remote = False

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __getattr__(self, name: str) -> object:
        raise StorageError(f"{self.reason} (store.{name})")

    async def close(self) -> None:
        return None


async def check_database(db: Database, settings: Settings) -> None:
    """The tables a mockcoord of this version made, else ``InstanceError``."""
    path = sqlite_path(settings)
    if path is not None and not path.is_file():
        raise InstanceError(
            f"no mockcoord database at {path} (start `mockcoord serve` once, or give --data-dir / --database-url)"
        )
    try:
        async with db.engine.connect() as conn:
            has = await conn.run_sync(lambda c: inspect(c).has_table("p_ci_job_artifacts"))
        stale = await db.stale_tables() if has else []
    except (SQLAlchemyError, OSError) as exc:
        raise InstanceError(f"database {display_url(settings)}: {str(exc).splitlines()[0]}") from None
    if not has:
        raise InstanceError(f"database {display_url(settings)} has no mockcoord tables (start `mockcoord serve` once)")
    if stale:
        raise InstanceError(
            f"database {display_url(settings)} was made by an older mockcoord ({'; '.join(stale)} missing); "
            "start `mockcoord serve` on it to recreate its tables"
        )


def store_settings(settings: Settings) -> Settings:
    """The settings to reach the instance's bucket from another process: with the embedded S3
    (no endpoint configured) that is the server ``serve`` runs on ``s3_port``."""
    if not settings.embedded_s3:
        return settings
    host = settings.host if settings.binds_only_loopback() else "127.0.0.1"  # mockctl.embedded_s3's choice
    reached = settings.model_copy(deep=True)
    reached.object_store.connection.endpoint = f"http://{host}:{settings.s3_port}"
    return reached


@asynccontextmanager
async def console_state(settings: Settings, *, with_store: bool = False) -> AsyncIterator[AppState]:
    """An ``AppState`` on the instance's database. ``with_store``: the instance's object store
    too, when it answers; otherwise (and when not asked) a stand-in that says why at first use,
    so work that needs no file (two-phase deletion writes rows only) runs all the same."""
    gitlab_version.configure(settings.gitlab_version)
    db = Database(settings.resolved_database_url)
    store: ArtifactStore | None = None
    try:
        await check_database(db, settings)
        reason = "this command does not open object storage"
        if with_store:
            try:
                store = await open_store(store_settings(settings))
            except Exception as exc:  # noqa: BLE001 - any client error: the stand-in names it
                reason = f"object storage is unreachable ({str(exc).splitlines()[0]}): is `mockcoord serve` running?"
        if store is None:
            store = cast(ArtifactStore, UnopenedStore(reason))
        state = AppState(settings=settings, db=db, store=store, secret=b"", raw_store=store)
        # The mock clock and release the control plane set, as every process of the instance sees
        # them (a database from before the shared state: real time).
        with contextlib.suppress(SQLAlchemyError):
            await shared_state.load(state)
        yield state
    finally:
        if store is not None:
            await store.close()
        await db.dispose()
