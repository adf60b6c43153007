"""``mockcoord rake`` as its own process: killed mid-way (SIGKILL) both orphan-object tasks resume
as GitLab's do, from the page marker or the byte cursor, kept in GitLab's Redis key with its TTL or
in a row; a terminal gets a progress bar; a wrong task or data directory is one line."""

from __future__ import annotations

import asyncio
import os
import pty
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from app.config import Settings
from app.lib.shared_state import SharedState
from app.models import SharedStateKey
from app.storage.paths import final_path
from tests.conftest import Coordinator
from tests.rake.helpers import REDIS_URL, redis_or_skip, require_s3

LIST = "gitlab:cleanup:list_orphan_job_artifact_final_objects"
DELETE = "gitlab:cleanup:delete_orphan_job_artifact_final_objects"
MARKER = "orphan-job-artifact-objects-cleanup-last-page-marker"
WEEK = 604_800


def command(settings: Settings, *words: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "app",
        "rake",
        *words,
        "--data-dir",
        str(settings.data_dir),
        "--database-url",
        settings.resolved_database_url,
        "--s3-endpoint",
        str(settings.object_store.connection.endpoint),
        "--bucket",
        settings.object_store.objects.artifacts.bucket,
    ]


def environment(redis: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKCOORD_")}
    return env | ({"MOCKCOORD_REDIS_URL": REDIS_URL} if redis else {})


async def put_many(c: Coordinator, keys: list[str]) -> None:
    for first in range(0, len(keys), 50):
        await asyncio.gather(*(c.state.raw_store.put_bytes(k, b"o") for k in keys[first : first + 50]))


async def bucket_keys(c: Coordinator) -> set[str]:
    return {o.key async for page in c.state.raw_store.list() for o in page}


async def run_until(cmd: list[str], env: dict[str, str], line_contains: str, count: int = 1) -> list[str]:
    """Reads stdout until the ``count``-th line containing ``line_contains``, then stops reading
    (the task runs on until its output fills the pipe's 64 KiB), checks it is still running and
    SIGKILLs it."""

    def until() -> list[str]:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
        assert proc.stdout is not None
        seen: list[str] = []
        try:
            while sum(line_contains in line for line in seen) < count:
                line = proc.stdout.readline()
                assert line, "the task ended before the kill:\n" + "".join(seen[-5:])
                seen.append(line)
            time.sleep(1.0)  # it works on until the pipe is full
            assert proc.poll() is None, "the task finished before the kill"
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        return seen

    return await asyncio.to_thread(until)


async def run_to_end(cmd: list[str], env: dict[str, str]) -> list[str]:
    done = await asyncio.to_thread(subprocess.run, cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    return done.stdout.splitlines()


async def stored_marker(c: Coordinator, settings: Settings, key: str, redis: bool) -> tuple[str | None, int | None]:
    """The value and TTL of GitLab's key, checked to live where the settings say."""
    state = SharedState(c.state.db, settings.redis_url)
    value, ttl = await state.get(key), await state.ttl(key)
    async with c.state.db.session() as session:
        rows = (await session.exec(select(SharedStateKey).where(SharedStateKey.key == key))).all()
    if redis:
        assert rows == []
    else:
        assert [r.value for r in rows] == ([value] if value is not None else [])
        if rows:
            expires = rows[0].expires_at
            assert expires is not None
            expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
            assert abs(expires - (datetime.now(UTC) + timedelta(seconds=WEEK))) < timedelta(seconds=60)
    return value, ttl


@pytest.fixture(params=["redis", "database"])
async def backend(request: pytest.FixtureRequest, coordinator: Coordinator) -> bool:
    require_s3(coordinator)
    if request.param == "redis":
        client = await redis_or_skip()
        await client.delete(MARKER, *[k async for k in client.scan_iter("orphan-job-artifact-objects-cleanup-*")])
        await client.aclose()
    return request.param == "redis"


# A kill costs two child processes (~20 s): each resume is killed once, the listing's marker kept
# in the database, the deletion's cursor in Redis (both stores of both keys: test_orphan_objects).
@pytest.mark.parametrize("backend", ["database"], indirect=True)
async def test_a_killed_listing_resumes_from_its_page_marker(
    coordinator: Coordinator, backend: bool, tmp_path: Path
) -> None:
    c, redis = coordinator, backend
    settings = c.settings.model_copy(update={"redis_url": REDIS_URL if redis else None})
    orphans = sorted(final_path(11) for _ in range(1600))  # 8 pages: more output than the pipes hold
    await put_many(c, orphans)
    listing = tmp_path / "orphans.csv"
    cmd = command(settings, LIST, f"FILENAME={listing}")  # rake's VAR=value words

    seen = await run_until(cmd, environment(redis), "Loading page (marker:", count=2)

    assert seen[-1].rstrip().endswith(f"Loading page (marker: {orphans[399]})")
    marker, ttl = await stored_marker(c, settings, MARKER, redis)
    assert marker is not None and marker >= orphans[399]
    assert ttl is not None and WEEK - 60 < ttl <= WEEK
    assert marker in orphans and marker != orphans[-1]  # killed mid-listing

    lines = await run_to_end(cmd, environment(redis))

    assert lines[1].endswith(f"INFO -- : Resuming from last page marker: {marker}")
    assert lines[2].endswith(f"INFO -- : Loading page (marker: {marker})")
    rows = listing.read_text().splitlines()
    assert set(rows) == {f"{k},1" for k in orphans}
    # Only the page being worked on when the task died can be listed twice.
    twice = [row.split(",")[0] for row, n in Counter(rows).items() if n > 1]
    after = orphans[orphans.index(marker) + 1 :]
    assert set(twice) <= set(after[:200])
    assert await stored_marker(c, settings, MARKER, redis) == (None, None)


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_a_killed_deletion_redoes_its_batch_from_the_byte_cursor(
    coordinator: Coordinator, backend: bool, tmp_path: Path
) -> None:
    c, redis = coordinator, backend
    settings = c.settings.model_copy(update={"redis_url": REDIS_URL if redis else None})
    orphans = [final_path(12) for _ in range(2500)]  # three batches of 1,000 lines
    await put_many(c, orphans)
    listing = tmp_path / "orphans.csv"
    listing.write_text("".join(f"{k},1\n" for k in orphans))
    batch_end = len("".join(f"{k},1\n" for k in orphans[:1000]))
    cursor_key = "orphan-job-artifact-objects-cleanup-cursor-tracker--orphans.csv"
    env = environment(redis) | {"FILENAME": str(listing)}

    seen = await run_until(command(settings, DELETE), env, "Saved current cursor position:")

    assert seen[-1].rstrip().endswith(f"Saved current cursor position: {batch_end}")
    cursor, ttl = await stored_marker(c, settings, cursor_key, redis)
    assert cursor == str(batch_end)
    assert ttl is not None and WEEK - 60 < ttl <= WEEK
    assert not set(orphans[:1000]) & await bucket_keys(c)

    lines = await run_to_end(command(settings, DELETE), env)

    assert lines[1].endswith(f"INFO -- : Resuming from last cursor position tracked in {cursor_key}: {batch_end}")
    assert sum("Deleted object" in line for line in lines) == 1500
    assert await bucket_keys(c) == set()
    rows = (tmp_path / "deleted_from--orphans.csv").read_text().splitlines()
    assert set(rows) == {f"{k},1" for k in orphans}
    twice = {row.split(",")[0] for row, n in Counter(rows).items() if n > 1}
    assert twice <= set(orphans[1000:2000])  # the batch the kill interrupted, redone
    assert await stored_marker(c, settings, cursor_key, redis) == (None, None)


async def test_a_terminal_gets_a_progress_bar(coordinator: Coordinator, tmp_path: Path) -> None:
    require_s3(coordinator)
    await put_many(coordinator, [final_path(13) for _ in range(400)])
    cmd = command(coordinator.settings, LIST, f"FILENAME={tmp_path / 'o.csv'}")

    def in_a_pty() -> tuple[int, str]:
        controller, terminal = pty.openpty()
        proc = subprocess.Popen(cmd, stdout=terminal, stderr=terminal, env=environment(False) | {"COLUMNS": "160"})
        os.close(terminal)
        out = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        os.close(controller)
        return proc.wait(), out.decode(errors="replace")

    code, out = await asyncio.to_thread(in_a_pty)
    assert code == 0, out
    assert "Listing the bucket" in out and "400 keys" in out and "/s" in out
    assert "INFO -- : Done. All orphan objects are listed in" in out
    assert "\x1b[33m" in out  # the rake file's yellow line, as Rainbow colours it on a terminal


async def test_a_wrong_task_or_data_directory_is_one_line(coordinator: Coordinator, tmp_path: Path) -> None:
    settings = coordinator.settings
    unknown = await asyncio.to_thread(
        subprocess.run,
        command(settings, "gitlab:cleanup:nothing"),
        capture_output=True,
        text=True,
        env=environment(False),
    )
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr == (
        "Don't know how to build task 'gitlab:cleanup:nothing' "
        "(See the list of available tasks with `mockcoord rake --tasks`)\n"
    )
    nowhere = tmp_path / "nowhere"
    wrong = [sys.executable, "-m", "app", "rake", LIST, "--data-dir", str(nowhere)]
    refused = await asyncio.to_thread(
        subprocess.run, wrong, capture_output=True, text=True, env=environment(False), cwd=tmp_path
    )
    assert refused.returncode == 1
    assert refused.stderr == (
        f"no database at {nowhere / 'mockcoord.sqlite3'}: point --data-dir (or --database-url) "
        "at the coordinator's data\n"
    )
    assert not nowhere.exists() and not (tmp_path / "orphan_job_artifact_final_objects.csv").exists()
