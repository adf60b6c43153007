"""The cron schedule (sidekiq-cron's poller) on the mock clock, against the real database:
coalesced fire times, one run per fire time however many schedulers look, no overlap in a
process, failures logged and counted, the clock going back."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from app import clock
from app.config import Settings
from app.lib import metrics
from app.state import AppState
from app.workers.cron import CRON_WORKERS
from app.workers.scheduler import Entry, Scheduler, queue_name, schedule
from mockctl.reset import reset
from tests.conftest import Coordinator

FAKE = "fake_cron_worker"


class FakeWorker:
    job_class = "Ci::FakeCronWorker"
    cron_job = FAKE
    cron = "*/7 * * * *"
    performed: ClassVar[list[str]] = []
    gate: ClassVar[asyncio.Event | None] = None
    fail: ClassVar[bool] = False

    def __init__(self, state: AppState) -> None:
        self.state = state

    async def perform(self) -> dict[str, Any]:
        FakeWorker.performed.append(clock.iso(clock.now()) or "")
        if FakeWorker.gate is not None:
            await FakeWorker.gate.wait()
        if FakeWorker.fail:
            raise RuntimeError("the store is away")
        return {"done_count": len(FakeWorker.performed)}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeWorker]:
    monkeypatch.setitem(CRON_WORKERS, FAKE, FakeWorker)
    monkeypatch.setattr(FakeWorker, "performed", [])
    monkeypatch.setattr(FakeWorker, "gate", None)
    monkeypatch.setattr(FakeWorker, "fail", False)
    return FakeWorker


def only_fake(state: AppState, cron: str = "*/7 * * * *") -> Scheduler:
    scheduler = Scheduler(state)
    scheduler.entries = [Entry(FAKE, cron, FakeWorker)]
    return scheduler


async def settle(tasks: list[asyncio.Task[Any]]) -> None:
    await asyncio.wait_for(asyncio.gather(*tasks), 10)


def test_gitlab_s_schedule_with_overrides() -> None:
    entries = {e.cron_job: e.cron for e in schedule(Settings())}
    assert entries == {
        "expire_build_artifacts_worker": "*/7 * * * *",
        "update_locked_unknown_artifacts_worker": "*/7 * * * *",
        "ci_schedule_delete_objects_worker": "*/16 * * * *",
        "object_storage_delete_stale_direct_uploads_worker": "*/6 * * * *",
        "projects_schedule_refresh_build_artifacts_size_statistics_worker": "2/17 * * * *",
    }
    changed = Settings(
        cron_jobs={
            "expire_build_artifacts_worker": {"cron": "* * * * *"},
            "object_storage_delete_stale_direct_uploads_worker": {"enabled": False},
        }
    )
    entries = {e.cron_job: e.cron for e in schedule(changed)}
    assert entries["expire_build_artifacts_worker"] == "* * * * *"
    assert "object_storage_delete_stale_direct_uploads_worker" not in entries
    with pytest.raises(ValueError, match="cron_jobs.expire_artifacts: no such cron job"):
        schedule(Settings(cron_jobs={"expire_artifacts": {"cron": "* * * * *"}}))
    with pytest.raises(ValidationError, match="not a cron line"):
        Settings(cron_jobs={"expire_build_artifacts_worker": {"cron": "every 7 minutes"}})


def test_overrides_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCKCOORD_CRON_JOBS__EXPIRE_BUILD_ARTIFACTS_WORKER__CRON", "*/2 * * * *")
    monkeypatch.setenv("MOCKCOORD_CRON_JOBS__CI_SCHEDULE_DELETE_OBJECTS_WORKER__ENABLED", "false")
    entries = {e.cron_job: e.cron for e in schedule(Settings())}
    assert entries["expire_build_artifacts_worker"] == "*/2 * * * *"
    assert "ci_schedule_delete_objects_worker" not in entries


def test_queue_names_are_gitlab_s() -> None:
    assert queue_name("ExpireBuildArtifactsWorker") == "cronjob:expire_build_artifacts"
    assert queue_name("Ci::ScheduleDeleteObjectsCronWorker") == "cronjob:ci_schedule_delete_objects_cron"
    assert (
        queue_name("ObjectStorage::DeleteStaleDirectUploadsWorker")
        == "cronjob:object_storage_delete_stale_direct_uploads"
    )


@pytest.mark.usefixtures("quiet_clock")
async def test_missed_fire_times_coalesce_into_one_run(coordinator: Coordinator, fake: type[FakeWorker]) -> None:
    scheduler = only_fake(coordinator.state)
    assert await scheduler.tick() == []  # starting up: the latest fire time is taken as seen
    assert await scheduler.tick() == []
    clock.advance(timedelta(days=2))  # hundreds of fire times
    await settle(await scheduler.tick())
    assert len(fake.performed) == 1
    assert await scheduler.tick() == []  # that fire time is done
    clock.advance(timedelta(minutes=7))
    await settle(await scheduler.tick())
    assert len(fake.performed) == 2


@pytest.mark.usefixtures("quiet_clock")
async def test_a_fire_time_runs_once_however_many_schedulers_look(
    coordinator: Coordinator, fake: type[FakeWorker]
) -> None:
    """Three pollers (three processes' worth) on one database: one run per fire time."""
    schedulers = [only_fake(coordinator.state) for _ in range(3)]
    for s in schedulers:
        await s.tick()
    for _ in range(3):
        clock.advance(timedelta(minutes=7))
        started = await asyncio.gather(*(s.tick() for s in schedulers))
        await settle([t for tasks in started for t in tasks])
    assert len(fake.performed) == 3


@pytest.mark.usefixtures("quiet_clock")
async def test_runs_of_a_job_never_overlap_in_a_process(coordinator: Coordinator, fake: type[FakeWorker]) -> None:
    fake.gate = asyncio.Event()
    busy, idle = only_fake(coordinator.state), only_fake(coordinator.state)
    await busy.tick()
    await idle.tick()
    clock.advance(timedelta(minutes=7))
    [first] = await busy.tick()
    await asyncio.sleep(0)
    clock.advance(timedelta(minutes=7))
    assert await busy.tick() == []  # still running: the fire time is left for another process
    [second] = await idle.tick()  # which takes it
    await asyncio.sleep(0)
    assert len(fake.performed) == 2
    clock.advance(timedelta(minutes=7))
    assert await busy.tick() == []
    fake.gate.set()
    await settle([first, second])
    [third] = await busy.tick()  # free again: the fire time nobody took is its own
    await settle([third])
    assert len(fake.performed) == 3


@pytest.mark.usefixtures("quiet_clock")
async def test_a_failing_job_is_logged_and_the_schedule_goes_on(
    coordinator: Coordinator, fake: type[FakeWorker], caplog: pytest.LogCaptureFixture
) -> None:
    def observed(status: str) -> float:
        value = metrics.REGISTRY.get_sample_value(
            "sidekiq_jobs_completion_seconds_count", {"worker": "Ci::FakeCronWorker", "job_status": status}
        )
        return value or 0.0

    failed_before, done_before = observed("fail"), observed("done")
    caplog.set_level(logging.INFO, logger="mockcoord.sidekiq")
    scheduler = only_fake(coordinator.state)
    await scheduler.tick()
    fake.fail = True
    clock.advance(timedelta(minutes=7))
    [run] = await scheduler.tick()
    assert (await run).job_status == "fail"
    fake.fail = False
    clock.advance(timedelta(minutes=7))
    [run] = await scheduler.tick()
    assert (await run).job_status == "done"

    lines = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith("{")]
    failed, done = [line for line in lines if line["class"] == "Ci::FakeCronWorker"]
    assert failed["severity"] == "WARN" and failed["job_status"] == "fail"
    assert (failed["error_class"], failed["error_message"]) == ("RuntimeError", "the store is away")
    assert failed["message"].startswith(f"Ci::FakeCronWorker JID-{failed['jid']}: fail: ")
    assert failed["queue"] == "cronjob:ci_fake_cron" and failed["meta.caller_id"] == "Cronjob"
    assert done["job_status"] == "done" and done["extra.ci_fake_cron_worker.done_count"] == 2
    assert isinstance(done["duration_s"], float)
    assert (observed("fail"), observed("done")) == (failed_before + 1, done_before + 1)


@pytest.mark.usefixtures("quiet_clock")
async def test_the_clock_going_back_runs_nothing_and_a_reset_forgets_fire_times(
    coordinator: Coordinator, fake: type[FakeWorker]
) -> None:
    scheduler = only_fake(coordinator.state, cron="0 0 1 1 *")  # yearly: the same fire time again below
    await scheduler.tick()
    clock.advance(timedelta(days=366))
    await settle(await scheduler.tick())
    await reset(coordinator.state)  # the clock back to real time
    assert await scheduler.tick() == []
    clock.advance(timedelta(days=366))
    await settle(await scheduler.tick())
    assert len(fake.performed) == 2


@pytest.mark.usefixtures("quiet_clock")
async def test_stopping_lets_a_run_finish_or_cuts_it_short(
    coordinator: Coordinator, fake: type[FakeWorker], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mockcoord.sidekiq")
    fake.gate = asyncio.Event()
    scheduler = only_fake(coordinator.state, cron="* * * * *")
    scheduler.poll_interval = 0.05
    await scheduler.start()
    await asyncio.sleep(0.1)
    clock.advance(timedelta(minutes=1))
    for _ in range(100):
        if fake.performed:
            break
        await asyncio.sleep(0.02)
    assert scheduler.running
    asyncio.get_running_loop().call_later(0.1, fake.gate.set)
    assert await scheduler.stop(grace=5) == []  # finished within the grace
    assert not scheduler.running

    fake.gate = asyncio.Event()  # never set: cut short
    scheduler = only_fake(coordinator.state, cron="* * * * *")
    scheduler.poll_interval = 0.05
    await scheduler.start()
    await asyncio.sleep(0.1)
    clock.advance(timedelta(minutes=1))
    for _ in range(100):
        if len(fake.performed) == 2:
            break
        await asyncio.sleep(0.02)
    assert await scheduler.stop(grace=0.1) == [FAKE]
    last = json.loads([r.getMessage() for r in caplog.records if r.getMessage().startswith("{")][-1])
    assert (last["job_status"], last["error_class"]) == ("fail", "Sidekiq::Shutdown")


@pytest.mark.usefixtures("quiet_clock")
async def test_a_scheduler_survives_a_failed_look(coordinator: Coordinator, fake: type[FakeWorker]) -> None:
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("database away")

    scheduler = Scheduler(coordinator.state, before_tick=flaky)
    scheduler.entries = [Entry(FAKE, "* * * * *", FakeWorker)]
    scheduler.poll_interval = 0.02
    await scheduler.start()
    for _ in range(200):
        if calls >= 4:
            break
        await asyncio.sleep(0.01)
    await scheduler.stop()
    assert calls >= 4
