"""``mockcoord worker`` as an administrator runs it: separate processes against the database and
bucket Rails uses, the mock clock moved through Rails' control plane, SIGTERM to stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from app import clock
from app.models import DeletedObject, JobArtifact
from app.uploaders.job_artifact_uploader import artifact_key
from mockctl.sidekiq import open_state
from tests.conftest import ADMIN_TOKEN, Coordinator
from tests.housekeeping.cron_lines import EVERY_TWO_HOURS

ADMIN = {"PRIVATE-TOKEN": ADMIN_TOKEN}
MOCKCOORD = [sys.executable, "-m", "app"]
CRON_JOBS = (
    "expire_build_artifacts_worker",
    "update_locked_unknown_artifacts_worker",
    "ci_schedule_delete_objects_worker",
    "object_storage_delete_stale_direct_uploads_worker",
    "projects_schedule_refresh_build_artifacts_size_statistics_worker",
)


def one_store_is_enough(c: Coordinator) -> None:
    if c.settings.object_store.enabled:
        pytest.skip("nothing here depends on the store: run once, on local storage")


def worker_command(c: Coordinator) -> list[str]:
    settings = c.settings
    command = [*MOCKCOORD, "worker", "--database-url", settings.resolved_database_url]
    if settings.object_store.enabled:
        store = settings.object_store
        assert store.connection.endpoint
        return [*command, "--s3-endpoint", store.connection.endpoint, "--bucket", store.objects.artifacts.bucket]
    return [*command, "--storage", "local", "--data-dir", str(settings.data_dir)]


def worker_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "MOCKCOORD_CRON_POLL_INTERVAL": "0.1",
        # GitLab's runs go on over empty batches up to 500 passes; two are enough here
        "MOCKCOORD_HOUSEKEEPING__EXPIRE_LOOP_LIMIT": "2",
        "MOCKCOORD_HOUSEKEEPING__UNKNOWN_LOOP_LIMIT": "2",
        **extra,
    }
    for name in CRON_JOBS:
        env[f"MOCKCOORD_CRON_JOBS__{name.upper()}__CRON"] = EVERY_TWO_HOURS
    return env


def start_worker(c: Coordinator, tmp: Path, name: str, **env: str) -> subprocess.Popen[str]:
    stderr = (tmp / f"{name}.err").open("w+")
    proc = subprocess.Popen(
        worker_command(c), stdout=subprocess.PIPE, stderr=stderr, text=True, env=worker_env(**env), cwd=tmp
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stderr.seek(0)
        if "running the cron schedule" in stderr.read():
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    stderr.seek(0)
    raise AssertionError(f"worker did not start: {stderr.read()}")


async def wait_for(check: Any, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen[str]) -> tuple[int, list[dict[str, Any]]]:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=15)
    return proc.returncode, [json.loads(line) for line in out.splitlines() if line.startswith("{")]


async def test_workers_in_other_processes_run_each_fire_time_once(quiet_clock: Coordinator, tmp_path: Path) -> None:
    c = quiet_clock
    when = (clock.now() + timedelta(hours=1)).isoformat()
    seeded = await c.seed(
        {
            "groups": [{"path": "acme"}],
            "projects": [
                {
                    "path": "acme/app",
                    "pipelines": [
                        {
                            "locked": "unlocked",
                            "jobs": [
                                {
                                    "name": "build",
                                    "status": "success",
                                    "artifacts": [{"file_type": "archive", "content": "x" * 100, "expire_at": when}],
                                }
                            ],
                        }
                    ],
                }
            ],
        }
    )
    job_id = seeded["jobs"][0]["id"]
    async with c.state.db.session() as session:
        artifact = (await session.exec(select(JobArtifact).where(JobArtifact.job_id == job_id))).one()
    key = artifact_key(artifact)
    assert await c.state.store.head(key) is not None

    workers = [start_worker(c, tmp_path, f"w{i}") for i in range(2)]
    try:

        async def artifact_gone() -> bool:
            async with c.state.db.session() as session:
                return (await session.exec(select(JobArtifact.id).where(JobArtifact.job_id == job_id))).first() is None

        async def object_removed() -> bool:
            async with c.state.db.session() as session:
                pending = (await session.exec(select(DeletedObject.id))).first()
            return pending is None and await c.state.store.head(key) is None

        await asyncio.sleep(0.3)
        assert not await artifact_gone()  # nothing runs until the mock clock passes a fire time
        # Rails moves the clock; the workers read it from the shared store
        res = await c.client.post("/-/mock/clock", json={"advance": "2 hours"}, headers=ADMIN)
        assert res.status_code == 200, res.text
        await wait_for(artifact_gone, "ExpireBuildArtifactsWorker in a worker process")
        res = await c.client.post("/-/mock/clock", json={"advance": "2 hours"}, headers=ADMIN)
        assert res.status_code == 200, res.text
        await wait_for(object_removed, "Ci::DeleteObjectsWorker in a worker process")
        await asyncio.sleep(0.5)  # a duplicate run, if there were one, would be logged by now
    finally:
        results = [stop(w) for w in workers]

    assert [code for code, _ in results] == [0, 0]  # SIGTERM: a clean stop
    runs = Counter(line["class"] for _, lines in results for line in lines)
    assert runs == {  # two fire times passed for each job: two runs, whichever process ran them
        "ExpireBuildArtifactsWorker": 2,
        "Ci::UpdateLockedUnknownArtifactsWorker": 2,
        "Ci::ScheduleDeleteObjectsCronWorker": 2,
        "ObjectStorage::DeleteStaleDirectUploadsWorker": 2,
        "Projects::ScheduleRefreshBuildArtifactsSizeStatisticsWorker": 2,
    }
    lines = [line for _, ls in results for line in ls]
    # A run still going when the next fire time passes (in another process) fails on the
    # service's exclusive lease, as GitLab's does; nothing else may fail.
    failed = {(line["class"], line.get("error_class")) for line in lines if line["job_status"] != "done"}
    assert failed <= {
        ("ExpireBuildArtifactsWorker", "FailedToObtainLockError"),
        ("Ci::UpdateLockedUnknownArtifactsWorker", "FailedToObtainLockError"),
    }
    assert sum(line.get("extra.expire_build_artifacts_worker.destroyed_job_artifacts_count", 0) for line in lines) == 1


async def test_a_worker_stops_on_sigterm_at_once_when_idle(quiet_clock: Coordinator, tmp_path: Path) -> None:
    one_store_is_enough(quiet_clock)
    proc = start_worker(quiet_clock, tmp_path, "idle")
    started = time.monotonic()
    code, lines = stop(proc)
    assert (code, lines) == (0, [])
    assert time.monotonic() - started < 5
    assert "Traceback" not in (tmp_path / "idle.err").read_text()


async def test_the_clock_moved_in_rails_is_the_worker_s(coordinator: Coordinator, tmp_path: Path) -> None:
    """A process that opens the same database (or Redis) reads the offset Rails' control plane set."""
    one_store_is_enough(coordinator)
    c = coordinator
    res = await c.client.post("/-/mock/clock", json={"advance": "3 days"}, headers=ADMIN)
    assert res.status_code == 200
    script = (
        "import asyncio\n"
        "from app import clock\n"
        "from app.config import Settings\n"
        "from mockctl.sidekiq import open_state, close_state\n"
        "async def main():\n"
        "    state = await open_state(Settings())\n"
        "    print(clock.offset().total_seconds())\n"
        "    await close_state(state)\n"
        "asyncio.run(main())\n"
    )

    def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)

    env = {
        **os.environ,
        "MOCKCOORD_DATABASE_URL": c.settings.resolved_database_url,
        "MOCKCOORD_OBJECT_STORE__ENABLED": "false",
    }
    env["MOCKCOORD_DATA_DIR"] = str(tmp_path)
    done = await asyncio.to_thread(run, env)
    assert done.returncode == 0, done.stderr
    assert abs(float(done.stdout) - 3 * 86400) < 5
    res = await c.client.post("/-/mock/clock", json={"reset": True}, headers=ADMIN)
    done = await asyncio.to_thread(run, env)
    assert float(done.stdout) == 0.0


async def test_open_state_refuses_nothing_on_an_existing_database(coordinator: Coordinator) -> None:
    """A worker opening Rails' database changes nothing in it (no seeding, no emptying)."""
    one_store_is_enough(coordinator)
    async with coordinator.state.db.session() as session:
        before = len((await session.exec(select(JobArtifact.id))).all())
    settings = coordinator.settings.model_copy()
    state = await open_state(settings)
    try:
        async with state.db.session() as session:
            assert len((await session.exec(select(JobArtifact.id))).all()) == before
    finally:
        await state.db.dispose()
        await state.store.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "mockcoord worker needs the bucket Rails uses"),
        (["--storage", "local", "--gitlab-version", "fifteen"], "setting gitlab_version"),
    ],
)
def test_worker_refuses_what_cannot_work(tmp_path: Path, args: list[str], message: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKCOORD_")}
    done = subprocess.run(
        [*MOCKCOORD, "worker", "--data-dir", str(tmp_path), *args],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert message in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_worker_names_an_unknown_cron_job_override(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKCOORD_")}
    env["MOCKCOORD_CRON_JOBS__EXPIRE_ARTIFACTS__CRON"] = "* * * * *"
    done = subprocess.run(
        [*MOCKCOORD, "worker", "--data-dir", str(tmp_path), "--storage", "local"],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "cron_jobs.expire_artifacts: no such cron job" in done.stdout + done.stderr
