"""The control plane's housekeeping (``/-/mock/housekeeping``), feature flags and release
(``/-/mock/features``), and ``/-/metrics``, over real HTTP against the real database."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import col, select

from app import clock
from app.lib import gitlab_version
from app.lib.exclusive_lease import ExclusiveLease
from app.models import DeletedObject, JobArtifact
from tests.conftest import ADMIN_TOKEN, Coordinator

ADMIN = {"PRIVATE-TOKEN": ADMIN_TOKEN}
FLAGS = (
    "ci_destroy_unlocked_job_artifacts",
    "ci_update_unlocked_job_artifacts",
    "ci_job_artifacts_backlog_work",
    "ci_detect_wrongly_expired_artifacts",
)


@pytest.fixture(autouse=True)
def short_runs(coordinator: Coordinator, monkeypatch: pytest.MonkeyPatch) -> Any:
    """GitLab's runs go on over empty batches (500 passes); a few are enough here."""
    limits = coordinator.settings.housekeeping
    monkeypatch.setattr(limits, "expire_loop_limit", 3)
    monkeypatch.setattr(limits, "unknown_loop_limit", 3)
    yield
    gitlab_version.configure(coordinator.settings.gitlab_version)


def artifact(name: str, *, expired: bool = True, locked: str = "unlocked", size: int = 100) -> dict[str, Any]:
    when = clock.now() + (timedelta(hours=-3) if expired else timedelta(days=3))
    return {
        "name": name,
        "status": "success",
        "artifacts": [
            {"file_type": "archive", "content": name[0] * size, "expire_at": when.isoformat(), "locked": locked}
        ],
    }


async def seed(
    c: Coordinator, jobs: list[dict[str, Any]], pipeline_locked: str = "unlocked", **extra: Any
) -> dict[str, int]:
    seeded = await c.seed(
        {
            **extra,
            "groups": [{"path": "acme"}],
            "projects": [
                {
                    "path": "acme/app",
                    "keep_latest_artifact": False,
                    "pipelines": [{"locked": pipeline_locked, "jobs": jobs}],
                }
            ],
        }
    )
    return {j["name"]: j["id"] for j in seeded["jobs"]}


async def run(c: Coordinator, worker: str) -> dict[str, Any]:
    res = await c.client.post("/-/mock/housekeeping/run", json={"worker": worker}, headers=ADMIN)
    assert res.status_code == 200, res.text
    return res.json()


async def test_run_expire_answers_what_it_did(coordinator: Coordinator) -> None:
    c = coordinator
    await seed(c, [artifact("gone"), artifact("kept", expired=False), artifact("held", locked="artifacts_locked")])
    done = await run(c, "expire")
    [only] = done["runs"]
    assert (only["cron_job"], only["job_class"], only["job_status"]) == (
        "expire_build_artifacts_worker",
        "ExpireBuildArtifactsWorker",
        "done",
    )
    assert only["result"] == {"destroyed_job_artifacts_count": 1}
    before, after = done["before"], done["after"]
    assert (before["artifacts"], before["artifacts_bytes"], before["expired_artifacts"]) == (3, 300, 2)
    assert before["expired_artifacts_by_locked"] == {"unlocked": 1, "artifacts_locked": 1, "unknown": 0}
    assert (after["artifacts"], after["artifacts_bytes"], after["expired_artifacts"]) == (2, 200, 1)
    assert (before["deleted_objects"], after["deleted_objects"], after["deleted_objects_ready"]) == (0, 1, 1)
    assert done["changed"]["artifacts"] == -1 and done["changed"]["deleted_objects"] == 1


async def test_run_all_goes_in_gitlab_s_order_and_empties_the_queue(coordinator: Coordinator) -> None:
    c = coordinator
    await seed(c, [artifact("old", locked="unknown"), artifact("gone")])
    async with c.state.db.session() as session:
        keys = [f"{a.file_final_path}" for a in (await session.exec(select(JobArtifact))).all()]
    assert len(keys) == 2
    done = await run(c, "all")
    assert [r["job_class"] for r in done["runs"]] == [
        "Ci::UpdateLockedUnknownArtifactsWorker",
        "ExpireBuildArtifactsWorker",
        "Ci::ScheduleDeleteObjectsCronWorker",
    ]
    unknown, expire, delete = (r["result"] for r in done["runs"])
    assert unknown["removed_count"] == 1 and expire["destroyed_job_artifacts_count"] == 1
    assert delete["removed_count"] == 2
    assert (done["after"]["artifacts"], done["after"]["deleted_objects"]) == (0, 0)


async def test_a_held_lease_is_the_run_s_failure_and_the_others_go_on(coordinator: Coordinator) -> None:
    c = coordinator
    await seed(c, [artifact("gone")])
    lease = ExclusiveLease(c.state.db, c.settings.redis_url, "expired_job_artifacts:destroy:lock", timedelta(minutes=6))
    token = await lease.try_obtain()
    assert token is not None
    try:
        done = await run(c, "all")
    finally:
        await lease.cancel(token)
    statuses = {r["job_class"]: (r["job_status"], r.get("error_class")) for r in done["runs"]}
    assert statuses["ExpireBuildArtifactsWorker"] == ("fail", "FailedToObtainLockError")
    assert statuses["Ci::ScheduleDeleteObjectsCronWorker"] == ("done", None)
    assert done["after"]["artifacts"] == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"worker": "everything"}, "worker: Input should be 'expire', 'unknown', 'delete_objects' or 'all'"),
        ({}, "worker: Field required"),
        ({"worker": "all", "limit": 5}, "limit: Extra inputs are not permitted"),
    ],
)
async def test_run_names_the_bad_field(coordinator: Coordinator, body: dict[str, Any], message: str) -> None:
    res = await coordinator.client.post("/-/mock/housekeeping/run", json=body, headers=ADMIN)
    assert (res.status_code, res.json()) == (422, {"message": message})


async def test_housekeeping_needs_the_admin(coordinator: Coordinator) -> None:
    res = await coordinator.client.post("/-/mock/housekeeping/run", json={"worker": "all"})
    assert res.status_code == 401
    res = await coordinator.client.post("/-/mock/housekeeping/expedite")
    assert res.status_code == 401


async def deleted_by_hand(c: Coordinator, count: int) -> None:
    """Artifacts deleted through the API: their files wait an hour (pick_up_at clamped)."""
    jobs = await seed(c, [artifact(f"job{i}", expired=False) for i in range(count)])
    for job_id in jobs.values():
        res = await c.client.delete(f"/api/v4/projects/acme%2Fapp/jobs/{job_id}/artifacts", headers=ADMIN)
        assert res.status_code == 204, res.text


async def test_expedite_removes_what_waits_now(coordinator: Coordinator, monkeypatch: pytest.MonkeyPatch) -> None:
    c = coordinator
    monkeypatch.setattr(c.settings.housekeeping, "delete_objects_batch_size", 2)
    await deleted_by_hand(c, 5)
    assert (await run(c, "delete_objects"))["runs"][0]["result"]["removed_count"] == 0  # not for an hour
    res = await c.client.post("/-/mock/housekeeping/expedite", headers=ADMIN)
    assert res.status_code == 200, res.text
    done = res.json()
    assert (done["batches"], done["removed"], done["failed"]) == (3, 5, 0)
    assert (done["before"]["deleted_objects"], done["before"]["deleted_objects_ready"]) == (5, 0)
    assert done["after"]["deleted_objects"] == 0
    async with c.state.db.session() as session:
        assert (await session.exec(select(DeletedObject))).all() == []


async def test_expedite_streams_its_progress_and_leaves_failing_rows(coordinator: Coordinator) -> None:
    """As the page's loop: a removal that fails is retried ten minutes on, so the loop ends
    with that row still queued (admin_facts section 7, item 7)."""
    c = coordinator
    await deleted_by_hand(c, 3)
    async with c.state.db.session() as session:
        victim = (await session.exec(select(DeletedObject).order_by(col(DeletedObject.id)))).first()
    assert victim is not None
    rule = {"component": "storage", "method": "DELETE", "path": re.escape(f"{victim.store_dir}/{victim.file}") + "$"}
    rule["status"] = 503
    assert (await c.client.post("/-/mock/faults", json=rule, headers=ADMIN)).status_code == 201
    async with c.client.stream(
        "POST", "/-/mock/housekeeping/expedite", headers={**ADMIN, "Accept": "application/x-ndjson"}
    ) as res:
        assert res.headers["content-type"].startswith("application/x-ndjson")
        steps = [json.loads(line) async for line in res.aiter_lines() if line]
    assert [s["event"] for s in steps] == ["start", "batch", "done"]
    assert steps[0]["made_ready"] == 3
    assert (steps[1]["removed"], steps[1]["failed"]) == (2, 1)
    done = steps[-1]
    assert (done["removed"], done["failed"], done["after"]["deleted_objects"]) == (2, 1, 1)
    async with c.state.db.session() as session:
        [left] = (await session.exec(select(DeletedObject))).all()
    assert left.id == victim.id and left.pick_up_at > clock.now() + timedelta(minutes=9)


async def test_expedite_takes_no_parameters(coordinator: Coordinator) -> None:
    res = await coordinator.client.post("/-/mock/housekeeping/expedite", json={"batches": 3}, headers=ADMIN)
    assert (res.status_code, res.json()) == (422, {"message": "body: expedite takes no parameters"})


# --- feature flags and the release ---------------------------------------------------------


async def features(c: Coordinator) -> dict[str, Any]:
    res = await c.client.get("/-/mock/features", headers=ADMIN)
    assert res.status_code == 200, res.text
    return res.json()


async def test_features_list_every_flag_with_the_release_s_defaults(coordinator: Coordinator) -> None:
    c = coordinator
    shown = await features(c)
    assert shown["gitlab_version"] == "newest"
    by_name = {f["name"]: f for f in shown["features"]}
    assert set(FLAGS) <= set(by_name)
    backlog = by_name["ci_job_artifacts_backlog_work"]
    assert (backlog["default"], backlog["gate"], backlog["enabled"]) == (True, None, True)
    assert backlog["effect"].startswith("on: UpdateLockedUnknownArtifactsWorker")

    res = await c.client.put("/-/mock/features", json={"gitlab_version": "15.2"}, headers=ADMIN)
    assert res.status_code == 200, res.text
    assert res.json()["gitlab_version"] == "15.2"
    by_name = {f["name"]: f for f in res.json()["features"]}
    for name in (
        "ci_destroy_unlocked_job_artifacts",
        "ci_update_unlocked_job_artifacts",
        "ci_job_artifacts_backlog_work",
    ):
        assert (by_name[name]["default"], by_name[name]["enabled"]) == (False, False), name
    assert gitlab_version.render(gitlab_version.current()) == "15.2"

    res = await c.client.put("/-/mock/features", json={"gitlab_version": None}, headers=ADMIN)
    assert res.json()["gitlab_version"] == "newest"


async def test_a_gate_wins_over_the_default_until_removed(coordinator: Coordinator) -> None:
    c = coordinator
    await c.client.put("/-/mock/features", json={"gitlab_version": "15.2"}, headers=ADMIN)
    res = await c.client.put("/-/mock/features/ci_job_artifacts_backlog_work", json={"enabled": True}, headers=ADMIN)
    assert res.status_code == 200, res.text
    assert {k: res.json()[k] for k in ("default", "gate", "enabled")} == {
        "default": False,
        "gate": True,
        "enabled": True,
    }
    await seed(c, [artifact("old", locked="unknown")])
    assert (await run(c, "unknown"))["runs"][0]["result"]["removed_count"] == 1  # the page's fix for 15.2

    res = await c.client.put("/-/mock/features/ci_job_artifacts_backlog_work", json={"enabled": None}, headers=ADMIN)
    assert {k: res.json()[k] for k in ("gate", "enabled")} == {"gate": None, "enabled": False}
    assert (await run(c, "unknown"))["runs"][0]["result"] == {}  # idle again


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/ci_unknown_flag", {"enabled": True}, "ci_unknown_flag: unknown feature flag (known: "),
        ("/ci_job_artifacts_backlog_work", {"enabled": "maybe"}, "enabled: Input should be a valid boolean"),
        ("/ci_job_artifacts_backlog_work", {}, "enabled: Field required"),
        ("", {"gitlab_version": "fifteen"}, "gitlab_version: Value error, not a GitLab release"),
        ("", {"gitlab_version": "15.2", "flags": {}}, "flags: Extra inputs are not permitted"),
    ],
)
async def test_features_name_what_is_wrong(coordinator: Coordinator, path: str, body: Any, message: str) -> None:
    res = await coordinator.client.put(f"/-/mock/features{path}", json=body, headers=ADMIN)
    assert res.status_code == 422
    assert res.json()["message"].startswith(message), res.json()
    assert gitlab_version.render(gitlab_version.current()) == "newest"


async def test_a_scenario_picks_the_release_and_its_flags_are_checked(coordinator: Coordinator) -> None:
    c = coordinator
    jobs = await seed(c, [artifact("new", expired=False)], gitlab_version="15.2")
    assert (await features(c))["gitlab_version"] == "15.2"
    async with c.state.db.session() as session:
        row = (await session.exec(select(JobArtifact).where(JobArtifact.job_id == jobs["new"]))).one()
    assert row.locked == 0  # a seed's explicit locked wins; the release is in force for what follows
    res = await c.client.post("/-/mock/seed", json={"feature_flags": {"ci_no_such_flag": True}}, headers=ADMIN)
    assert res.status_code == 422
    assert res.json()["message"].startswith("feature_flags: Value error, unknown feature flag 'ci_no_such_flag'")
    res = await c.client.post("/-/mock/seed", json={"gitlab_version": "16"}, headers=ADMIN)
    assert res.status_code == 422 and res.json()["message"].startswith("gitlab_version: ")
    await c.client.post("/-/mock/reset", headers=ADMIN)
    assert (await features(c))["gitlab_version"] == "newest"  # a reset goes back to the setting


async def test_a_failed_seed_leaves_the_release_as_it_was(coordinator: Coordinator) -> None:
    c = coordinator
    res = await c.client.post(
        "/-/mock/seed", json={"gitlab_version": "15.2", "projects": [{"path": "nobody/app"}]}, headers=ADMIN
    )
    assert res.status_code == 422, res.text
    assert (await features(c))["gitlab_version"] == "newest"


# --- /-/metrics ----------------------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_artifacts_and_the_queue_at_scrape_time(coordinator: Coordinator) -> None:
    c = coordinator
    await seed(
        c,
        [
            artifact("gone", size=10),
            artifact("kept", expired=False, size=20),
            artifact("held", locked="artifacts_locked", size=40),
        ],
    )
    res = await c.client.get("/-/metrics")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/plain")
    found = samples(res.text)
    store = "object_storage" if c.state.store.remote else "local"
    assert found[("mockcoord_job_artifacts", (("file_store", store), ("locked", "unlocked")))] == 2
    assert found[("mockcoord_job_artifacts_bytes", (("file_store", store), ("locked", "unlocked")))] == 30
    assert found[("mockcoord_job_artifacts", (("file_store", store), ("locked", "artifacts_locked")))] == 1
    assert found[("mockcoord_job_artifacts_expired", (("locked", "unlocked"),))] == 1
    assert found[("mockcoord_job_artifacts_expired", (("locked", "artifacts_locked"),))] == 1
    assert found[("mockcoord_ci_deleted_objects", ())] == 0
    assert ("mockcoord_ci_deleted_objects_oldest_pick_up_at_age_seconds", ()) not in found

    await run(c, "expire")
    found = samples((await c.client.get("/-/metrics")).text)
    assert found[("mockcoord_job_artifacts", (("file_store", store), ("locked", "unlocked")))] == 1
    assert found[("mockcoord_ci_deleted_objects", ())] == 1
    assert found[("mockcoord_ci_deleted_objects_ready", ())] == 1
    age = found[("mockcoord_ci_deleted_objects_oldest_pick_up_at_age_seconds", ())]
    assert 3 * 3600 - 60 < age < 3 * 3600 + 60  # pick_up_at is the expiry, three hours ago
    assert found[("destroyed_job_artifacts_count_total", ())] >= 1
    ran = ("sidekiq_jobs_completion_seconds_count", (("job_status", "done"), ("worker", "ExpireBuildArtifactsWorker")))
    assert found[ran] >= 1

    clock.advance(timedelta(days=4))
    found = samples((await c.client.get("/-/metrics")).text)
    assert found[("mockcoord_clock_offset_seconds", ())] == pytest.approx(4 * 86400, abs=1)
    assert found[("mockcoord_job_artifacts_expired", (("locked", "unlocked"),))] == 1  # "kept" expired since


async def test_metrics_are_for_whitelisted_addresses_only(
    coordinator: Coordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = coordinator
    res = await c.client.get("/-/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert res.status_code == 404  # behind a loopback proxy, the client is the forwarded address
    monkeypatch.setattr(c.settings, "monitoring_ip_whitelist", ["203.0.113.0/24"])
    assert (await c.client.get("/-/metrics", headers={"X-Forwarded-For": "203.0.113.9"})).status_code == 200
    assert (await c.client.get("/-/metrics")).status_code == 404


# --- GitLab's admin Features API -----------------------------------------------------------


async def test_gitlab_s_features_api_sets_and_removes_boolean_gates(coordinator: Coordinator) -> None:
    c = coordinator
    await c.seed({"users": [{"username": "dev", "token": "glpat-dev-token-0001"}]})
    assert (await c.client.get("/api/v4/features")).status_code == 401
    res = await c.client.get("/api/v4/features", headers={"PRIVATE-TOKEN": "glpat-dev-token-0001"})
    assert (res.status_code, res.json()) == (403, {"message": "403 Forbidden"})
    assert (await c.client.get("/api/v4/features", headers=ADMIN)).json() == []

    res = await c.client.post("/api/v4/features/ci_job_artifacts_backlog_work", data={"value": "false"}, headers=ADMIN)
    assert res.status_code == 201, res.text
    assert res.json() == {
        "name": "ci_job_artifacts_backlog_work",
        "state": "off",
        "gates": [{"key": "boolean", "value": False}],
        "definition": {"name": "ci_job_artifacts_backlog_work", "default_enabled": True},
    }
    flag = {f["name"]: f for f in (await features(c))["features"]}["ci_job_artifacts_backlog_work"]
    assert (flag["gate"], flag["enabled"]) == (False, False)  # what the workers read

    res = await c.client.post("/api/v4/features/some_other_flag", json={"value": True}, headers=ADMIN)
    assert res.status_code == 201 and res.json()["definition"] is None and res.json()["state"] == "on"
    listed = (await c.client.get("/api/v4/features", headers=ADMIN)).json()
    assert [f["name"] for f in listed] == ["ci_job_artifacts_backlog_work", "some_other_flag"]

    res = await c.client.post("/api/v4/features/some_other_flag", data={"value": "30"}, headers=ADMIN)
    assert res.status_code == 400 and "only boolean gates" in res.json()["message"]
    res = await c.client.post("/api/v4/features/some_other_flag", headers=ADMIN)
    assert (res.status_code, res.json()) == (400, {"error": "value is missing"})

    assert (await c.client.delete("/api/v4/features/ci_job_artifacts_backlog_work", headers=ADMIN)).status_code == 204
    flag = {f["name"]: f for f in (await features(c))["features"]}["ci_job_artifacts_backlog_work"]
    assert (flag["gate"], flag["enabled"]) == (None, True)
    assert [f["name"] for f in (await c.client.get("/api/v4/features", headers=ADMIN)).json()] == ["some_other_flag"]
