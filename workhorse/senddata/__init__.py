"""Gitlab-Workhorse-Send-Data injectors: Rails names a source, Workhorse streams it."""

from urllib.parse import urlsplit

from workhorse.httpio import Request
from workhorse.upstream import State


def record_fetch(
    state: State, req: Request, method: str, url: str, started: float, outcome: dict[str, int], note: str
) -> None:
    """The object-storage call an injector made, told to the instrument as Workhorse's own."""
    state.instrument.called_storage(
        method,
        urlsplit(url).path,
        correlation_id=req.request_id,
        started=started,
        status=outcome["status"],
        bytes_out=outcome["bytes"],
        note=note,
    )
