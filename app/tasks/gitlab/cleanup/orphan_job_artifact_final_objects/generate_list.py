"""``GenerateList`` (``generate_list.rb``, ``batch_from_storage.rb``, ``paginators/``): page
through the artifacts bucket 200 keys at a time and write ``key,size`` for every ``@final``
object that neither a job artifact (``file_final_path``) nor a pending direct upload names.

An interrupted scan resumes from the page marker saved after each page (GitLab's Redis key,
TTL one week); the file is appended to, so the page being processed when the task died is
listed again (duplicate rows, as on GitLab). ``FORCE_RESTART`` ignores the marker and
truncates the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
from typing import IO

from sqlmodel import col, select

from app.lib.shared_state import SharedState
from app.models import JobArtifact, PendingDirectUpload
from app.storage.base import ObjectInfo
from app.tasks.rake import RakeEnvironment, RakeError

DEFAULT_FILENAME = "orphan_job_artifact_final_objects.csv"
LAST_PAGE_MARKER_REDIS_KEY = "orphan-job-artifact-objects-cleanup-last-page-marker"
MARKER_TTL = 604_800  # one week (86400 * 7), GitLab's
BATCH_SIZE = 200  # Paginators::BasePaginator::BATCH_SIZE (5 in Rails development)
# GitLab picks a fog paginator by provider; mockcoord's store speaks the S3 API whichever is named,
# so every provider pages as ``Paginators::Aws`` does (marker = last key, stop on an empty page).
PROVIDERS = ("google", "aws", "azurerm")


class UnsupportedProviderError(Exception):
    pass


def determine_provider(provided: str | None, configured: str) -> str:
    """``GenerateList#determine_paginator!``: the task's argument, else the configured provider."""
    provider = provided if provided is not None else configured
    if provider.lower() in PROVIDERS:
        return provider.lower()
    if provided is not None and provided.strip():
        raise UnsupportedProviderError(
            f"The provided provider is unsupported. Please select from {', '.join(PROVIDERS)}."
        )
    raise UnsupportedProviderError(
        "The provider found in the object storage configuration is unsupported.\n"
        f"Please re-run the task and specify a provider from {', '.join(PROVIDERS)},\n"
        "whichever is compatible with your provider's object storage API.\"\n"
    )


def path_without_bucket_prefix(key: str, bucket_prefix: str) -> str:
    """``Pathname.new(key).relative_path_from(bucket_prefix.to_s)``: the path ``file_final_path``
    and pending uploads hold (``../...`` for a key outside the prefix)."""
    if "//" not in key and "/." not in key and not key.startswith("."):  # nothing to normalize
        if not bucket_prefix:
            return key
        if key.startswith(bucket_prefix):
            return key[len(bucket_prefix) :]
    return posixpath.relpath(key, bucket_prefix.rstrip("/") or ".")


def in_final_location(path: str) -> bool:
    return "/@final/" in path


class BatchFromStorage:
    """One listed page: its ``@final`` objects, minus those with an artifact row, minus those
    with a pending direct upload, sorted by key."""

    def __init__(self, env: RakeEnvironment, page: list[ObjectInfo], bucket_prefix: str) -> None:
        self.env, self.page, self.bucket_prefix = env, page, bucket_prefix

    async def orphan_objects(self) -> list[ObjectInfo]:
        objects = {
            path_without_bucket_prefix(o.key, self.bucket_prefix): o for o in self.page if in_final_location(o.key)
        }
        if not objects:
            return []
        db = await self.env.db()
        async with db.reads.connect() as conn:
            for path in (
                await conn.execute(
                    select(JobArtifact.file_final_path).where(col(JobArtifact.file_final_path).in_(list(objects)))
                )
            ).scalars():
                objects.pop(path, None)
            if objects:
                for path in (
                    await conn.execute(
                        select(PendingDirectUpload.path).where(
                            PendingDirectUpload.location_identifier == "artifacts",
                            col(PendingDirectUpload.path).in_(list(objects)),
                        )
                    )
                ).scalars():
                    objects.pop(path, None)
        return sorted(objects.values(), key=lambda o: o.key)


class GenerateList:
    def __init__(
        self,
        env: RakeEnvironment,
        provider: str | None = None,
        filename: str | None = None,
        force_restart: bool = False,
    ) -> None:
        self.env = env
        self.provider = determine_provider(provider, env.settings.object_store.connection.provider)
        self.filename = filename or DEFAULT_FILENAME
        self.force_restart = force_restart
        self.bucket_prefix = env.settings.object_store.artifacts_bucket_prefix
        self.logger = env.logger
        self.file: IO[str] | None = None

    async def run(self) -> None:
        self.logger.info("Looking for orphan job artifact objects under the `@final` directories")
        try:
            self.file = open(self.filename, "w+" if self.force_restart else "a+")  # noqa: SIM115, ASYNC230 (closed below; a local file)
        except OSError as exc:
            raise RakeError(f"{exc.strerror} @ rb_sysopen - {self.filename}") from None
        try:
            await self._each_batch()
            self.logger.info(f"Done. All orphan objects are listed in {self.filename}.")
        finally:
            self.file.close()

    async def _each_batch(self) -> None:
        state = SharedState(await self.env.db(), self.env.settings.redis_url)
        marker = await self._resume_from_last_page_marker(state)
        bucket = await self.env.bucket()
        self.env.progress.start("Listing the bucket", unit="keys")
        # One ListObjects request each step (the store continues from the last key it gave):
        # "Loading page" is logged before each, the empty one that ends the listing included.
        pages = bucket.list(prefix=self.bucket_prefix, marker=marker or "", max_keys=BATCH_SIZE)
        # The next page is requested while this one is checked against the database (the order of
        # lines, rows and markers is GitLab's; only the waiting overlaps).
        loading = asyncio.ensure_future(anext(pages, None))
        try:
            while True:
                self.logger.info(f"Loading page ({f'marker: {marker}' if marker else 'first page'})")
                page = await loading
                if not page:  # Paginators::Aws#last_page?: an empty page
                    break
                loading = asyncio.ensure_future(anext(pages, None))
                orphans = await BatchFromStorage(self.env, page, self.bucket_prefix).orphan_objects()
                for orphan in orphans:
                    self._log_orphan_object(orphan)
                assert self.file is not None
                self.file.flush()  # the rows reach the file before the marker moves past them
                self.env.progress.advance(len(page), orphans=len(orphans))
                marker = page[-1].key
                await state.set(LAST_PAGE_MARKER_REDIS_KEY, marker, ex=MARKER_TTL)
        finally:
            if not loading.done():
                loading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # its error, if any, is raised above
                await loading
            await pages.aclose()
        await state.delete(LAST_PAGE_MARKER_REDIS_KEY)

    async def _resume_from_last_page_marker(self, state: SharedState) -> str | None:
        if self.force_restart:
            self.logger.info("Force restarted. Will not resume from last known page marker.")
            return None
        marker = await state.get(LAST_PAGE_MARKER_REDIS_KEY)
        if marker:
            self.logger.info(f"Resuming from last page marker: {marker}")
        return marker

    def _log_orphan_object(self, orphan: ObjectInfo) -> None:
        assert self.file is not None
        self.file.write(f"{orphan.key},{orphan.size}\n")
        self.logger.info(f"Found orphan object {orphan.key} ({orphan.size} bytes)")
