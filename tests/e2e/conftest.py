"""The whole stack on loopback: Workhorse in front of Rails, moto S3 or local disk behind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mockctl.ports import free_port
from mockctl.reset import reset
from mockctl.workhorse import create_app
from tests.conftest import Coordinator, serve_app
from workhorse.config import WorkhorseSettings


@dataclass
class Stack:
    rails: Coordinator
    url: str
    log_file: Path
    client: httpx.AsyncClient


@pytest.fixture(scope="session")
async def stack_session(rails: Coordinator, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    log_file = tmp_path_factory.mktemp("workhorse") / "workhorse.log"
    conn = rails.settings.object_store.connection
    settings = WorkhorseSettings(
        listen_port=free_port(),
        rails_url=rails.url,
        secret_file=rails.settings.secret_file,
        s3_access_key_id=conn.aws_access_key_id,
        s3_secret_access_key=conn.aws_secret_access_key,
        log_file=log_file,
    )
    server, task = await serve_app(create_app(settings), settings.listen_port)
    url = f"http://127.0.0.1:{settings.listen_port}"
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        yield Stack(rails, url, log_file, client)
    server.should_exit = True
    await task


@pytest.fixture
async def stack(stack_session: Stack) -> AsyncIterator[Stack]:
    await reset(stack_session.rails.state)
    yield stack_session
