"""mockcoord's instrument in Workhorse: fault rules and the request journal, plugged into the
one seam Workhorse offers (``workhorse.instrumentation``).

``python -m mockctl.workhorse`` is the Workhorse ``mockcoord serve`` runs; ``python -m workhorse``
is plain Workhorse, without either. Settings come from ``MOCKCOORD_WORKHORSE_*`` as for plain
Workhorse.
"""

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from mockctl.asgi import apply
from mockctl.faults import SYNC_HEADER, FaultRegistry, InjectedCut, decode_rules, storage_fault
from mockctl.shared_faults import SharedFaultRegistry
from mockctl.workhorse_journal import CLEARING, FLOWS_PREFIX, JOURNAL_HEADER, REQUESTS_PATH, Journal
from workhorse import heap
from workhorse.__main__ import run as run_plain
from workhorse.__main__ import uvicorn_options
from workhorse.app import Workhorse
from workhorse.app import create_app as create_plain_app
from workhorse.config import WorkhorseSettings
from workhorse.httpio import Headers, Receive, Request, Send
from workhorse.instrumentation import Instrument, Serve, StorageAnswer, StorageCut

SETTINGS_VAR = "MOCKCOORD_WORKHORSE_PROCESS_SETTINGS"  # run_processes hands its workers their settings


class MockInstrument(Instrument):
    """The ``workhorse`` and ``storage`` rules Rails hands over, and Workhorse's part of the journal."""

    def __init__(self, journal_limit: int, faults_file: Path | None = None) -> None:
        self.journal = Journal(journal_limit)
        self.faults = FaultRegistry() if faults_file is None else SharedFaultRegistry(faults_file)

    async def front_door(self, scope: dict[str, Any], receive: Receive, send: Send, serve: Serve) -> None:
        rule = None
        if not scope["path"].startswith("/-/"):  # the control plane is never faulted
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            rule = self.faults.fire("workhorse", scope["method"], scope["path"], headers)
        if rule is None:
            await serve(scope, receive, send)
            return
        await apply(rule, serve, scope, receive, send)
        if rule.status is not None or rule.drop:  # answered without reaching Workhorse: journal it here
            self.journal.record(
                "workhorse",
                scope["method"],
                scope["path"],
                correlation_id="",
                started=time.time(),
                status=rule.status or 0,
                query=scope.get("query_string", b"").decode("latin-1"),
                note=f"fault {rule.id}",
            )

    def forwarding(self, req: Request) -> Headers:
        """``GET /-/mock/flows/<id>``: hand Rails Workhorse's entries for that correlation id."""
        if req.method == "GET" and req.path.startswith(FLOWS_PREFIX):
            return [(JOURNAL_HEADER, self.journal.flow_header(req.path.removeprefix(FLOWS_PREFIX)))]
        return []

    async def relaying(self, req: Request, response: httpx.Response) -> bytes | None:
        """Take the rules Rails hands over (the header never reaches the client), and add
        Workhorse's entries to ``GET /-/mock/requests``."""
        if sync := response.headers.get(SYNC_HEADER):
            self.faults.replace(decode_rules(sync))
            del response.headers[SYNC_HEADER]
        if req.method == "GET" and req.path == REQUESTS_PATH and response.status_code == 200:
            return self.journal.merge_into(await response.aread(), req.query)
        return None

    def served(self, req: Request, *, status: int, started: float, bytes_in: int, bytes_out: int) -> None:
        if (req.method, req.path) in CLEARING and status < 300:
            self.journal.clear()
            return
        self.journal.record(
            "workhorse",
            req.method,
            req.path,
            query=req.query,
            headers=req.headers,
            correlation_id=req.request_id,
            started=started,
            status=status,
            bytes_in=bytes_in,
            bytes_out=bytes_out,
        )

    async def calling_storage(self, method: str, path: str) -> StorageAnswer | None:
        try:
            rule = await storage_fault(self.faults, method, path)
        except InjectedCut as exc:
            raise StorageCut(str(exc)) from None
        return StorageAnswer(rule.status, rule.error) if rule is not None and rule.status is not None else None

    def called_storage(self, method: str, path: str, **fields: Any) -> None:
        self.journal.record("storage", method, path, via="workhorse", **fields)


def create_app(settings: WorkhorseSettings) -> Workhorse:
    """Workhorse with mockcoord's instrument: what ``mockcoord serve`` puts at the front door."""
    return create_plain_app(settings, MockInstrument(settings.journal_limit, settings.faults_file))


def run(settings: WorkhorseSettings) -> None:
    """Serve the instrumented Workhorse until interrupted, as ``python -m workhorse`` serves plain Workhorse."""
    run_plain(settings, MockInstrument(settings.journal_limit, settings.faults_file))


def create_from_env() -> Workhorse:
    """The factory each of uvicorn's workers calls (``mockcoord workhorse --processes``)."""
    heap.limit_arenas()
    return create_app(WorkhorseSettings.model_validate_json(os.environ[SETTINGS_VAR]))


def run_processes(settings: WorkhorseSettings, processes: int) -> None:
    """uvicorn's own workers on one socket (restarted when one dies), sharing the fault rules
    Rails hands any of them through a file of their own."""
    with tempfile.TemporaryDirectory(prefix="mockcoord-workhorse-") as shared:
        settings = settings.model_copy(update={"faults_file": Path(shared) / "faults.json"})
        os.environ[SETTINGS_VAR] = settings.model_dump_json()
        uvicorn.run(f"{__name__}:create_from_env", factory=True, workers=processes, **uvicorn_options(settings))


if __name__ == "__main__":
    run(WorkhorseSettings())
