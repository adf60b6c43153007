"""``mockcoord admin erase-old-jobs`` and ``delete-old-pipelines``: the page's erase and pipeline
snippets through Ci::BuildEraseService and Ci::DestroyPipelineService, line for line."""

from __future__ import annotations

import json

from app.models import Build, DeletedObject, JobArtifact, Pipeline
from tests.admin.helpers import rows, run_cli, usage
from tests.admin.test_admin_commands import seeded
from tests.conftest import Coordinator

OLD = ("--finished-before", "1y")
OLD_IN_APP = (*OLD, "--project", "demo/app")
DENIED = "Gitlab::Access::AccessDeniedError: dev may not destroy pipeline 1 (project 1)"


async def test_erase_old_jobs_prints_erased_or_skipped(admin: Coordinator) -> None:
    s = await seeded(admin)
    jobs = {j["name"]: j["id"] for j in s["jobs"]}
    before = await rows(admin, JobArtifact)
    dry = await run_cli(admin, "admin", "erase-old-jobs", *OLD_IN_APP, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"Ci::Build ID {jobs['kept']}... would be erased" in dry.output
    assert await rows(admin, JobArtifact) == before

    result = await run_cli(admin, "admin", "erase-old-jobs", *OLD_IN_APP, "--yes")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Ci::Build ID")]
    assert lines == [
        f"Ci::Build ID {jobs['kept']}... Erased",
        f"Ci::Build ID {jobs['soon']}... Erased",
        f"Ci::Build ID {jobs['logonly']}... Erased",
    ]
    assert "Erased 3 jobs (5 artifacts, logs included, 4.5 KiB); 0 skipped." in result.output
    erased = {b.name: b for b in await rows(admin, Build)}
    assert erased["kept"].erased_at is not None and erased["kept"].erased_by_id is not None
    assert erased["fresh"].erased_at is None
    left = [(a.job_id, a.size) for a in await rows(admin, JobArtifact)]
    assert left == [(jobs["fresh"], 700), (jobs["lib"], 300)]
    assert len(await rows(admin, DeletedObject)) == 5
    assert await usage(admin, s["app"]) == 700
    again = await run_cli(admin, "admin", "erase-old-jobs", *OLD_IN_APP, "--yes")
    assert f"Ci::Build ID {jobs['kept']}... Skipped (Nothing to erase or not erasable)" in again.output


async def test_erase_as_json_and_an_unknown_user(admin: Coordinator) -> None:
    await seeded(admin)
    result = await run_cli(admin, "admin", "erase-old-jobs", *OLD, "--yes", "--format", "json")
    body = json.loads(result.output)
    assert (body["jobs"], body["erased_jobs"], body["user"]) == (4, 4, "root")
    nobody = await run_cli(admin, "admin", "erase-old-jobs", *OLD, "--user", "nobody", "--yes")
    assert nobody.exit_code == 1 and nobody.output.startswith("no user 'nobody'")


async def test_delete_old_pipelines(admin: Coordinator) -> None:
    s = await seeded(admin)
    old = sorted({p.id for p in await rows(admin, Pipeline) if p.finished_at and p.finished_at.year < 2026}) or None
    pipelines = {p.id: p for p in await rows(admin, Pipeline)}
    refused = await run_cli(admin, "admin", "delete-old-pipelines", *OLD, input="n\n")
    assert refused.exit_code == 1 and len(await rows(admin, Pipeline)) == len(pipelines)
    result = await run_cli(admin, "admin", "delete-old-pipelines", *OLD, "--yes")
    assert result.exit_code == 0, result.output
    erasing = [line for line in result.output.splitlines() if line.startswith("Erasing pipeline")]
    gone = set(pipelines) - {p.id for p in await rows(admin, Pipeline)}
    assert erasing == [f"Erasing pipeline {p} for project {pipelines[p].project_id}" for p in sorted(gone)]
    assert len(gone) == 2 and old is not None
    assert "Deleted 2 pipelines: 4 jobs, 6 artifacts (4.8 KiB)." in result.output
    assert [a.size for a in await rows(admin, JobArtifact)] == [700]
    assert await usage(admin, s["lib"]) == 0


async def test_delete_old_pipelines_for_a_project_needs_destroy_pipeline(admin: Coordinator) -> None:
    await seeded(admin)
    await admin.seed({"users": [{"username": "dev"}]})
    denied = await run_cli(
        admin,
        "admin",
        "delete-old-pipelines",
        "--finished-before",
        "1y",
        "--project",
        "demo/app",
        "--user",
        "dev",
        "--yes",
    )
    assert denied.exit_code == 1
    assert denied.output.strip().endswith(
        "Gitlab::Access::AccessDeniedError: dev may not destroy pipeline 1 (project 1)"
    )
    result = await run_cli(admin, "admin", "delete-old-pipelines", *OLD_IN_APP, "--yes")
    assert [line for line in result.output.splitlines() if line.startswith("Erasing")] == ["Erasing pipeline 1"]
