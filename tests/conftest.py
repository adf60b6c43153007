"""Shared fixtures: a real moto S3 server, a real database, the Rails app on a real port.

The database comes from ``MOCKCOORD_TEST_DATABASE_URL`` (default: a SQLite file per
run; under pytest-xdist, each worker's PostgreSQL database of its own, ``test_gw0``...).
A PostgreSQL URL that cannot be reached skips those tests with the reason,
except under ``CI=true``, where it fails the run.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from app.config import Settings
from app.db import Database
from app.state import AppState
from app.workhorse_api import sign
from mockctl.embedded_s3 import EmbeddedS3
from mockctl.ports import free_port
from mockctl.rails import create_app
from mockctl.reset import reset
from tests import postgres

pytest_plugins = ["pytester"]

ADMIN_TOKEN = "glpat-test-admin-token"


def database_url(tmp: Path) -> str:
    return os.environ.get("MOCKCOORD_TEST_DATABASE_URL") or f"sqlite+aiosqlite:///{tmp / 'test.sqlite3'}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="Run only the tests that use the test database (``db_url``): .ci/run's second leg, on "
        "PostgreSQL, where the others would repeat the first leg's run exactly.",
    )


def pytest_configure(config: pytest.Config) -> None:
    postgres.claim_for_xdist_worker()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--database-tests-only"):
        return
    kept = [item for item in items if "db_url" in getattr(item, "fixturenames", ())]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = database_url(tmp_path_factory.mktemp("db"))
    if url.startswith("postgresql") and not postgres.reachable(url):
        message = f"PostgreSQL at {url} is unreachable"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true requires it)")
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def s3_server() -> Iterator[EmbeddedS3]:
    server = EmbeddedS3().start()
    yield server
    server.stop()


@dataclass
class Coordinator:
    """The Rails app serving on loopback, with helpers to play admin and Workhorse."""

    url: str
    state: AppState
    client: httpx.AsyncClient

    @property
    def settings(self) -> Settings:
        return self.state.settings

    def workhorse_headers(self, **extra: str) -> dict[str, str]:
        return {
            "Gitlab-Workhorse": "v17.0.0-test",
            "Gitlab-Workhorse-Api-Request": sign({"iat": int(time.time())}, self.state.secret),
            **extra,
        }

    async def seed(self, scenario: dict[str, Any]) -> dict[str, Any]:
        res = await self.client.post("/-/mock/seed", json=scenario, headers={"PRIVATE-TOKEN": ADMIN_TOKEN})
        assert res.status_code == 201, res.text
        return res.json()


async def serve_app(app: Any, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server did not start")
        await asyncio.sleep(0.01)
    return server, task


def make_settings(tmp: Path, db_url: str, storage: str, s3: EmbeddedS3, **extra: Any) -> Settings:
    object_store: dict[str, Any] = {
        "enabled": storage == "s3",
        "connection": {"endpoint": s3.endpoint},
        "objects": {"artifacts": {"bucket": f"artifacts-{tmp.name.lower()}"}},
    }
    object_store.update(extra.pop("object_store", {}))
    return Settings(data_dir=tmp, database_url=db_url, admin_token=ADMIN_TOKEN, object_store=object_store, **extra)


@pytest.fixture(scope="session", params=["s3", "local"])
async def rails(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, db_url: str, s3_server: EmbeddedS3
) -> AsyncIterator[Coordinator]:
    tmp = tmp_path_factory.mktemp(f"rails-{request.param}")
    settings = make_settings(tmp, db_url, request.param, s3_server)
    fresh = Database(db_url)
    await fresh.drop_all()
    await fresh.dispose()
    app = create_app(settings)
    port = free_port()
    server, task = await serve_app(app, port)
    state: AppState = app.state.mockcoord
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield Coordinator(url, state, client)
    server.should_exit = True
    await task


@pytest.fixture
async def coordinator(rails: Coordinator) -> AsyncIterator[Coordinator]:
    """An empty instance (bootstrap rows only) for each test."""
    await reset(rails.state)
    yield rails
