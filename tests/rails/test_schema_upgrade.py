"""A database left by an older mockcoord (a column missing): the embedded store's throwaway data is
recreated, a configured store's is never dropped unasked."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from app.config import Settings
from app.db import Database
from app.main import start, stop
from mockctl.instrument import RailsInstrument
from mockctl.ports import free_port


async def old_database(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}"
    db = Database(url)
    await db.create_all()
    async with db.engine.begin() as conn:
        await conn.execute(text('ALTER TABLE "p_ci_builds" DROP COLUMN "retried"'))
    assert await db.stale_tables() == ["p_ci_builds (retried)"]
    await db.dispose()
    return url


async def test_a_configured_store_keeps_its_rows_and_is_told_why(tmp_path: Path) -> None:
    url = await old_database(tmp_path)
    settings = Settings(data_dir=tmp_path, database_url=url, object_store={"enabled": False})
    with pytest.raises(RuntimeError) as refused:
        await start(settings, RailsInstrument(settings))
    assert "was made by an older mockcoord (p_ci_builds (retried) missing)" in str(refused.value)
    assert "give it an empty database" in str(refused.value)
    db = Database(url)
    assert await db.stale_tables() == ["p_ci_builds (retried)"]  # untouched
    await db.dispose()


async def test_the_embedded_store_recreates_the_tables(tmp_path: Path) -> None:
    url = await old_database(tmp_path)
    settings = Settings(
        data_dir=tmp_path, database_url=url, embedded_s3=True, s3_port=free_port()
    )  # 3002 may be anyone's
    state = await start(settings, RailsInstrument(settings))
    try:
        assert await state.db.stale_tables() == []
    finally:
        await stop(state)
