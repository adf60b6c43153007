"""``POST /-/mock/reset``: an empty instance again, database and storage alike."""

from __future__ import annotations

from app.fixtures import bootstrap
from app.services.git import repositories
from app.services.object_storage.delete_stale_direct_uploads_service import abort_incomplete_uploads
from app.state import AppState
from app.workers import scheduler
from mockctl import shared_state
from mockctl.instrument import instrument


async def reset(state: AppState) -> None:
    """The bootstrap rows are written in the transaction that empties the tables: requests
    running meanwhile find the admin token, the old one or the new."""
    instrument(state).faults.clear()  # first: a storage fault must not stop the bucket from being emptied
    await shared_state.forget(state)  # real time (before the bootstrap rows are stamped), the configured release
    await scheduler.forget_claims(state)  # the clock starts again: so do the cron fire times
    async with state.db.emptied() as session:
        await bootstrap(session, state.settings.admin_token)
    async with state.db.session() as session:
        await abort_incomplete_uploads(state, session)  # in no listing, so clear() would miss them
    await state.store.clear()
    await repositories.remove_all(state.settings)
    state.settings.uploads_path.mkdir(parents=True, exist_ok=True)
    instrument(state).journal.clear()
