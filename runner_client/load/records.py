"""Every request a Locust process makes, one JSON line each in the file the orchestrator reads
(``--mockcoord-records``), and the user count once a second. Standalone, lines are written as
requests end; distributed, each worker sends its lines with its stats report and the master
writes them, so the file is whole on the master's machine whatever the number of workers."""

from __future__ import annotations

import json
import time
from typing import IO, Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import WorkerRunner

from runner_client.responses import ArtifactsError

KEY = "mockcoord_records"
_pending: list[dict[str, Any]] = []
_out: list[IO[str]] = []


def failure_kind(exception: BaseException | None) -> str | None:
    """``verify`` (wrong bytes), ``runner: <FATAL reason>``, or the exception's class."""
    if exception is None:
        return None
    if isinstance(exception, ArtifactsError):
        return f"runner: {exception}"
    return getattr(exception, "kind", None) or type(exception).__name__


def _write(lines: list[dict[str, Any]]) -> None:
    if _out:
        _out[0].write("".join(json.dumps(line) + "\n" for line in lines))
        _out[0].flush()


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--mockcoord-plan", default="", help="the load plan (JSON), from mockcoord loadtest")
    parser.add_argument("--mockcoord-records", default="", help="where the master (or a lone process) writes records")


@events.init.add_listener
def _start(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    path = environment.parsed_options.mockcoord_records if environment.parsed_options else ""
    if path:
        _out.append(open(path, "a"))  # noqa: SIM115 - open for the life of the process
        gevent.spawn(_count_users, environment)


def _count_users(environment: Environment) -> None:
    while True:
        runner = environment.runner
        if runner is not None and runner.state in ("spawning", "running"):
            _write([{"t": time.time(), "users": runner.user_count}])
        gevent.sleep(1.0)


@events.request.add_listener
def _request(
    request_type: str,
    name: str,
    response_time: float,
    response_length: int,
    exception: BaseException | None = None,
    context: dict[str, Any] | None = None,
    start_time: float | None = None,
    **_: Any,
) -> None:
    context = context or {}
    line = {
        "start": start_time,
        "rt": response_time,
        "type": request_type,
        "name": name,
        "len": response_length,
        "kind": failure_kind(exception),
        "error": None if exception is None else str(exception),
        "retries": context.get("retries", 0),
        "waited": context.get("waited", 0.0),
    }
    if _out:
        _write([line])
    else:
        _pending.append(line)


@events.report_to_master.add_listener
def _send(client_id: str, data: dict[str, Any]) -> None:
    data[KEY] = _pending[:]
    _pending.clear()


@events.worker_report.add_listener
def _receive(client_id: str, data: dict[str, Any]) -> None:
    _write(data.get(KEY, []))
