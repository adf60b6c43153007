"""``Gitlab::Cleanup::OrphanJobArtifactFiles`` (and ``OrphanJobArtifactFilesBatch``): artifact
directories on local storage whose name (the artifact id) no ``ci_job_artifacts`` row has.

The directories come from the real ``find -L ROOT -mindepth 6 -maxdepth 6 -type d`` (behind
``ionice --class NICENESS`` when ionice is installed), as GitLab runs it; where ``find`` is not
installed, from a walk with ``os.scandir`` (mockcoord's fallback, said in the log). 500 a batch,
one query each; an orphan is removed with ``rm_rf`` unless ``DRY_RUN``.

GitLab removes the orphan's own directory and nothing above it, so the job, date and project
directories it emptied stay (gitlab-org/gitlab#17465, the inode problem the troubleshooting page
describes, although the page says the task removes them). mockcoord does the same, and removes
the empty directories of the hashed layout only when asked (``REMOVE_EMPTY_DIRS=true``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from sqlmodel import col, select

from app.models import JobArtifact, record_id
from app.tasks.rake import RakeEnvironment, RakeError, ruby_to_i

BATCH_SIZE = 500
DEFAULT_NICENESS = "best-effort"
VALID_NICENESS_LEVELS = ("none", "realtime", "best-effort", "idle")
ARTIFACT_DEPTH = 6  # h[0..1]/h[2..3]/hash/YYYY_MM_DD/<job id>/<artifact id>


class OrphanJobArtifactFilesBatch:
    def __init__(self, env: RakeEnvironment, dry_run: bool) -> None:
        self.env, self.dry_run = env, dry_run
        self.artifact_files: list[str] = []
        self.lost_and_found: list[str] = []

    def full(self) -> bool:
        return len(self.artifact_files) >= BATCH_SIZE

    async def clean(self) -> None:
        if not self.artifact_files:
            return
        ids = {record_id(ruby_to_i(path.split("/")[-1])) for path in self.artifact_files}
        db = await self.env.db()
        async with db.reads.connect() as conn:
            existing = set((await conn.execute(select(JobArtifact.id).where(col(JobArtifact.id).in_(ids)))).scalars())
        self.lost_and_found = [p for p in self.artifact_files if ruby_to_i(p.split("/")[-1]) not in existing]
        for path in self.lost_and_found:
            self.env.logger.debug(f"Found orphan job artifact file @ {path}")
            if not self.dry_run:
                await asyncio.to_thread(rm_rf, path)


class OrphanJobArtifactFiles:
    def __init__(
        self, env: RakeEnvironment, dry_run: bool = True, niceness: str | None = None, remove_empty_dirs: bool = False
    ) -> None:
        self.env, self.dry_run, self.remove_empty_dirs = env, dry_run, remove_empty_dirs
        self.niceness = (niceness or DEFAULT_NICENESS).lower()
        self.root = str(env.settings.artifacts_path)
        self.total_found = self.total_cleaned = 0
        self.removed: set[str] = set()  # the orphans, for REMOVE_EMPTY_DIRS in a dry run

    def log_info(self, message: str) -> None:
        self.env.logger.info(f"{'[DRY RUN]' if self.dry_run else ''} {message}")

    async def run(self) -> None:
        self.log_info("Looking for orphan job artifacts to clean up")
        self.env.progress.start("Looking for orphan artifact directories", unit="dirs")
        batch = OrphanJobArtifactFilesBatch(self.env, self.dry_run)
        async for path in self.find_artifacts():
            batch.artifact_files.append(path)
            if batch.full():
                await self.clean_batch(batch)
                batch = OrphanJobArtifactFilesBatch(self.env, self.dry_run)
        await self.clean_batch(batch)
        self.log_info(
            f"Processed {self.total_found} job artifact(s) to find and cleaned {self.total_cleaned} orphan(s)."
        )
        if self.remove_empty_dirs:
            await self.clean_empty_directories()

    async def clean_batch(self, batch: OrphanJobArtifactFilesBatch) -> None:
        await batch.clean()
        self.total_found += len(batch.artifact_files)
        self.total_cleaned += len(batch.lost_and_found)
        if self.remove_empty_dirs and self.dry_run:
            self.removed.update(batch.lost_and_found)
        self.env.progress.advance(len(batch.artifact_files), orphans=len(batch.lost_and_found))

    def find_command(self) -> list[str] | None:
        """GitLab's command line; ``None`` when ``find`` is not installed."""
        if shutil.which("find") is None:
            return None
        depth = str(ARTIFACT_DEPTH)
        cmd = ["find", "-L", self.root, "-mindepth", depth, "-maxdepth", depth, "-type", "d"]
        if ionice := shutil.which("ionice"):
            if self.niceness not in VALID_NICENESS_LEVELS:
                raise RakeError(
                    f"Invalid niceness: {self.niceness!r} (NICENESS is one of {', '.join(VALID_NICENESS_LEVELS)})"
                )
            cmd[:0] = [ionice, "--class", self.niceness]
        return cmd

    async def find_artifacts(self) -> AsyncIterator[str]:
        cmd = self.find_command()
        if cmd is None:
            self.log_info(
                f"find is not installed: walking {self.root} with os.scandir instead (mockcoord's fallback for "
                f"'find -L {self.root} -mindepth {ARTIFACT_DEPTH} -maxdepth {ARTIFACT_DEPTH} -type d')"
            )
            for path in await asyncio.to_thread(lambda: list(walk_directories(self.root, ARTIFACT_DEPTH))):
                yield path
            return
        self.log_info(f"find command: '{' '.join(cmd)}'")
        with tempfile.TemporaryFile() as errors:  # read after the end, as GitLab does; a pipe could fill
            proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, stderr=errors)
            assert proc.stdout is not None
            read_all = False
            try:
                async for line in proc.stdout:
                    yield line.decode(errors="surrogateescape").removesuffix("\n")
                read_all = True
            finally:
                if not read_all and proc.returncode is None:  # the task ended early: find goes too
                    proc.kill()
                status = await proc.wait()
            if status != 0:
                errors.seek(0)
                self.env.logger.error(errors.read().decode(errors="replace").rstrip("\n"))

    async def clean_empty_directories(self) -> None:
        """mockcoord's ``REMOVE_EMPTY_DIRS=true``: the directories above the artifact directories
        (job, date, project hash and its two parents) left with nothing in them, deepest first; in a
        dry run, those the run would have emptied."""
        found = await asyncio.to_thread(empty_directories, self.root, ARTIFACT_DEPTH - 1, self.removed)
        for path in found:
            self.env.logger.debug(f"Found empty directory @ {path}")
            if not self.dry_run:
                try:
                    os.rmdir(path)
                except OSError:
                    continue  # something was written into it meanwhile
        self.log_info(
            f"{'Found' if self.dry_run else 'Removed'} {len(found)} empty parent director"
            f"{'y' if len(found) == 1 else 'ies'} (REMOVE_EMPTY_DIRS=true, mockcoord's option)."
        )


def rm_rf(path: str) -> None:
    """``FileUtils.rm_rf``: the link, not its target, for a symlink; errors ignored."""
    if os.path.islink(path):
        with contextlib.suppress(OSError):
            os.unlink(path)
        return
    shutil.rmtree(path, ignore_errors=True)


def walk_directories(root: str, depth: int) -> Iterator[str]:
    """The directories exactly ``depth`` levels below ``root``, symlinks followed (``find -L``)."""
    level = [root]
    for _ in range(depth):
        below = []
        for directory in level:
            try:
                with os.scandir(directory) as entries:
                    below.extend(e.path for e in entries if e.is_dir())
            except OSError:
                continue
        level = below
    yield from level


def empty_directories(root: str, max_depth: int, gone: set[str]) -> list[str]:
    """Directories 1..``max_depth`` below ``root`` (Workhorse's ``tmp/`` aside) holding nothing but
    directories that are empty too or in ``gone``; deepest first, so removing them in order works."""
    top = Path(root)
    found: list[str] = []
    gone = set(gone)
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        rel = Path(dirpath).relative_to(top)
        if not rel.parts or rel.parts[0] == "tmp" or len(rel.parts) > max_depth:
            continue
        if filenames or any(os.path.join(dirpath, d) not in gone for d in dirnames):
            continue
        found.append(dirpath)
        gone.add(dirpath)
    return found
