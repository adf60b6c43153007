"""``ProcessList`` (``process_list.rb``, ``batch_from_list.rb``): read the orphan list 1,000
lines at a time, re-check the database for each batch, delete what no artifact row names and
list it in ``deleted_from--<basename>`` beside the input.

As GitLab's, it trusts its CSV: a listed key outside ``@final``, outside the bucket prefix or
under an upload in progress is deleted all the same when no ``file_final_path`` matches it.
mockcoord deletes it too (the rehearsal must show what GitLab does) and says so in a WARN line
first. A malformed row (GitLab would split it on ``,`` and act on the pieces) is named by its
row number and skipped. Resumption is GitLab's: the byte offset after each batch is saved
(TTL one week) and deleted at the end; a task killed mid-batch redoes that batch.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import IO

from sqlmodel import col, select

from app.lib.shared_state import SharedState
from app.models import JobArtifact, PendingDirectUpload, record_id
from app.tasks.gitlab.cleanup.orphan_job_artifact_final_objects.generate_list import (
    DEFAULT_FILENAME,
    in_final_location,
    path_without_bucket_prefix,
)
from app.tasks.rake import RakeEnvironment, RakeError, ruby_to_i

BATCH_SIZE = 1000  # ProcessList::BATCH_SIZE (5 in Rails development)
DELETED_LIST_FILENAME_PREFIX = "deleted_from--"
CURSOR_TRACKER_REDIS_KEY_PREFIX = "orphan-job-artifact-objects-cleanup-cursor-tracker--"
CURSOR_TTL = 604_800  # one week, GitLab's
# The hashed path of an artifact stored before @final uploads: h/h/hash/date/<job id>/<artifact id>/<file>
LEGACY_ARTIFACT_PATH = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}/\d{4}_\d{2}_\d{2}/\d+/(\d+)/[^/]+")


@dataclass(frozen=True)
class Entry:
    row: int  # line number in the list, from 1
    key: str  # as listed: the bucket prefix included
    size: int


def parse_row(row: int, line: bytes, filename: str) -> Entry | str:
    """An entry, or the WARN line saying why the row is skipped and what GitLab would do with
    it (``path, size = line.split(',')``; fog's ``content_length`` is ``size.to_i``)."""
    where = f"Row {row} of {filename}"
    try:
        text = line.decode()
    except UnicodeDecodeError:
        return f"{where} is not UTF-8 text; skipped"
    text = text.removesuffix("\n").removesuffix("\r")
    if not text.strip():
        return f"{where} is empty; skipped (GitLab would send a DELETE for the line break as a key)"
    fields = text.split(",")
    if len(fields) == 1:
        return (
            f"{where} is malformed: 1 column, expected 2 (key,size); skipped (GitLab would send a DELETE "
            f"for {fields[0]!r} with the line break as part of the key, which matches no object)"
        )
    if len(fields) > 2:
        return (
            f"{where} is malformed: {len(fields)} columns, expected 2 (key,size); skipped "
            f"(GitLab would delete {fields[0]}, ignoring the rest)"
        )
    key, size = fields
    if not key:
        return f"{where} is malformed: the key is empty; skipped (GitLab would send a DELETE without a key)"
    if not re.fullmatch(r"\d+", size):
        return (
            f"{where} is malformed: the size {size!r} is not a number; skipped "
            f"(GitLab would delete {key} and report its size as {ruby_to_i(size)})"
        )
    return Entry(row, key, int(size))


class BatchFromList:
    """One batch of entries: those no artifact row names (``Found job artifact record for
    object ..., skipping.`` for the others), sorted by key, with the WARN lines of the risky ones."""

    def __init__(self, env: RakeEnvironment, entries: list[Entry], bucket_prefix: str) -> None:
        self.env, self.entries, self.bucket_prefix = env, entries, bucket_prefix

    async def orphan_objects(self) -> list[Entry]:
        objects = {path_without_bucket_prefix(e.key, self.bucket_prefix): e for e in self.entries}
        if not objects:
            return []
        db = await self.env.db()
        # The re-check: an artifact that took the path since the list was made keeps its object.
        async with db.reads.connect() as conn:
            found = (
                await conn.execute(
                    select(JobArtifact.file_final_path).where(col(JobArtifact.file_final_path).in_(list(objects)))
                )
            ).scalars()
            for path in sorted(set(found)):
                self.env.logger.info(f"Found job artifact record for object {path}, skipping.")
                objects.pop(path, None)
            if objects:
                await self._warn_of_risks(conn, objects)
        return sorted(objects.values(), key=lambda e: e.key)

    async def _warn_of_risks(self, conn, objects: dict[str, Entry]) -> None:  # type: ignore[no-untyped-def]
        """What GitLab does without a word: every such row is deleted all the same."""
        pending = set(
            (
                await conn.execute(
                    select(PendingDirectUpload.path).where(
                        PendingDirectUpload.location_identifier == "artifacts",
                        col(PendingDirectUpload.path).in_(list(objects)),
                    )
                )
            ).scalars()
        )
        legacy = {
            path: record_id(int(m.group(1)))
            for path in objects
            if not in_final_location(path) and (m := LEGACY_ARTIFACT_PATH.fullmatch(path))
        }
        alive = set()
        if legacy:
            ids = set(legacy.values())
            alive = set((await conn.execute(select(JobArtifact.id).where(col(JobArtifact.id).in_(ids)))).scalars())
        warn = self.env.logger.warn
        for path, entry in sorted(objects.items(), key=lambda item: item[1].key):
            where = f"Row {entry.row}: {entry.key}"
            if path.startswith("../") or path == "..":
                warn(
                    f"{where} is outside the bucket prefix {self.bucket_prefix}; "
                    "GitLab deletes it anyway (its delete task trusts the CSV)"
                )
            elif not in_final_location(path):
                detail = (
                    f", and it is the file of job artifact {legacy[path]}, which still exists"
                    if legacy.get(path) in alive
                    else ""
                )
                warn(
                    f"{where} is not in an @final directory{detail}; "
                    "GitLab deletes it anyway (its delete task trusts the CSV)"
                )
            if path in pending:
                warn(
                    f"{where} is an upload in progress (a pending direct upload); GitLab deletes it anyway "
                    "and the upload's finalize then fails"
                )


class ProcessList:
    def __init__(self, env: RakeEnvironment, filename: str | None = None, force_restart: bool = False) -> None:
        self.env = env
        self.force_restart = force_restart
        self.orphan_list_filename = filename or DEFAULT_FILENAME
        self.deleted_list_filename = self._build_deleted_list_filename()
        self.cursor_tracker_key = CURSOR_TRACKER_REDIS_KEY_PREFIX + os.path.basename(self.orphan_list_filename)
        self.bucket_prefix = env.settings.object_store.artifacts_bucket_prefix
        self.logger = env.logger

    def _build_deleted_list_filename(self) -> str:
        dirname = os.path.dirname(self.orphan_list_filename) or "."
        basename = DELETED_LIST_FILENAME_PREFIX + os.path.basename(self.orphan_list_filename)
        return basename if dirname == "." else os.path.join(dirname, basename)

    async def run(self) -> None:
        self.logger.info(f"Processing {self.orphan_list_filename}...")
        try:
            orphan_list = open(self.orphan_list_filename, "rb")  # noqa: SIM115, ASYNC230 (closed below; a local file)
        except OSError as exc:  # GitLab: rake aborted! Errno::ENOENT, nothing written
            raise RakeError(f"{exc.strerror} @ rb_sysopen - {self.orphan_list_filename}") from None
        try:
            try:
                deleted_list = open(self.deleted_list_filename, "w+" if self.force_restart else "a+")  # noqa: SIM115, ASYNC230
            except OSError as exc:
                raise RakeError(f"{exc.strerror} @ rb_sysopen - {self.deleted_list_filename}") from None
            try:
                await self._each_batch(orphan_list, deleted_list)
            finally:
                deleted_list.close()
        finally:
            orphan_list.close()
        self.logger.info(f"Done. All deleted objects are listed in {self.deleted_list_filename}.")

    async def _each_batch(self, orphan_list: IO[bytes], deleted_list: IO[str]) -> None:
        state = SharedState(await self.env.db(), self.env.settings.redis_url)
        position = ruby_to_i(await self._resume_from_last_cursor_position(state))
        row = count_lines_before(orphan_list, position) if position else 0
        orphan_list.seek(position)
        size = os.fstat(orphan_list.fileno()).st_size
        self.env.progress.start("Deleting listed objects", total=size, unit="bytes")
        self.env.progress.advance(min(position, size))
        bucket = await self.env.bucket()
        done = position
        while True:
            entries: list[Entry] = []
            lines = 0
            while lines < BATCH_SIZE and (line := orphan_list.readline()):
                lines += 1
                row += 1
                parsed = parse_row(row, line, self.orphan_list_filename)
                if isinstance(parsed, str):
                    self.logger.warn(parsed)
                else:
                    entries.append(parsed)
            if not lines:
                break
            orphans = await BatchFromList(self.env, entries, self.bucket_prefix).orphan_objects()
            # One DeleteObjects request for the batch, where GitLab's fog sends one DELETE an object.
            failed = set(await bucket.delete_many([e.key for e in orphans]))
            for entry in orphans:
                if entry.key in failed:
                    self.logger.error(f"Could not delete object {entry.key}")
                    continue
                deleted_list.write(f"{entry.key},{entry.size}\n")
                self.logger.info(f"Deleted object {entry.key} ({entry.size} bytes)")
            deleted_list.flush()
            if failed:  # GitLab's task dies on the failed DELETE: the batch is redone next run
                raise RakeError(
                    f"{len(failed)} object(s) of this batch could not be deleted; the cursor stays before the "
                    "batch: run the task again to redo it"
                )
            position = orphan_list.tell()
            await state.set(self.cursor_tracker_key, str(position), ex=CURSOR_TTL)
            self.logger.info(f"Saved current cursor position: {position}")
            self.env.progress.advance(position - done, deleted=len(orphans))
            done = position
        await state.delete(self.cursor_tracker_key)

    async def _resume_from_last_cursor_position(self, state: SharedState) -> str | None:
        if self.force_restart:
            self.logger.info("Force restarted. Will not resume from last known cursor position.")
            return None
        position = await state.get(self.cursor_tracker_key)
        if position:
            self.logger.info(f"Resuming from last cursor position tracked in {self.cursor_tracker_key}: {position}")
        else:
            self.logger.info("No last cursor position found, starting from beginning.")
        return position


def count_lines_before(file: IO[bytes], position: int) -> int:
    """Rows before a resumed cursor, so a row keeps its number in messages."""
    file.seek(0)
    count, left = 0, position
    while left > 0 and (chunk := file.read(min(left, 1 << 20))):
        count += chunk.count(b"\n")
        left -= len(chunk)
    return count
