"""Workhorse as a component: real uvicorn servers on free loopback ports, a stub Rails, moto S3."""

import base64
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import uvicorn
from moto.server import ThreadedMotoServer

from tests.workhorse.stub_rails import StubRails
from workhorse.app import create_app
from workhorse.config import WorkhorseSettings

BUCKET = "artifacts"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerThread:
    """uvicorn in its own thread and loop, so tests may block without stalling the servers."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@dataclass
class Env:
    """Everything a Workhorse test touches."""

    workhorse: str
    rails: StubRails
    rails_url: str
    s3: Any
    s3_endpoint: str
    temp_path: Path
    log_file: Path
    key: bytes

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line.strip()]

    def objects(self) -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]

    def multipart_uploads(self) -> list[str]:
        return [u["Key"] for u in self.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port())
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _workhorse_settings(tmp: Path, key_file: Path, rails_url: str, **overrides: Any) -> WorkhorseSettings:
    return WorkhorseSettings(
        rails_url=rails_url,
        secret_file=key_file,
        log_file=tmp / "workhorse.log",
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
        **overrides,
    )


@pytest.fixture(scope="session")
def session_env(tmp_path_factory: pytest.TempPathFactory, moto_server: str) -> Iterator[Env]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    tmp = tmp_path_factory.mktemp("workhorse")
    key = os.urandom(32)
    key_file = tmp / ".gitlab_workhorse_secret"
    key_file.write_text(base64.b64encode(key).decode() + "\n")
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket=BUCKET)
    temp_path = tmp / "uploads"
    temp_path.mkdir()
    rails = StubRails(key=key, s3=s3, bucket=BUCKET, s3_endpoint=moto_server, temp_path=str(temp_path))
    with ServerThread(rails.app()) as rails_server:
        settings = _workhorse_settings(tmp, key_file, rails_server.url)
        with ServerThread(create_app(settings)) as workhorse:
            yield Env(workhorse.url, rails, rails_server.url, s3, moto_server, temp_path, settings.log_file, key)


@pytest.fixture
def env(session_env: Env) -> Env:
    """The shared servers, with the stub reset and S3/TempPath emptied between tests."""
    session_env.rails.reset()
    for key in session_env.objects():
        session_env.s3.delete_object(Bucket=BUCKET, Key=key)
    session_env.log_file.write_text("")
    return session_env


@pytest.fixture
def client(env: Env) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=env.workhorse, timeout=30) as c:
        yield c


@pytest.fixture
def workhorse_with(session_env: Env, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Starts another Workhorse before the same stub Rails, with these settings changed; its URL."""
    key_file = tmp_path / "secret"
    key_file.write_text(base64.b64encode(session_env.key).decode())
    with ExitStack() as servers:

        def start(**overrides: Any) -> str:
            settings = _workhorse_settings(tmp_path, key_file, session_env.rails_url, **overrides)
            return servers.enter_context(ServerThread(create_app(settings))).url

        yield start


@pytest.fixture
def limited_workhorse(session_env: Env, workhorse_with: Callable[..., str]) -> str:
    """A second Workhorse with NGINX's client_max_body_size set to 1 KiB."""
    session_env.rails.reset()
    return workhorse_with(client_max_body_size=1024)
