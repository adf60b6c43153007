"""``Projects::FinalizeProjectStatisticsRefreshWorker``: scheduled ten minutes after a refresh's
last batch (``perform_in(FINALIZE_DELAY, record_class, id)``); moves the refresh sum into the
counter and destroys the refresh. Nothing when the record is gone or of a class it does not know."""

from __future__ import annotations

from typing import Any

from app.services.projects import build_artifacts_size_refresh as refreshes
from app.workers.application_worker import ApplicationWorker


class FinalizeProjectStatisticsRefreshWorker(ApplicationWorker):
    job_class = refreshes.FINALIZE_WORKER

    async def perform(self, record_class: str, record_id: int) -> dict[str, Any]:
        if record_class != refreshes.RECORD_CLASS:  # ``const_defined?``: only the refresh is known here
            return {}
        async with self.state.db.session() as session:
            amount = await refreshes.finalize(session, int(record_id))
        if amount is None:
            return {}
        return self.done({"record_class": record_class, "record_id": record_id, "build_artifacts_size": amount})
