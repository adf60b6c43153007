"""One Rails app on local storage for the administrator's tools (the CLI works on its database)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app import clock
from mockctl.embedded_s3 import EmbeddedS3
from mockctl.ports import free_port
from mockctl.rails import create_app
from mockctl.reset import reset
from tests.conftest import Coordinator, make_settings, serve_app


@pytest.fixture(scope="session")
async def admin_rails(
    tmp_path_factory: pytest.TempPathFactory, db_url: str, s3_server: EmbeddedS3
) -> AsyncIterator[Coordinator]:
    import httpx

    from app.db import Database

    tmp = tmp_path_factory.mktemp("admin")
    settings = make_settings(tmp, db_url, "local", s3_server)
    fresh = Database(db_url)
    await fresh.drop_all()
    await fresh.dispose()
    app = create_app(settings)
    server, task = await serve_app(app, free_port())
    url = f"http://127.0.0.1:{server.config.port}"
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield Coordinator(url, app.state.mockcoord, client)
    server.should_exit = True
    await task


@pytest.fixture
async def admin(admin_rails: Coordinator) -> AsyncIterator[Coordinator]:
    """An empty instance for each test; the clock back to real time afterwards."""
    await reset(admin_rails.state)
    yield admin_rails
    clock.reset()
