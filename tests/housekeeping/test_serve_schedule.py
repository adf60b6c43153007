"""``mockcoord serve``'s stack runs the cron schedule inside Rails (``cron=True``), logging to
``log/sidekiq.log``; everyone else's stack (the pytest plugin, troubleshoot, flows) runs none."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from app.config import Settings
from mockctl.ports import free_port
from mockctl.stack import running_stack
from tests.housekeeping.cron_lines import EVERY_TWO_HOURS, QUIET_MOMENT

TOKEN = "glpat-schedule-test"


def stack_settings(tmp: Path) -> Settings:
    return Settings(
        data_dir=tmp,
        workhorse_port=free_port(),
        rails_port=free_port(),
        admin_token=TOKEN,
        object_store={"enabled": False},
        cron_poll_interval=0.05,
        housekeeping={"expire_loop_limit": 1, "unknown_loop_limit": 1},
        cron_jobs={
            name: {"cron": EVERY_TWO_HOURS}
            for name in (
                "expire_build_artifacts_worker",
                "update_locked_unknown_artifacts_worker",
                "ci_schedule_delete_objects_worker",
                "object_storage_delete_stale_direct_uploads_worker",
                "projects_schedule_refresh_build_artifacts_size_statistics_worker",
            )
        },
    )


def sidekiq_lines(tmp: Path) -> list[dict[str, Any]]:
    log = tmp / "log" / "sidekiq.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


async def test_serve_runs_the_schedule_in_rails_when_the_clock_passes_a_fire_time(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path)
    async with (
        running_stack(settings, cron=True) as stack,
        httpx.AsyncClient(base_url=stack.url, headers={"PRIVATE-TOKEN": TOKEN}, timeout=10) as client,
    ):
        # back to a quiet moment: a clock going back runs nothing
        assert (await client.post("/-/mock/clock", json={"set": QUIET_MOMENT})).status_code == 200
        await asyncio.sleep(0.2)
        assert sidekiq_lines(tmp_path) == []
        assert (await client.post("/-/mock/clock", json={"advance": "2 hours"})).status_code == 200
        for _ in range(400):
            if len(sidekiq_lines(tmp_path)) == 5:
                break
            await asyncio.sleep(0.05)
    lines = sidekiq_lines(tmp_path)
    assert sorted(line["class"] for line in lines) == [
        "Ci::ScheduleDeleteObjectsCronWorker",
        "Ci::UpdateLockedUnknownArtifactsWorker",
        "ExpireBuildArtifactsWorker",
        "ObjectStorage::DeleteStaleDirectUploadsWorker",
        "Projects::ScheduleRefreshBuildArtifactsSizeStatisticsWorker",
    ]
    assert {line["job_status"] for line in lines} == {"done"}


async def test_other_stacks_run_no_schedule(tmp_path: Path) -> None:
    settings = stack_settings(tmp_path)
    async with (
        running_stack(settings) as stack,
        httpx.AsyncClient(base_url=stack.url, headers={"PRIVATE-TOKEN": TOKEN}, timeout=10) as client,
    ):
        assert (await client.post("/-/mock/clock", json={"advance": "2 hours"})).status_code == 200
        await asyncio.sleep(0.5)  # ten looks' worth, had there been a scheduler
    assert sidekiq_lines(tmp_path) == []
