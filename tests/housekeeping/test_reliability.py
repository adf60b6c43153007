"""Housekeeping loses nothing: a worker process killed mid-batch (SIGKILL), concurrent deletion
jobs, two deletions of the same rows. Invariants: every expired unlocked artifact is
destroyed exactly once (a row or one deleted object, never both, never neither), every
deleted object's file removed once, statistics equal the sum of the remaining sizes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from app import clock
from app.models import ArtifactLocked, Build, DeletedObject, JobArtifact, ProjectStatistics
from app.services.ci.job_artifacts.delete_service import delete_job_artifacts
from app.uploaders.job_artifact_uploader import artifact_key
from app.workers.ci.delete_objects_worker import DeleteObjectsWorker
from tests.conftest import Coordinator
from tests.housekeeping.test_workers import ADMIN, job_ids, job_with, perform, scenario, statistics_consistent

ROWS = 1200
OBJECTS = 240
LEASE = 2  # seconds: the killed worker's lease, short so the test need not wait GitLab's six minutes

# A worker process of its own, as Sidekiq is: the same database and bucket, no instrument.
WORKER_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from app.config import Settings
    from app.instrumentation import Instrument
    from app.main import start, stop
    from app.workers.cron import CRON_WORKERS

    async def main():
        state = await start(Settings.model_validate_json(sys.argv[2]), Instrument())
        print("started", flush=True)
        while True:
            print(json.dumps(await CRON_WORKERS[sys.argv[1]](state).perform()), flush=True)

    asyncio.run(main())
    """
)


async def populate(c: Coordinator, rows: int, objects: int) -> tuple[int, list[str]]:
    """``rows`` expired unlocked archives of their own jobs (the first ``objects`` stored), plus
    one locked and one unexpired that must survive; answers the project id and stored keys."""
    seeded = await c.seed(
        scenario(
            [
                {"locked": "artifacts_locked", "jobs": [job_with("locked", locked="artifacts_locked")]},
                {"locked": "unlocked", "jobs": [job_with("fresh", expired=False, locked="unlocked")]},
            ]
        )
    )
    template = job_ids(seeded)["fresh"]
    expired = clock.now() - timedelta(hours=2)
    async with c.state.db.session() as session:
        job = await session.get(Build, template)
        assert job is not None
        project_id, pipeline_id = job.project_id, job.commit_id
        builds = [
            Build(project_id=project_id, commit_id=pipeline_id, name=f"b{i}", status="success") for i in range(rows)
        ]
        session.add_all(builds)
        await session.flush()
        artifacts = [
            JobArtifact(
                project_id=project_id,
                job_id=b.id,
                file_type=1,
                file_format=2,
                size=10,
                file="artifacts.zip",
                expire_at=expired,
                locked=ArtifactLocked.unlocked,
                file_store=2 if c.state.store.remote else 1,
            )
            for b in builds
        ]
        session.add_all(artifacts)
        await session.flush()
        stats = (await session.exec(select(ProjectStatistics).where(ProjectStatistics.project_id == project_id))).one()
        stats.build_artifacts_size += 10 * rows
        session.add(stats)
        await session.commit()
        keys = [artifact_key(a) for a in artifacts[:objects]]
    for first in range(0, len(keys), 40):
        await asyncio.gather(*(c.state.store.put_bytes(k, b"0123456789") for k in keys[first : first + 40]))
    return project_id, keys


async def counts(c: Coordinator) -> tuple[int, int]:
    """(artifact rows, deleted-object rows)."""
    async with c.state.db.session() as session:
        artifacts = (await session.exec(select(func.count()).select_from(JobArtifact))).one()
        deleted = (await session.exec(select(func.count()).select_from(DeletedObject))).one()
    return artifacts, deleted


async def stored(c: Coordinator, keys: list[str]) -> int:
    found = await asyncio.gather(*(c.state.store.head(k) for k in keys))
    return sum(1 for f in found if f is not None)


def start_worker(c: Coordinator, cron_job: str, **limits: Any) -> subprocess.Popen[str]:
    settings = c.settings.model_copy(update={"housekeeping": c.settings.housekeeping.model_copy(update=limits)})
    return subprocess.Popen(
        [sys.executable, "-c", WORKER_SCRIPT, cron_job, settings.model_dump_json()],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )


async def kill_when(c: Coordinator, proc: subprocess.Popen[str], ready: Any, within: float = 60) -> None:
    """SIGKILL the worker as soon as ``ready(artifact rows, deleted rows)`` holds."""
    deadline = time.monotonic() + within
    while not ready(*await counts(c)):
        assert proc.poll() is None, "the worker died on its own"
        assert time.monotonic() < deadline, "the worker made no progress"
        await asyncio.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


async def test_a_worker_killed_mid_run_loses_nothing(coordinator: Coordinator) -> None:
    c = coordinator
    _, keys = await populate(c, ROWS, OBJECTS)
    total = ROWS + 2

    # Phase one in another process, killed part-way through its batches.
    proc = start_worker(c, "expire_build_artifacts_worker", expire_batch_size=10, lease_timeout_seconds=LEASE)
    await kill_when(c, proc, lambda artifacts, deleted: 0 < deleted < ROWS - 100)
    killed_at = time.monotonic()
    artifacts, deleted = await counts(c)
    assert artifacts + deleted == total  # each artifact a row or one deleted object
    await statistics_consistent(c)
    # The dead worker's lease holds until it times out, as a Redis TTL would.
    res = await c.client.post("/-/mock/workers/expire_build_artifacts_worker/perform", headers=ADMIN)
    assert res.status_code == 409
    await asyncio.sleep(max(0.0, LEASE - (time.monotonic() - killed_at)) + 0.2)

    # Finishing in this process destroys the rest once, and only the rest.
    assert (await perform(c, "expire_build_artifacts_worker"))["destroyed_job_artifacts_count"] == ROWS - deleted
    assert await counts(c) == (2, ROWS)
    await statistics_consistent(c)
    assert await stored(c, keys) == OBJECTS  # phase one removes no file

    # Phase two in another process, killed while batches are claimed and half removed.
    proc = start_worker(
        c, "ci_schedule_delete_objects_worker", delete_objects_batch_size=10, delete_objects_max_running_jobs=2
    )
    await kill_when(c, proc, lambda artifacts, deleted: deleted < ROWS - 200)
    _, left = await counts(c)
    assert left > 0
    # Claimed-but-unfinished rows wait out their retry; then every one goes, once.
    clock.advance(timedelta(minutes=11))
    done = await perform(c, "ci_schedule_delete_objects_worker")
    assert (done["removed_count"], done["failed_count"]) == (left, 0)
    assert await counts(c) == (2, 0)
    assert await stored(c, keys) == 0
    async with c.state.db.session() as session:
        survivors = (await session.exec(select(JobArtifact.locked, JobArtifact.expire_at))).all()
    assert sorted(s.locked for s in survivors) == [ArtifactLocked.unlocked, ArtifactLocked.artifacts_locked]


async def test_concurrent_deletion_jobs_remove_each_object_once(coordinator: Coordinator) -> None:
    """Two workers' capacity jobs at once (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; one writer at
    a time on SQLite): the removed counts add up to the queue exactly."""
    c = coordinator
    _, keys = await populate(c, 400, 120)
    assert (await perform(c, "expire_build_artifacts_worker"))["destroyed_job_artifacts_count"] == 400
    c.settings.housekeeping.delete_objects_batch_size = 20
    try:
        results = await asyncio.gather(*(DeleteObjectsWorker(c.state).perform_with_capacity() for _ in range(2)))
    finally:
        c.settings.housekeeping.delete_objects_batch_size = 100
    assert sum(r["removed_count"] for r in results) == 400
    assert sum(r["failed_count"] for r in results) == 0
    assert await counts(c) == (2, 0)
    assert await stored(c, keys) == 0


async def test_two_deletions_of_the_same_artifacts_record_them_once(coordinator: Coordinator) -> None:
    c = coordinator
    seeded = await c.seed(scenario([{"locked": "unlocked", "jobs": [job_with("both", locked="unlocked")]}]))
    job_id = job_ids(seeded)["both"]

    async def api_delete() -> int:
        async with c.state.db.session() as session:
            return await delete_job_artifacts(session, job_id)

    async def worker() -> int:
        return (await perform(c, "expire_build_artifacts_worker"))["destroyed_job_artifacts_count"]

    results = await asyncio.gather(api_delete(), worker(), api_delete())
    assert sum(results) == 1
    assert await counts(c) == (0, 1)
    await statistics_consistent(c)


@pytest.fixture(autouse=True)
def _real_clock() -> Any:
    yield
    clock.reset()
