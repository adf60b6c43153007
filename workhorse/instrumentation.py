"""The one seam through which an instrument observes and perturbs Workhorse.

GitLab's Workhorse has no fault injection and no request journal: those are mockcoord's
instrument (``mockctl``), not Workhorse. Workhorse calls these hooks at the few points where
the instrument needs it and never imports the instrument; the defaults do nothing, which is
plain Workhorse (``python -m workhorse``). ``mockctl.workhorse`` plugs the real one in.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from workhorse.httpio import Headers, Receive, Request, Send

Serve = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


class StorageCut(Exception):
    """The instrument cut Workhorse's connection to object storage (the message says how)."""


@dataclass(frozen=True)
class StorageAnswer:
    """What object storage should seem to answer, instead of Workhorse making the call."""

    status: int
    error: str | None = None  # the failure a write reports, e.g. ``invalid argument``


class Instrument:
    """Plain Workhorse: every hook lets the request through and observes nothing."""

    async def front_door(self, scope: dict[str, Any], receive: Receive, send: Send, serve: Serve) -> None:
        """Each HTTP request, before routing: ``serve`` it, or answer, delay or cut it instead.
        Called with uvicorn's own ``send``, so the connection itself is within reach."""
        await serve(scope, receive, send)

    def forwarding(self, req: Request) -> Headers:
        """Headers to add to a request Workhorse forwards to Rails as it is."""
        return []

    async def relaying(self, req: Request, response: httpx.Response) -> bytes | None:
        """Rails' answer, before Workhorse relays it: the body to send instead (None: Rails' own).
        Headers meant for the instrument may be taken out of ``response.headers`` here."""
        return None

    def served(self, req: Request, *, status: int, started: float, bytes_in: int, bytes_out: int) -> None:
        """A request Workhorse answered (``started``: wall-clock seconds), before its last byte goes out."""

    async def calling_storage(self, method: str, path: str) -> StorageAnswer | None:
        """Before each of Workhorse's own object-storage calls: may wait, raise ``StorageCut``, or
        return the answer the store should seem to give (None: make the call)."""
        return None

    def called_storage(
        self,
        method: str,
        path: str,
        *,
        correlation_id: str,
        started: float,
        status: int,
        bytes_in: int = 0,
        bytes_out: int = 0,
        note: str = "",
    ) -> None:
        """One of Workhorse's own object-storage calls, done (``note``: the client mode or injector)."""
