"""``gitlab:refresh_project_statistics_build_artifacts_size[CSV]`` and the refresh it queues: the
task's lines, the counter at 0 while batches are summed, the 409 on artifact deletion, the
finalizing step ten minutes later on the mock clock, deduplication of what changes meanwhile."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from app import clock
from app.models import (
    BuildArtifactsSizeRefresh,
    FeatureGate,
    JobArtifact,
    ProjectStatistics,
    RefreshState,
    ScheduledJob,
)
from app.services.ci.job_artifacts.delete_service import delete_job_artifacts
from app.services.projects import refresh_build_artifacts_size_statistics_service as refresh_service
from app.services.projects.statistics import refresh_amount
from app.workers import scheduled
from app.workers.cron import CRON_WORKERS
from app.workers.projects.schedule_refresh_build_artifacts_size_statistics_worker import (
    ScheduleRefreshBuildArtifactsSizeStatisticsWorker,
)
from mockctl.ports import free_port
from tests.admin.helpers import rows, run_cli, usage
from tests.conftest import ADMIN_TOKEN, Coordinator

TASK = "gitlab:refresh_project_statistics_build_artifacts_size"
NO_SLEEP = {"MOCKCOORD_HOUSEKEEPING__REFRESH_ENQUEUE_SLEEP_SECONDS": "0"}
NO_IDS = "Project IDs must be listed in the CSV under the header PROJECT_ID"
REFRESH_409 = "Action temporarily disabled. The project this pipeline belongs to is undergoing stats refresh."


def scenario() -> dict:
    def job(name: str, size: int) -> dict:
        return {"name": name, "artifacts": [{"file_type": "archive", "size": size}, {"file_type": "trace", "size": 7}]}

    return {
        "groups": [{"path": "demo"}, {"path": "other"}],
        "projects": [
            {"path": "demo/app", "pipelines": [{"jobs": [job("a", 100), job("b", 200), job("c", 400)]}]},
            {"path": "other/lib", "pipelines": [{"jobs": [job("x", 1000)]}]},
        ],
    }


async def set_usage(c: Coordinator, project_id: int, wrong: int) -> None:
    async with c.state.db.session() as session:
        await session.exec(  # type: ignore[call-overload]
            update(ProjectStatistics)
            .where(ProjectStatistics.project_id == project_id)
            .values(build_artifacts_size=wrong)
        )
        await session.commit()


async def artifact_sum(c: Coordinator, project_id: int) -> int:
    return sum(a.size for a in await rows(c, JobArtifact, JobArtifact.project_id == project_id))


def csv_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "projects.csv"
    path.write_text(text)
    return str(path)


def task_for(tmp_path: Path, *lines: object) -> str:
    """The task with a CSV file of these lines as its argument."""
    body = "".join(f"{line}\n" for line in lines)
    return f"{TASK}[{csv_file(tmp_path, body)}]"


async def test_refresh_lifecycle(admin: Coordinator, tmp_path: Path) -> None:
    seeded = await admin.seed(scenario())
    app_id = seeded["projects"]["demo/app"]["id"]
    lib_id = seeded["projects"]["other/lib"]["id"]
    true_app = await artifact_sum(admin, app_id)
    assert await usage(admin, app_id) == true_app == 100 + 200 + 400 + 3 * 7
    await set_usage(admin, app_id, 5)  # usage gone wrong, as the page's section starts

    result = await run_cli(admin, "rake", task_for(tmp_path, "PROJECT_ID", app_id, 999), env=NO_SLEEP)
    assert result.exit_code == 0, result.output
    assert result.output == "Loaded 2 project ids to import\n1/2 (missing projects: 1)\nDone.\n"
    (refresh,) = await rows(admin, BuildArtifactsSizeRefresh)
    assert (refresh.project_id, refresh.state) == (app_id, RefreshState.created)
    assert await usage(admin, app_id) == 5  # the task only queues

    # A queued refresh that has not started does not block deletion; a started one does.
    job_c = next(j for j in seeded["jobs"] if j["name"] == "c")
    job_a = next(j for j in seeded["jobs"] if j["name"] == "a")
    admin.settings.housekeeping.refresh_batch_size = 2
    admin.settings.housekeeping.refresh_interval_seconds = 0
    first = await refresh_service.execute(admin.state)
    assert first is not None and (first.project_id, first.artifacts, first.last_batch) == (app_id, 2, False)
    assert await usage(admin, app_id) == 0  # the column reads 0 from the refresh's start
    async with admin.state.db.session() as session:
        assert await refresh_amount(session, app_id) == first.bytes == 100 + 7
    res = await admin.client.delete(
        f"/api/v4/projects/{app_id}/jobs/{job_c['id']}/artifacts", headers={"PRIVATE-TOKEN": ADMIN_TOKEN}
    )
    assert (res.status_code, res.json()) == (409, {"message": REFRESH_409})
    res = await admin.client.delete(f"/api/v4/projects/{app_id}/artifacts", headers={"PRIVATE-TOKEN": ADMIN_TOKEN})
    assert res.status_code == 409

    # Meanwhile (a console deletion does not ask): job a's archive was counted, job c's not yet.
    async with admin.state.db.session() as session:
        assert await delete_job_artifacts(session, job_a["id"]) == 1
        assert await delete_job_artifacts(session, job_c["id"]) == 1
    assert await usage(admin, app_id) == 0

    done = await ScheduleRefreshBuildArtifactsSizeStatisticsWorker(admin.state).perform()
    assert done["max_running_jobs"] == 1 and done["finalizing_refresh_ids"] == [refresh.id]
    (refresh,) = await rows(admin, BuildArtifactsSizeRefresh)
    assert refresh.state == RefreshState.finalizing
    (job,) = await rows(admin, ScheduledJob)
    assert job.job_class == "Projects::FinalizeProjectStatisticsRefreshWorker"
    assert job.args == ["Projects::BuildArtifactsSizeRefresh", refresh.id]
    assert await scheduled.run_due(admin.state) == []  # not due yet
    assert await usage(admin, app_id) == 0

    clock.advance(timedelta(minutes=9, seconds=59))
    assert await scheduled.run_due(admin.state) == []
    clock.advance(timedelta(seconds=2))
    (ran,) = await scheduled.run_due(admin.state)
    assert ran["job_class"] == "Projects::FinalizeProjectStatisticsRefreshWorker" and "error" not in ran
    remaining = await artifact_sum(admin, app_id)
    assert remaining == true_app - 100 - 400 == 7 + 200 + 7 + 7
    assert await usage(admin, app_id) == remaining
    assert await rows(admin, BuildArtifactsSizeRefresh) == []
    assert await usage(admin, lib_id) == 1007  # not listed, not touched
    res = await admin.client.delete(
        f"/api/v4/projects/{app_id}/jobs/{job_c['id']}/artifacts", headers={"PRIVATE-TOKEN": ADMIN_TOKEN}
    )
    assert res.status_code == 204


async def test_artifacts_created_during_the_refresh_count_once(admin: Coordinator, tmp_path: Path) -> None:
    seeded = await admin.seed(scenario())
    app_id = seeded["projects"]["demo/app"]["id"]
    result = await run_cli(admin, "rake", task_for(tmp_path, "PROJECT_ID", app_id), env=NO_SLEEP)
    assert result.exit_code == 0
    assert await refresh_service.execute(admin.state) is not None  # started: the newest id remembered
    # A new artifact of demo/app, recorded as an upload records it (its increment may come twice).
    from app.models import Build
    from app.services.projects.statistics import increment_build_artifacts_size

    (build,) = await rows(admin, Build, Build.project_id == app_id, Build.name == "a")
    async with admin.state.db.session() as session:
        artifact = JobArtifact(project_id=app_id, job_id=build.id, file_type=4, size=50, file="junit.xml.gz")
        session.add(artifact)
        await session.flush()
        await increment_build_artifacts_size(session, app_id, 50, artifact.id)
        await increment_build_artifacts_size(session, app_id, 50, artifact.id)  # a retried increment: once
        await session.commit()
    admin.settings.housekeeping.refresh_interval_seconds = 0
    await ScheduleRefreshBuildArtifactsSizeStatisticsWorker(admin.state).perform()
    clock.advance(timedelta(minutes=10, seconds=1))
    await scheduled.run_due(admin.state)
    assert await usage(admin, app_id) == await artifact_sum(admin, app_id) == 100 + 200 + 400 + 3 * 7 + 50


async def test_with_every_refresh_flag_off_queued_refreshes_never_run(admin: Coordinator, tmp_path: Path) -> None:
    seeded = await admin.seed(scenario())
    app_id = seeded["projects"]["demo/app"]["id"]
    await run_cli(admin, "rake", task_for(tmp_path, "PROJECT_ID", app_id), env=NO_SLEEP)
    async with admin.state.db.session() as session:
        session.add(FeatureGate(feature_key="projects_build_artifacts_size_refresh", value="false"))
        await session.commit()
    done = await ScheduleRefreshBuildArtifactsSizeStatisticsWorker(admin.state).perform()
    assert done == {"max_running_jobs": 0, "batches": 0, "artifacts": 0, "bytes": 0, "finalizing_refresh_ids": []}
    (refresh,) = await rows(admin, BuildArtifactsSizeRefresh)
    assert refresh.state == RefreshState.created


def test_the_cron_job_is_gitlab_s() -> None:
    worker = CRON_WORKERS["projects_schedule_refresh_build_artifacts_size_statistics_worker"]
    assert (worker.job_class, worker.cron) == (
        "Projects::ScheduleRefreshBuildArtifactsSizeStatisticsWorker",
        "2/17 * * * *",
    )


async def test_batches_of_500_with_a_sleep_and_duplicates_skipped(admin: Coordinator, tmp_path: Path) -> None:
    """1,100 ids (two real projects among them, one listed twice): three groups, three sleeps."""
    seeded = await admin.seed(scenario())
    ids = [seeded["projects"]["demo/app"]["id"], seeded["projects"]["other/lib"]["id"]]
    listed = [ids[0], *range(10_000, 11_097), ids[1], ids[0]]
    sleeps: list[float] = []
    from app.tasks.gitlab import refresh_project_statistics_build_artifacts_size as task

    lines: list[str] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    path = csv_file(tmp_path, "PROJECT_ID\n" + "\n".join(map(str, listed)) + "\n")
    await task.run(admin.state, path, task.Output(lines.append, lines.append), sleep=sleep)
    assert lines == [
        "Loaded 1100 project ids to import",
        "1/1100 (missing projects: 499)",
        "1/1100 (missing projects: 999)",
        "3/1100 (missing projects: 1097)",
        "Done.",
    ]
    assert sleeps == [1.0, 1.0, 1.0]
    assert sorted(r.project_id for r in await rows(admin, BuildArtifactsSizeRefresh)) == sorted(ids)


@pytest.fixture
def csv_server(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "ok.csv").write_text("PROJECT_ID\n1\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object) -> None:
            super().__init__(*args, directory=str(tmp_path))  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


async def test_the_csv_from_a_url(admin: Coordinator, csv_server: str) -> None:
    seeded = await admin.seed(scenario())
    assert seeded["projects"]["demo/app"]["id"] == 1
    result = await run_cli(admin, "rake", f"{TASK}[{csv_server}/ok.csv]", env=NO_SLEEP)
    assert (result.exit_code, result.output) == (
        0,
        "Loaded 1 project ids to import\n1/1 (missing projects: 0)\nDone.\n",
    )
    # GitLab does not check the answer's status: a 404 page is read as the CSV (no PROJECT_ID header).
    result = await run_cli(admin, "rake", f"{TASK}[{csv_server}/missing.csv]", env=NO_SLEEP)
    assert result.exit_code == 0
    assert "answered 404" in result.output
    assert "Project IDs must be listed in the CSV under the header PROJECT_ID" in result.output


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("", "no CSV given: rake 'gitlab:refresh_project_statistics_build_artifacts_size[FILE_OR_URL]'"),
        ("/nonexistent/projects.csv", "/nonexistent/projects.csv: No such file or directory"),
        ("http://127.0.0.1:{port}/p.csv", "http://127.0.0.1:{port}/p.csv: "),
    ],
)
async def test_bad_arguments_are_one_line_and_change_nothing(admin: Coordinator, argument: str, message: str) -> None:
    await admin.seed(scenario())
    port = free_port()
    task = f"{TASK}[{argument.format(port=port)}]" if argument else TASK
    result = await run_cli(admin, "rake", task, env=NO_SLEEP)
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.startswith(message.format(port=port))
    assert await rows(admin, BuildArtifactsSizeRefresh) == []


async def test_a_wrong_header_or_no_ids_is_gitlab_s_red_message(admin: Coordinator, tmp_path: Path) -> None:
    await admin.seed(scenario())
    for text, loaded in (("projectid\n1\n2\n3\n", 3), ("PROJECT_ID\n", 0), ("", 0)):
        result = await run_cli(admin, "rake", f"{TASK}[{csv_file(tmp_path, text)}]", env=NO_SLEEP)
        assert result.exit_code == 0
        assert result.output == f"Loaded {loaded} project ids to import\n{NO_IDS}\n"
    assert await rows(admin, BuildArtifactsSizeRefresh) == []


async def test_a_malformed_csv_is_one_line(admin: Coordinator, tmp_path: Path) -> None:
    result = await run_cli(admin, "rake", task_for(tmp_path, "PROJECT_ID", '"1'), env=NO_SLEEP)
    assert result.exit_code == 1 and "malformed CSV" in result.output
    assert len(result.output.strip().splitlines()) == 1


async def test_an_unknown_task_is_rake_s_message(admin: Coordinator) -> None:
    result = await run_cli(admin, "rake", "gitlab:nothing[1]")
    assert result.exit_code == 1 and result.output.startswith("Don't know how to build task 'gitlab:nothing'")


async def test_the_schedule_runs_the_finalizing_step_when_it_is_due(admin: Coordinator, tmp_path: Path) -> None:
    """A Sidekiq process's look (``Scheduler.tick``) also runs the scheduled set's due jobs."""
    from app.workers.scheduler import Scheduler

    seeded = await admin.seed(scenario())
    app_id = seeded["projects"]["demo/app"]["id"]
    await run_cli(admin, "rake", task_for(tmp_path, "PROJECT_ID", app_id), env=NO_SLEEP)
    admin.settings.housekeeping.refresh_interval_seconds = 0
    await ScheduleRefreshBuildArtifactsSizeStatisticsWorker(admin.state).perform()
    scheduler = Scheduler(admin.state)
    scheduler.entries = []  # only the scheduled set
    await scheduler.tick()
    await scheduler.stop()
    assert await usage(admin, app_id) == 0 and len(await rows(admin, ScheduledJob)) == 1
    clock.advance(timedelta(minutes=10, seconds=1))
    scheduler = Scheduler(admin.state)
    scheduler.entries = []
    await scheduler.tick()
    await scheduler.stop()
    assert await usage(admin, app_id) == await artifact_sum(admin, app_id)
    assert await rows(admin, ScheduledJob) == [] and await rows(admin, BuildArtifactsSizeRefresh) == []
