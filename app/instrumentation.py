"""The one seam through which mockcoord's instrument (``mockctl``) reaches Rails.

GitLab's Rails knows nothing of a request journal, fault injection or an embedded object
store; mockcoord's instrument needs to watch and perturb it all the same. Rather than Rails
importing the instrument, Rails offers these hooks (in the spirit of
``ActiveSupport::Notifications``) and ``mockctl.rails`` plugs an ``Instrument`` in when it
builds the app. ``app.main.create_app(settings)`` alone is plain Rails: every hook below
does nothing.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

    from app.config import Settings
    from app.storage import ArtifactStore

_steps: ContextVar[list[str] | None] = ContextVar("instrumentation_steps", default=None)


def note_step(text: str) -> None:
    """Name a step Rails took for the current request, in GitLab's words (flow diagrams)."""
    steps = _steps.get()
    if steps is not None:
        steps.append(text)


def collect_steps() -> list[str]:
    """Start collecting steps for the current request; the list fills as the request runs."""
    steps: list[str] = []
    _steps.set(steps)
    return steps


class Instrument:
    """Plain Rails: no routes added, the store as it is, nothing recorded."""

    def install(self, app: FastAPI) -> None:
        """Add routes and middleware to the Rails app before it serves."""

    async def start(self, settings: Settings) -> None:
        """Before the database opens: start what the settings point Rails at."""

    def owns_data(self) -> bool:
        """True when what Rails stores lives only as long as the instrument (an in-memory
        object store): then a stale schema is recreated and rows left from an earlier run are
        removed at start, since they would point at objects that are gone."""
        return False

    async def started(self, state: Any) -> None:
        """Rails has opened its database and store (``state``: its ``AppState``, which imports
        this module) and is about to serve."""

    def wrap_store(self, store: ArtifactStore) -> ArtifactStore:
        """The store Rails uses; the instrument may watch or perturb its calls."""
        return store

    async def stop(self) -> None:
        """Rails has stopped."""

    def direct_download_url(self, request: Request, method: str, key: str, expires_in: int) -> str | None:
        """Where a direct download's 302 points instead of a real presigned URL, or None."""
        return None

    def ends_run_on_empty_pass(self) -> bool:
        """A housekeeping loop's pass found nothing: True ends the run there. GitLab's runs go on
        to their loop limit (plain Rails: False); a rehearsal, where nothing else writes while a
        worker runs, knows every later pass of the run would find nothing too."""
        return False

    def readiness_checks(self) -> dict[str, list[dict[str, str]]]:
        """Entries ``/-/readiness`` adds to its own, for parts Rails cannot see (Workhorse,
        a separate process in front of it): ``{"workhorse_check": [{"status": "ok"}]}``."""
        return {}
