"""pytest plugin (entry point ``mockcoord``): a real coordinator for your runner's tests.

``mockcoord_server`` starts the whole stack once per session (embedded S3, SQLite,
Rails, Workhorse) on free loopback ports, in a thread with its own event loop, so sync
and async tests alike can use it; ``coordinator`` resets it before each test.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

ADMIN_TOKEN = "glpat-mockcoord-pytest-admin"


@dataclass
class Clock:
    """The coordinator's clock: expiry, token lifetimes and ``pick_up_at`` read it."""

    _http: httpx.Client

    def now(self) -> str:
        return self._change(None)["now"]

    def advance(self, duration: str) -> str:
        """``"2 days"``, ``"90"`` (seconds), ``"1h30m"``: GitLab's duration syntax."""
        return self._change({"advance": duration})["now"]

    def set(self, when: str) -> str:
        return self._change({"set": when})["now"]

    def reset(self) -> str:
        return self._change({"reset": True})["now"]

    def _change(self, body: dict[str, Any] | None) -> dict[str, Any]:
        res = self._http.get("/-/mock/clock") if body is None else self._http.post("/-/mock/clock", json=body)
        _raise_for(res)
        return res.json()


@dataclass
class MockCoordinator:
    """A running mockcoord: ``url`` is the front door (Workhorse) runners talk to."""

    url: str
    admin_token: str
    _http: httpx.Client = field(repr=False)
    clock: Clock = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.clock = Clock(self._http)

    def seed(self, scenario: dict[str, Any] | str | Path) -> dict[str, Any]:
        """Load a scenario (a dict, or a YAML/JSON file); answers every id and token created."""
        if not isinstance(scenario, dict):
            scenario = yaml.safe_load(Path(scenario).read_text()) or {}
        res = self._http.post("/-/mock/seed", json=scenario)
        _raise_for(res)
        return res.json()

    def reset(self) -> None:
        _raise_for(self._http.post("/-/mock/reset"))

    def requests(self, **filters: Any) -> list[dict[str, Any]]:
        """Journal entries (``component``, ``method``, ``path`` regex, ``status``, ``correlation_id``,
        ``job_id``, ``limit``), oldest first."""
        res = self._http.get("/-/mock/requests", params={k: str(v) for k, v in filters.items()})
        _raise_for(res)
        return res.json()["requests"]

    def flow(self, correlation_id: str) -> str:
        """The Mermaid sequence diagram of one request."""
        res = self._http.get(f"/-/mock/flows/{correlation_id}")
        _raise_for(res)
        return res.text

    def fault(self, component: str, **rule: Any) -> dict[str, Any]:
        """Break requests on purpose: ``fault("rails", path="/artifacts$", status=503, times=2)``;
        see docs/control-plane.md for conditions and effects. A reset removes every rule."""
        res = self._http.post("/-/mock/faults", json={"component": component, **rule})
        _raise_for(res)
        return res.json()

    def job(self, seeded: dict[str, Any], name: str) -> dict[str, Any]:
        """The last job called ``name`` in a ``seed`` answer (id, token, status, ...)."""
        return next(j for j in reversed(seeded["jobs"]) if j["name"] == name)


class CoordinatorError(AssertionError):
    """The control plane refused a call; the message is the coordinator's."""


def _raise_for(res: httpx.Response) -> None:
    if res.status_code >= 400:
        raise CoordinatorError(f"{res.request.method} {res.request.url.path}: {res.status_code} {res.text}")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--mockcoord-storage",
        choices=["s3", "local"],
        default="s3",
        help="mockcoord's artifact storage: embedded S3 (default) or local disk",
    )


class _Background:
    """The stack's event loop in a daemon thread; stops when the session ends."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.ready: Future[str] = Future()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True, name="mockcoord")

    async def _main(self) -> None:
        from mockctl.stack import running_stack  # imported here: plugins load in every pytest run

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            # No cron schedule: tests move the clock, and housekeeping runs when they ask for it.
            async with running_stack(self.settings, cron=False) as stack:
                self.ready.set_result(stack.url)
                await self._stop.wait()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting test session
            if not self.ready.done():
                self.ready.set_exception(exc)

    def start(self) -> str:
        self._thread.start()
        return self.ready.result(timeout=60)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)


@pytest.fixture(scope="session")
def mockcoord_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MockCoordinator]:
    """One coordinator for the whole session (S3 by default; ``--mockcoord-storage=local``)."""
    from app.config import Settings
    from mockctl.ports import free_port

    storage = request.config.getoption("mockcoord_storage")
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("mockcoord"),
        admin_token=ADMIN_TOKEN,
        workhorse_port=free_port(),
        rails_port=free_port(),
        s3_port=free_port(),
        object_store={"enabled": storage == "s3"},
    )
    background = _Background(settings)
    url = background.start()
    with httpx.Client(base_url=url, headers={"PRIVATE-TOKEN": ADMIN_TOKEN}, timeout=60) as http:
        yield MockCoordinator(url, ADMIN_TOKEN, http)
    background.stop()


@pytest.fixture
def coordinator(mockcoord_server: MockCoordinator) -> MockCoordinator:
    """The session's coordinator, emptied (database, storage, journal, clock) for this test."""
    mockcoord_server.reset()
    return mockcoord_server
