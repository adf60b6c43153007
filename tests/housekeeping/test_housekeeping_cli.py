"""``mockcoord housekeeping run|expedite`` against a running coordinator, as a real process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest

from app import clock
from app.lib.exclusive_lease import ExclusiveLease
from tests.conftest import ADMIN_TOKEN, Coordinator

ADMIN = {"PRIVATE-TOKEN": ADMIN_TOKEN}


@pytest.fixture(autouse=True)
def short_runs(coordinator: Coordinator, monkeypatch: pytest.MonkeyPatch) -> None:
    if coordinator.settings.object_store.enabled:
        pytest.skip("the CLI only talks to the API: once, on local storage, is enough")
    monkeypatch.setattr(coordinator.settings.housekeeping, "expire_loop_limit", 2)
    monkeypatch.setattr(coordinator.settings.housekeeping, "unknown_loop_limit", 2)


async def mockcoord(c: Coordinator, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """In a thread: the coordinator answering it runs on this test's event loop."""
    command = [sys.executable, "-m", "app", "housekeeping", *args, "--url", c.url, "--admin-token", ADMIN_TOKEN]
    environ = {k: v for k, v in os.environ.items() if k != "FORCE_COLOR"} | {"COLUMNS": "200", **env}
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=120, env=environ, check=False
    )


async def seed_expired(c: Coordinator, count: int) -> list[int]:
    when = (clock.now() - timedelta(hours=3)).isoformat()
    jobs = [
        {
            "name": f"job{i}",
            "status": "success",
            "artifacts": [{"file_type": "archive", "content": "x" * 10, "expire_at": when, "locked": "unlocked"}],
        }
        for i in range(count)
    ]
    seeded = await c.seed(
        {
            "groups": [{"path": "acme"}],
            "projects": [{"path": "acme/app", "pipelines": [{"locked": "unlocked", "jobs": jobs}]}],
        }
    )
    return [j["id"] for j in seeded["jobs"]]


async def test_run_prints_the_api_s_answer(coordinator: Coordinator) -> None:
    await seed_expired(coordinator, 2)
    done = await mockcoord(coordinator, "run", "expire")
    assert done.returncode == 0, done.stdout + done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    assert answer["runs"][0]["result"] == {"destroyed_job_artifacts_count": 2}
    assert (answer["before"]["artifacts"], answer["after"]["artifacts"]) == (2, 0)


async def test_run_all_as_a_table(coordinator: Coordinator) -> None:
    await seed_expired(coordinator, 1)
    done = await mockcoord(coordinator, "run", "all", "--output", "table")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Ci::UpdateLockedUnknownArtifactsWorker done in ")
    assert lines[1].startswith("ExpireBuildArtifactsWorker done in ") and "destroyed_job_artifacts_count 1" in lines[1]
    assert lines[2].startswith("Ci::ScheduleDeleteObjectsCronWorker done in ") and "removed_count 1" in lines[2]
    table = {line.split("  ")[0].strip(): line.split()[-2:] for line in lines[4:] if line.strip()}
    assert table["artifacts"] == ["1", "0"]
    assert table["deleted objects queued"] == ["0", "0"]


async def test_a_failed_run_exits_1(coordinator: Coordinator) -> None:
    c = coordinator
    lease = ExclusiveLease(c.state.db, c.settings.redis_url, "expired_job_artifacts:destroy:lock", timedelta(minutes=6))
    token = await lease.try_obtain()
    assert token is not None
    try:
        done = await mockcoord(c, "run", "expire")
    finally:
        await lease.cancel(token)
    assert done.returncode == 1
    assert json.loads(done.stdout)["runs"][0]["error_class"] == "FailedToObtainLockError"


async def test_an_unknown_worker_is_refused_before_any_call(coordinator: Coordinator) -> None:
    done = await mockcoord(coordinator, "run", "everything")
    assert done.returncode == 2
    assert "'everything' is not one of" in done.stdout + done.stderr


async def deleted_by_hand(c: Coordinator, count: int) -> None:
    for job_id in await seed_expired(c, count):
        res = await c.client.delete(f"/api/v4/projects/acme%2Fapp/jobs/{job_id}/artifacts", headers=ADMIN)
        assert res.status_code == 204, res.text


async def test_expedite_prints_lines_and_counts(coordinator: Coordinator, monkeypatch: pytest.MonkeyPatch) -> None:
    c = coordinator
    monkeypatch.setattr(c.settings.housekeeping, "delete_objects_batch_size", 2)
    await deleted_by_hand(c, 5)
    done = await mockcoord(c, "expedite")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "5 deleted objects made ready (pick_up_at = now)" in out
    assert "removed 5 objects in 3 batches" in out
    table = {line.split("  ")[0].strip(): line.split()[-2:] for line in out.splitlines() if "deleted objects" in line}
    assert table["deleted objects queued"] == ["5", "0"]
    assert "\x1b[" not in out  # no progress bar off a terminal


async def test_expedite_draws_a_progress_bar_on_a_terminal(coordinator: Coordinator) -> None:
    await deleted_by_hand(coordinator, 3)
    done = await mockcoord(coordinator, "expedite", FORCE_COLOR="1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "removing" in done.stdout and "3/3" in done.stdout
    assert "removed 3 objects in 1 batches" in done.stdout


async def test_expedite_says_when_the_coordinator_is_away() -> None:
    from mockctl.ports import free_port

    command = [sys.executable, "-m", "app", "housekeeping", "expedite", "--url", f"http://127.0.0.1:{free_port()}"]
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "cannot reach" in done.stdout and "Traceback" not in done.stdout + done.stderr
