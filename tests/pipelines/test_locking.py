"""Keep the latest artifacts: when a pipeline stops, older locked pipelines of its ref are
unlocked (with their job artifacts), except the ref's newest successful one."""

from __future__ import annotations

from app.models import ArtifactLocked
from tests.pipelines.helpers import artifact_locks, created, finish, pipeline_row, scenario, take
from tests.rails.helpers import upload, zip_bytes

CONFIG = "build:\n  script: make\n  artifacts: {paths: [out/]}\n"
LOCKED, UNLOCKED = ArtifactLocked.artifacts_locked, ArtifactLocked.unlocked


async def run_pipeline(c, ref: str = "main", state: str = "success") -> int:
    """A pipeline whose one job uploads an archive and ends in ``state``."""
    pipeline = await created(c, ref)
    job = await take(c)
    assert job is not None and job["job_info"]["pipeline_id"] == pipeline["id"]
    res = await upload(c, job["id"], job["token"], zip_bytes({"out/a.txt": ref}))
    assert res.status_code == 201, res.text
    await finish(c, job, state)
    return pipeline["id"]


async def locks(c, *pipeline_ids: int) -> list[tuple[int, set[int]]]:
    return [((await pipeline_row(c, p)).locked, await artifact_locks(c, p)) for p in pipeline_ids]


async def test_newer_pipeline_unlocks_older_ones_of_its_ref(coordinator):
    await coordinator.seed(scenario(CONFIG))
    first = await run_pipeline(coordinator)
    other_ref = await run_pipeline(coordinator, "feature")
    assert await locks(coordinator, first, other_ref) == [(LOCKED, {LOCKED}), (LOCKED, {LOCKED})]

    second = await run_pipeline(coordinator)
    assert await locks(coordinator, first, second, other_ref) == [
        (UNLOCKED, {UNLOCKED}),
        (LOCKED, {LOCKED}),
        (LOCKED, {LOCKED}),  # another ref is left alone
    ]

    # a failed pipeline stays locked as the newest, and keeps the last success locked
    failed = await run_pipeline(coordinator, state="failed")
    assert await locks(coordinator, second, failed) == [(LOCKED, {LOCKED}), (LOCKED, {LOCKED})]

    third = await run_pipeline(coordinator)
    assert await locks(coordinator, second, failed, third) == [
        (UNLOCKED, {UNLOCKED}),
        (UNLOCKED, {UNLOCKED}),
        (LOCKED, {LOCKED}),
    ]


async def test_running_pipeline_does_not_unlock(coordinator):
    await coordinator.seed(scenario(CONFIG))
    first = await run_pipeline(coordinator)
    pending = await created(coordinator)
    job = await take(coordinator)
    assert job is not None
    assert await locks(coordinator, first) == [(LOCKED, {LOCKED})]  # nothing stopped yet
    await finish(coordinator, job)
    assert (await pipeline_row(coordinator, first)).locked == UNLOCKED
    assert (await pipeline_row(coordinator, pending["id"])).locked == LOCKED


async def test_keep_latest_artifact_off(coordinator):
    await coordinator.seed(scenario(CONFIG, keep_latest_artifact=False))
    first = await run_pipeline(coordinator)
    assert await locks(coordinator, first) == [(UNLOCKED, {UNLOCKED})]


async def test_instance_setting_off(coordinator):
    await coordinator.seed({**scenario(CONFIG), "settings": {"keep_latest_artifact": False}})
    first = await run_pipeline(coordinator)
    assert await locks(coordinator, first) == [(UNLOCKED, {UNLOCKED})]
