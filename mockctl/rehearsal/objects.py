"""``--objects N``: real small objects at the keys of the first N artifacts, so that
``Ci::DeleteObjectsService`` has something to remove and its pace against the store is real.

The artifacts are spread over every state by construction (their attributes are evenly spread
over ids), so the objects are too: some belong to rows that stay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from sqlmodel import col, select

from app.db import Database
from app.models import JobArtifact
from app.storage import ArtifactStore
from app.uploaders.job_artifact_uploader import artifact_key

PAGE = 5_000
CONCURRENCY = 32
BODY = b"rehearsal\n"


async def write_objects(
    db: Database, store: ArtifactStore, first_id: int, count: int, say: Callable[[str], None] = lambda _l: None
) -> list[str]:
    """Writes ``count`` objects, pages of artifacts at a time; answers their keys."""
    keys: list[str] = []
    limit = asyncio.Semaphore(CONCURRENCY)

    async def put(key: str) -> None:
        async with limit:
            await store.put_bytes(key, BODY)

    last = first_id
    while len(keys) < count:
        async with db.session() as session:
            page = list(
                (
                    await session.exec(
                        select(JobArtifact)
                        .where(col(JobArtifact.id) > last)
                        .order_by(col(JobArtifact.id))
                        .limit(min(PAGE, count - len(keys)))
                    )
                ).all()
            )
        if not page:
            break
        last = page[-1].id or last
        page_keys = [artifact_key(a) for a in page]
        await asyncio.gather(*(put(k) for k in page_keys))
        keys.extend(page_keys)
        say(f"objects: {len(keys):,} of {count:,}")
    return keys
