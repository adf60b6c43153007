"""GitLab's housekeeping workers on a real instance: expiry, the unknown backlog, two-phase
deletion, flags and releases, leases and failing stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from app import clock
from app.lib import gitlab_version
from app.lib.exclusive_lease import ExclusiveLease
from app.models import ArtifactLocked, DeletedObject, JobArtifact, ProjectStatistics
from app.uploaders.job_artifact_uploader import artifact_key
from tests.conftest import ADMIN_TOKEN, Coordinator
from tests.rails.helpers import job, pipeline_scenario, upload, zip_bytes

ADMIN = {"PRIVATE-TOKEN": ADMIN_TOKEN}
EXPIRE = "expire_build_artifacts_worker"
UNKNOWN = "update_locked_unknown_artifacts_worker"
DELETE_OBJECTS = "ci_schedule_delete_objects_worker"


@pytest.fixture(autouse=True)
def newest_release() -> Any:
    yield
    gitlab_version.configure("newest")


def scenario(pipelines: list[dict[str, Any]], *, flags: dict[str, bool] | None = None) -> dict[str, Any]:
    return {
        "feature_flags": flags or {},
        "users": [{"username": "alice"}],
        "groups": [{"path": "acme"}],
        "projects": [
            {
                "path": "acme/app",
                "keep_latest_artifact": False,
                "members": [{"user": "alice", "access_level": "maintainer"}],
                "pipelines": pipelines,
            }
        ],
    }


async def perform(c: Coordinator, name: str) -> dict[str, Any]:
    res = await c.client.post(f"/-/mock/workers/{name}/perform", headers=ADMIN)
    assert res.status_code == 200, res.text
    return res.json()


async def remaining(c: Coordinator) -> dict[int, int]:
    """job id -> locked of every remaining non-trace artifact."""
    async with c.state.db.session() as session:
        rows = (
            await session.exec(select(JobArtifact.job_id, JobArtifact.locked).where(JobArtifact.file_type != 3))
        ).all()
    return dict(rows)


async def deleted_objects(c: Coordinator) -> list[DeletedObject]:
    async with c.state.db.session() as session:
        return list((await session.exec(select(DeletedObject).order_by(col(DeletedObject.id)))).all())


async def statistics_consistent(c: Coordinator) -> None:
    """``build_artifacts_size`` equals the sum of the project's artifact sizes."""
    async with c.state.db.session() as session:
        for stats in (await session.exec(select(ProjectStatistics))).all():
            total = (
                await session.exec(
                    select(func.coalesce(func.sum(JobArtifact.size), 0)).where(
                        JobArtifact.project_id == stats.project_id
                    )
                )
            ).one()
            assert stats.build_artifacts_size == total


def job_ids(seeded: dict[str, Any]) -> dict[str, int]:
    return {j["name"]: j["id"] for j in seeded["jobs"]}


def job_with(name: str, *, expired: bool = True, locked: str | None = None, **extra: Any) -> dict[str, Any]:
    when = clock.now() + (timedelta(hours=-3) if expired else timedelta(days=3))
    spec = {"file_type": "archive", "content": name * 10, "expire_at": when.isoformat(), **extra}
    if locked:
        spec["locked"] = locked
    return {"name": name, "status": "success", "artifacts": [spec]}


async def test_expiry_destroys_expired_unlocked_artifacts_in_two_phases(coordinator: Coordinator) -> None:
    c = coordinator
    jobs = job_ids(
        await c.seed(
            scenario(
                [
                    {
                        "jobs": [
                            job_with("gone"),
                            job_with("fresh", expired=False),
                            job_with("locked", locked="artifacts_locked"),
                            job_with("unknown", locked="unknown"),
                        ]
                    }
                ]
            )
        )
    )
    async with c.state.db.session() as session:
        key = artifact_key((await session.exec(select(JobArtifact).where(JobArtifact.job_id == jobs["gone"]))).one())
    assert await c.state.store.head(key) is not None

    assert await perform(c, EXPIRE) == {"job_class": "ExpireBuildArtifactsWorker", "destroyed_job_artifacts_count": 1}
    assert set(await remaining(c)) == {jobs["fresh"], jobs["locked"], jobs["unknown"]}
    [pending] = await deleted_objects(c)
    assert f"{pending.store_dir}/{pending.file}" == key
    # expired three hours ago: pick_up_at is the expiry, within the clamp, so ready now
    assert pending.pick_up_at <= clock.now()
    assert await c.state.store.head(key) is not None  # phase one leaves the file
    await statistics_consistent(c)

    done = await perform(c, DELETE_OBJECTS)
    assert (done["removed_count"], done["failed_count"]) == (1, 0)
    assert await deleted_objects(c) == []
    assert await c.state.store.head(key) is None


async def test_pick_up_at_is_clamped_to_an_hour_ahead(coordinator: Coordinator) -> None:
    c = coordinator
    jobs = job_ids(await c.seed(scenario([{"jobs": [job_with("far", expired=False, locked="unlocked")]}])))
    res = await c.client.delete(f"/api/v4/projects/acme%2Fapp/jobs/{jobs['far']}/artifacts", headers=ADMIN)
    assert res.status_code == 204, res.text
    [pending] = await deleted_objects(c)  # expiring in three days: clamped to an hour from now
    assert timedelta(minutes=59) < pending.pick_up_at - clock.now() <= timedelta(hours=1)
    assert (await perform(c, DELETE_OBJECTS))["removed_count"] == 0  # not ready for an hour
    clock.advance(timedelta(hours=1, minutes=1))
    assert (await perform(c, DELETE_OBJECTS))["removed_count"] == 1


async def test_unknown_backlog_locks_or_destroys_by_the_pipeline(coordinator: Coordinator) -> None:
    c = coordinator
    seeded = await c.seed(
        scenario(
            [
                {"locked": "artifacts_locked", "jobs": [job_with("kept", locked="unknown")]},
                {
                    "locked": "unlocked",
                    "jobs": [job_with("old", locked="unknown"), job_with("new", expired=False, locked="unknown")],
                },
            ]
        )
    )
    jobs = job_ids(seeded)
    done = await perform(c, UNKNOWN)
    assert (done["removed_count"], done["locked_count"]) == (1, 1)
    assert await remaining(c) == {jobs["kept"]: ArtifactLocked.artifacts_locked, jobs["new"]: ArtifactLocked.unknown}
    assert len(await deleted_objects(c)) == 1
    await statistics_consistent(c)
    # the expiry worker never sees unknown rows; the now-locked one stays too
    assert (await perform(c, EXPIRE))["destroyed_job_artifacts_count"] == 0


async def test_backlog_worker_is_idle_when_its_flag_is_off(coordinator: Coordinator) -> None:
    c = coordinator
    await c.seed(
        scenario(
            [{"locked": "unlocked", "jobs": [job_with("old", locked="unknown")]}],
            flags={"ci_job_artifacts_backlog_work": False},
        )
    )
    assert await perform(c, UNKNOWN) == {"job_class": "Ci::UpdateLockedUnknownArtifactsWorker"}
    assert len(await remaining(c)) == 1


async def test_15_2_walks_by_the_pipeline_lock_and_writes_unknown(coordinator: Coordinator) -> None:
    """15.0-15.2 defaults: slow expiry joins the pipeline (an unknown row of an unlocked pipeline
    goes), the backlog worker idles; enabling the page's flags restores 15.3's behaviour."""
    c = coordinator
    gitlab_version.configure("15.2")
    seeded = await c.seed(
        scenario(
            [
                {"locked": "artifacts_locked", "jobs": [job_with("held", locked="unlocked")]},
                {"locked": "unlocked", "jobs": [job_with("loose", locked="unknown")]},
            ]
        )
    )
    jobs = job_ids(seeded)
    assert await perform(c, UNKNOWN) == {"job_class": "Ci::UpdateLockedUnknownArtifactsWorker"}
    assert (await perform(c, EXPIRE))["destroyed_job_artifacts_count"] == 1
    assert set(await remaining(c)) == {jobs["held"]}  # its own column says unlocked; its pipeline is locked

    gitlab_version.configure("15.3")  # the fast path reads the artifact's own column
    assert (await perform(c, EXPIRE))["destroyed_job_artifacts_count"] == 1
    assert await remaining(c) == {}


async def test_wrongly_expired_artifacts_become_permanent_on_15_x(coordinator: Coordinator) -> None:
    c = coordinator
    gitlab_version.configure("15.3")
    suspicious = datetime(2021, 6, 21, 22, 0, tzinfo=UTC)  # the page's sample
    ordinary = datetime(2021, 6, 21, 22, 0, 7, tzinfo=UTC)
    jobs = job_ids(
        await c.seed(
            scenario(
                [
                    {
                        "jobs": [
                            {
                                "name": "a",
                                "artifacts": [
                                    {"content": "a", "expire_at": suspicious.isoformat(), "locked": "unlocked"}
                                ],
                            },
                            {
                                "name": "b",
                                "artifacts": [
                                    {"content": "b", "expire_at": ordinary.isoformat(), "locked": "unlocked"}
                                ],
                            },
                        ]
                    }
                ],
                flags={"ci_detect_wrongly_expired_artifacts": True},
            )
        )
    )
    assert (await perform(c, EXPIRE))["destroyed_job_artifacts_count"] == 1
    async with c.state.db.session() as session:
        spared = (await session.exec(select(JobArtifact).where(JobArtifact.job_id == jobs["a"]))).one()
    assert spared.expire_at is None  # never expires now
    assert set(await remaining(c)) == {jobs["a"]}


async def test_final_objects_stay_behind_on_16_1_and_go_on_16_3(coordinator: Coordinator) -> None:
    c = coordinator
    if not c.state.store.remote:
        pytest.skip("@final paths are object storage's")
    for release, stays in (("16.1", True), ("16.3", False)):
        await c.client.post("/-/mock/reset", headers=ADMIN)
        gitlab_version.configure(release)
        jobs = job_ids(await c.seed(scenario([{"jobs": [job_with("direct", locked="unlocked")]}])))
        async with c.state.db.session() as session:
            row = (await session.exec(select(JobArtifact).where(JobArtifact.job_id == jobs["direct"]))).one()
            row.file_final_path = f"{artifact_key(row).rsplit('/', 4)[0]}/@final/ab/cd/{'e' * 60}"
            session.add(row)
            await session.commit()
            key = row.file_final_path
        await c.state.store.put_bytes(key, b"final bytes")
        assert (await perform(c, EXPIRE))["destroyed_job_artifacts_count"] == 1
        assert (await perform(c, DELETE_OBJECTS))["removed_count"] == 1  # "succeeds" either way
        assert await deleted_objects(c) == []
        assert (await c.state.store.head(key) is not None) is stays, release


async def test_a_failed_removal_keeps_the_row_for_a_retry_ten_minutes_later(coordinator: Coordinator) -> None:
    c = coordinator
    await c.seed(scenario([{"jobs": [job_with("gone", locked="unlocked")]}]))
    assert (await perform(c, EXPIRE))["destroyed_job_artifacts_count"] == 1
    [pending] = await deleted_objects(c)
    rule = {"component": "storage", "method": "DELETE", "status": 503, "error": "SlowDown"}
    created = await c.client.post("/-/mock/faults", json=rule, headers=ADMIN)
    assert created.status_code == 201, created.text
    done = await perform(c, DELETE_OBJECTS)
    assert (done["removed_count"], done["failed_count"]) == (0, 1)
    [retry] = await deleted_objects(c)
    assert timedelta(minutes=9) < retry.pick_up_at - clock.now() <= timedelta(minutes=10)
    assert await c.state.store.head(f"{retry.store_dir}/{retry.file}") is not None
    await c.client.delete(f"/-/mock/faults/{created.json()['id']}", headers=ADMIN)
    assert (await perform(c, DELETE_OBJECTS))["removed_count"] == 0  # waits its ten minutes
    clock.advance(timedelta(minutes=11))
    assert (await perform(c, DELETE_OBJECTS))["removed_count"] == 1
    assert await c.state.store.head(f"{retry.store_dir}/{retry.file}") is None


async def test_a_held_lease_fails_the_run_and_deletes_nothing(coordinator: Coordinator) -> None:
    c = coordinator
    await c.seed(scenario([{"jobs": [job_with("gone", locked="unlocked")]}]))
    lease = ExclusiveLease(c.state.db, None, "expired_job_artifacts:destroy:lock", timedelta(minutes=6))
    token = await lease.try_obtain()
    assert token is not None
    res = await c.client.post(f"/-/mock/workers/{EXPIRE}/perform", headers=ADMIN)
    assert res.status_code == 409
    assert res.json() == {"message": "Failed to obtain a lock 'expired_job_artifacts:destroy:lock'"}
    assert len(await remaining(c)) == 1
    await lease.cancel(token)
    assert (await perform(c, EXPIRE))["destroyed_job_artifacts_count"] == 1


async def test_the_redis_lease_is_gitlabs_key_and_only_its_holder_frees_it(coordinator: Coordinator) -> None:
    redis = pytest.importorskip("redis.asyncio")
    url = "redis://127.0.0.1:6379/5"
    client = redis.from_url(url)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Redis at {url} is unreachable: {exc}")
    await client.delete("gitlab:exclusive_lease:test:lock")
    first = ExclusiveLease(coordinator.state.db, url, "test:lock", timedelta(seconds=30))
    token = await first.try_obtain()
    assert token and await client.get("gitlab:exclusive_lease:test:lock") == token.encode()
    assert await ExclusiveLease(coordinator.state.db, url, "test:lock", timedelta(seconds=30)).try_obtain() is None
    await first.cancel("someone-else")
    assert await first.exists()
    await first.cancel(token)
    assert not await first.exists()
    await client.aclose()


async def test_new_artifacts_are_written_unknown_while_ci_update_unlocked_job_artifacts_is_off(
    coordinator: Coordinator,
) -> None:
    c = coordinator
    for release, written in (("15.2", ArtifactLocked.unknown), ("15.3", ArtifactLocked.artifacts_locked)):
        await c.client.post("/-/mock/reset", headers=ADMIN)
        gitlab_version.configure(release)
        test = job(await c.seed(pipeline_scenario()), "test")  # keep-latest on: the pipeline is locked
        res = await upload(c, test["id"], test["token"], zip_bytes({"a.txt": "a"}), "artifact_type=archive")
        assert res.status_code == 201, res.text
        async with c.state.db.session() as session:
            row = (await session.exec(select(JobArtifact).where(JobArtifact.job_id == test["id"]))).first()
        assert row is not None and row.locked == written, release
