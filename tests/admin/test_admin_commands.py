"""``mockcoord admin``: each console snippet of the page as a command, its table, JSON and CSV,
and the deletions: dry run, the question, --yes, counts and bytes, two-phase deletion."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import select

from app import clock
from app.models import (
    Build,
    BuildArtifactsSizeRefresh,
    DeletedObject,
    FileType,
    JobArtifact,
    Pipeline,
    ProjectStatistics,
)
from tests.admin.helpers import rows, run_cli, usage
from tests.conftest import Coordinator

YEAR = timedelta(days=366)


def scenario() -> dict:
    """demo/app: an old pipeline (a kept archive, one expiring in 3 days, a job with only its log)
    and a fresh one; other/lib: an old archive expiring tomorrow. "Old" is made so below."""
    return {
        "groups": [{"path": "demo"}, {"path": "other"}],
        "projects": [
            {
                "path": "demo/app",
                "pipelines": [
                    {
                        "jobs": [
                            {
                                "name": "kept",
                                "artifacts": [
                                    {"file_type": "archive", "size": 4000, "expire_in": "never"},
                                    {"file_type": "junit", "size": 100, "expire_in": "never"},
                                    {"file_type": "trace", "size": 10, "expire_in": "never"},
                                ],
                            },
                            {
                                "name": "soon",
                                "artifacts": [{"file_type": "archive", "size": 500, "expire_in": "3 days"}],
                            },
                            {"name": "logonly", "status": "failed", "artifacts": [{"file_type": "trace", "size": 20}]},
                        ]
                    },
                    {"jobs": [{"name": "fresh", "artifacts": [{"file_type": "archive", "size": 700}]}]},
                ],
            },
            {
                "path": "other/lib",
                "pipelines": [
                    {
                        "jobs": [
                            {"name": "lib", "artifacts": [{"file_type": "archive", "size": 300, "expire_in": "1 day"}]}
                        ]
                    }
                ],
            },
        ],
    }


OLD = {"kept", "soon", "logonly", "lib"}


async def seeded(admin: Coordinator) -> dict:
    """The scenario, its old jobs and their pipelines finished two years ago."""
    s = await admin.seed(scenario())
    long_ago = clock.now() - 2 * YEAR
    old_jobs = [j["id"] for j in s["jobs"] if j["name"] in OLD]
    async with admin.state.db.session() as session:
        await session.exec(update(Build).where(Build.id.in_(old_jobs)).values(finished_at=long_ago))  # type: ignore[call-overload,union-attr]
        pipelines = {b.commit_id for b in (await session.exec(select(Build).where(Build.id.in_(old_jobs)))).all()}  # type: ignore[union-attr]
        await session.exec(update(Pipeline).where(Pipeline.id.in_(pipelines)).values(finished_at=long_ago))  # type: ignore[call-overload,union-attr]
        await session.commit()
    return {**s, "app": s["projects"]["demo/app"]["id"], "lib": s["projects"]["other/lib"]["id"]}


def parse_json(output: str) -> object:
    return json.loads(output)


def parse_csv(output: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(output)))


# --- listings ----------------------------------------------------------------------------


async def test_projects_by_size(admin: Coordinator) -> None:
    s = await seeded(admin)
    result = await run_cli(admin, "admin", "projects-by-size", "--format", "json")
    assert result.exit_code == 0, result.output
    assert parse_json(result.output) == [
        {"size": 4000 + 100 + 10 + 500 + 20 + 700, "full_path": "demo/app", "project_id": s["app"]},
        {"size": 300, "full_path": "other/lib", "project_id": s["lib"]},
    ]
    result = await run_cli(admin, "admin", "projects-by-size", "--limit", "1", "--format", "csv")
    assert parse_csv(result.output) == [{"size": "5330", "full_path": "demo/app", "project_id": str(s["app"])}]
    table = (await run_cli(admin, "admin", "projects-by-size")).output
    assert "5.2 KiB" in table and "demo/app" in table and "300 Bytes" in table
    assert table.index("demo/app") < table.index("other/lib")


async def test_largest_artifacts_and_project_artifacts(admin: Coordinator) -> None:
    s = await seeded(admin)
    result = await run_cli(admin, "admin", "largest-artifacts", "demo/app", "--limit", "2", "--format", "json")
    found = parse_json(result.output)
    assert [(a["file_type"], a["size"]) for a in found] == [("archive", 4000), ("archive", 700)]  # type: ignore[index]
    by_id = await run_cli(admin, "admin", "largest-artifacts", str(s["app"]), "--limit", "2", "--format", "json")
    assert parse_json(by_id.output) == found
    result = await run_cli(admin, "admin", "project-artifacts", "demo/app", "--format", "csv")
    listed = parse_csv(result.output)
    assert list(listed[0]) == ["job_id", "size", "file_type", "created_at", "store", "location"]
    assert [r["size"] for r in listed] == ["4000", "700", "500", "100", "20", "10"]
    (archive,) = await rows(admin, JobArtifact, JobArtifact.size == 4000)
    assert listed[0]["job_id"] == str(archive.job_id) and listed[0]["store"] == "local"
    assert listed[0]["location"].startswith(str(admin.settings.artifacts_path))
    assert listed[0]["location"].endswith(f"/{archive.job_id}/{archive.id}/{archive.file}")
    table = (await run_cli(admin, "admin", "project-artifacts", "demo/app")).output
    assert "4000b" in table and "archive" in table
    missing = await run_cli(admin, "admin", "largest-artifacts", "demo/nothing")
    assert missing.exit_code == 1
    assert missing.output.strip() == "no project 'demo/nothing' (give its full path, group/project, or its id)"


async def test_builds_with_artifacts_that_never_expire_or_expire_late(admin: Coordinator) -> None:
    s = await seeded(admin)
    jobs = {j["name"]: j["id"] for j in s["jobs"]}
    never = parse_json(
        (await run_cli(admin, "admin", "builds-with-artifacts", "--never-expire", "--format", "json")).output
    )
    assert [b["build_id"] for b in never] == [jobs["kept"]]  # type: ignore[index]
    assert never[0]["full_path"] == "demo/app" and never[0]["expires"] == "never"  # type: ignore[index]
    # The default expiry is 30 days: the fresh job's archive expires after 7 days from now, the old ones long ago.
    later = parse_json(
        (await run_cli(admin, "admin", "builds-with-artifacts", "--expire-after", "7d", "--format", "json")).output
    )
    assert [b["build_id"] for b in later] == [jobs["fresh"]]  # type: ignore[index]
    none = await run_cli(admin, "admin", "builds-with-artifacts", "--expire-after", "1.year", "--format", "json")
    assert parse_json(none.output) == []
    table = (await run_cli(admin, "admin", "builds-with-artifacts", "--never-expire")).output
    assert "Build ID" in table and "Artifacts expire at" in table
    assert f"{jobs['kept']}" in table and "demo/app" in table and "never" in table
    listed = parse_csv(
        (await run_cli(admin, "admin", "builds-with-artifacts", "--never-expire", "--format", "csv")).output
    )
    assert [(r["build_id"], r["full_path"], r["artifacts_expire_at"]) for r in listed] == [
        (str(jobs["kept"]), "demo/app", "")
    ]
    largest = (await run_cli(admin, "admin", "largest-artifacts", "demo/app", "--limit", "1")).output
    assert "3.9 KiB" in largest and "archive" in largest
    both = await run_cli(admin, "admin", "builds-with-artifacts", "--never-expire", "--expire-after", "7d")
    assert both.exit_code == 2 and "give exactly one of --never-expire, --expire-after DURATION" in both.output
    bad = await run_cli(admin, "admin", "builds-with-artifacts", "--expire-after", "soon")
    assert bad.exit_code == 2 and "--expire-after 'soon'" in bad.output


# --- deleting old artifacts ------------------------------------------------------------------


async def snapshot(admin: Coordinator) -> tuple:
    return (
        sorted((a.id, a.expire_at) for a in await rows(admin, JobArtifact)),
        len(await rows(admin, DeletedObject)),
        sorted((b.id, b.artifacts_expire_at) for b in await rows(admin, Build)),
        sorted((p.project_id, p.build_artifacts_size) for p in await rows(admin, ProjectStatistics)),
    )


async def test_dry_run_changes_nothing(admin: Coordinator) -> None:
    await seeded(admin)
    before = await snapshot(admin)
    result = await run_cli(
        admin, "admin", "delete-old-artifacts", "--finished-before", "1y", "--dry-run", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    body = parse_json(result.output)
    assert (body["dry_run"], body["jobs"], body["artifacts"], body["bytes"]) == (True, 3, 4, 4000 + 100 + 500 + 300)  # type: ignore[index]
    assert await snapshot(admin) == before
    table = await run_cli(admin, "admin", "delete-old-artifacts", "--finished-before", "1y", "--dry-run")
    assert "Would delete 4 artifacts (4.8 KiB) of 3 jobs finished before" in table.output
    assert await snapshot(admin) == before


async def test_the_question_then_yes_or_no(admin: Coordinator) -> None:
    s = await seeded(admin)
    before = await snapshot(admin)
    refused = await run_cli(
        admin, "admin", "delete-old-artifacts", "--finished-before", "1y", "--project", "demo/app", input="n\n"
    )
    assert refused.exit_code == 1
    assert "Delete 3 artifacts (4.5 KiB) of 2 jobs finished before" in refused.output
    assert "in demo/app, kept ones included? [y/N]" in refused.output
    assert "Aborted: nothing was deleted." in refused.output
    no_answer = await run_cli(admin, "admin", "delete-old-artifacts", "--finished-before", "1y", input="")
    assert no_answer.exit_code == 1
    assert await snapshot(admin) == before

    done = await run_cli(
        admin, "admin", "delete-old-artifacts", "--finished-before", "1y", "--project", "demo/app", input="y\n"
    )
    assert done.exit_code == 0, done.output
    assert "Deleted 3 artifacts (4.5 KiB) of 2 jobs finished before" in done.output
    assert "mockcoord housekeeping expedite" in done.output and "Ci::DeleteObjectsWorker" in done.output
    left = {(a.file_type, a.size) for a in await rows(admin, JobArtifact, JobArtifact.project_id == s["app"])}
    assert left == {(FileType.trace, 10), (FileType.trace, 20), (FileType.archive, 700)}  # logs and the fresh job
    assert len(await rows(admin, DeletedObject)) == 3  # phase one: the files wait for the delete-objects worker
    assert await usage(admin, s["app"]) == 10 + 20 + 700
    assert await usage(admin, s["lib"]) == 300  # another project: untouched


async def test_yes_instance_wide_and_the_refresh_refusal(admin: Coordinator) -> None:
    s = await seeded(admin)
    async with admin.state.db.session() as session:
        session.add(BuildArtifactsSizeRefresh(project_id=s["lib"], state=2))
        await session.commit()
    result = await run_cli(
        admin, "admin", "delete-old-artifacts", "--finished-before", "1y", "--yes", "--format", "json"
    )
    body = parse_json(result.output)
    assert (body["jobs"], body["artifacts"], body["bytes"], body["refused_jobs"]) == (2, 3, 4600, 1)  # type: ignore[index]
    lib_job = next(i for i in body["items"] if i["project"] == "other/lib")  # type: ignore[index]
    assert (
        lib_job["error"] == "Action temporarily disabled. The project this job belongs to is undergoing stats refresh."
    )
    assert [a.size for a in await rows(admin, JobArtifact, JobArtifact.project_id == s["lib"])] == [300]
    # batch.update_all re-runs the batch's query: only the job that kept its artifacts still matches.
    (lib_build,) = await rows(admin, Build, Build.project_id == s["lib"])
    assert lib_build.artifacts_expire_at is not None and abs(lib_build.artifacts_expire_at - clock.now()) < timedelta(
        minutes=1
    )
    kept_build = next(b for b in await rows(admin, Build) if b.name == "kept")
    assert kept_build.artifacts_expire_at is None


async def test_csv_of_a_deletion_and_nothing_to_do(admin: Coordinator) -> None:
    await seeded(admin)
    result = await run_cli(
        admin, "admin", "delete-old-artifacts", "--finished-before", "1y", "--yes", "--format", "csv", "--limit", "1"
    )
    listed = parse_csv(result.stdout)  # the totals go to stderr
    assert result.stderr.startswith("Deleted 2 artifacts (4.0 KiB) of 1 jobs finished before")
    assert len(listed) == 1 and listed[0]["artifacts"] == "2" and listed[0]["bytes"] == "4100"
    nothing = await run_cli(admin, "admin", "delete-old-artifacts", "--finished-before", "5y", "--project", "other/lib")
    assert nothing.exit_code == 0
    assert "No job finished before" in nothing.output and "in other/lib has downloadable artifacts." in nothing.output


@pytest.mark.parametrize("bad", ["0d", "yesterday", ""])
async def test_a_bad_duration_is_one_line(admin: Coordinator, bad: str) -> None:
    result = await run_cli(admin, "admin", "delete-old-artifacts", "--finished-before", bad, "--yes")
    assert result.exit_code == 2 and result.output.startswith(f"--finished-before {bad!r}: ")


async def test_no_database_is_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from typer.testing import CliRunner

    from mockctl.cli import cli

    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["admin", "projects-by-size", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert result.output.strip().startswith(f"no mockcoord database at {tmp_path.resolve()}")
