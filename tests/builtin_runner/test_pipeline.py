"""Pipelines run by the built-in runner (its own process) over HTTP through Workhorse: sources
skipped (``GIT_STRATEGY=none``), dependencies' artifacts downloaded, scripts run in bash,
artifacts uploaded by ``when``, the log streamed and the state reported."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

from app import clock
from app.models import BuildStatus, FileFormat, FileType
from tests.builtin_runner.helpers import (
    artifacts_of,
    job_named,
    job_row,
    pipeline_scenario,
    run_jobs,
    stored_bytes,
    trace_of,
)

BUILD = {
    "name": "build",
    "stage": "build",
    "status": "pending",
    "script": [
        "mkdir -p out/sub",
        "echo built > out/a.txt",
        "echo deep > out/sub/b.txt",
        "echo '<testsuites/>' > report.xml",
        "echo 'building done'",
    ],
    "ci_artifacts": {"paths": ["out/"], "expire_in": "1 week", "reports": {"junit": ["report.xml"]}},
}
TEST = {
    "name": "test",
    "stage": "test",
    "status": "pending",
    "script": ["find out -type f | sort", 'test "$(cat out/a.txt)" = built', "cat out/sub/b.txt"],
}


async def test_two_stage_pipeline(stack, tmp_path):
    seeded = await stack.rails.seed(pipeline_scenario([BUILD, TEST]))
    build, test = job_named(seeded, "build"), job_named(seeded, "test")

    done = await run_jobs(stack.url, tmp_path, 2)

    assert done.code == 0, done.stderr
    for job in (build, test):
        row = await job_row(stack.rails, job["id"])
        assert row.status == BuildStatus.success, await trace_of(stack.rails, job["id"])
        assert row.failure_reason is None and row.finished_at is not None

    kinds = await artifacts_of(stack.rails, build["id"])
    assert set(kinds) == {FileType.archive, FileType.metadata, FileType.junit, FileType.trace}
    archive, junit = kinds[FileType.archive], kinds[FileType.junit]
    with zipfile.ZipFile(io.BytesIO(await stored_bytes(stack.rails, archive))) as zf:
        assert {n: zf.read(n) for n in zf.namelist() if not n.endswith("/")} == {
            "out/a.txt": b"built\n",
            "out/sub/b.txt": b"deep\n",
        }
    assert archive.file == "artifacts.zip"
    assert abs(archive.expire_at - (clock.now() + timedelta(weeks=1))) < timedelta(minutes=5)
    assert (junit.file, junit.file_format) == ("junit.xml.gz", FileFormat.gzip)

    build_log = await trace_of(stack.rails, build["id"])
    assert build_log.startswith("\x1b[0KRunning with gitlab-runner 19.4.0")
    assert "\x1b[32;1m$ echo 'building done'\x1b[0;m\nbuilding done\n" in build_log
    assert 'Executing "step_script" stage of the job script' in build_log
    assert "section_start:" in build_log and ":upload_artifacts_on_success\r\x1b[0K" in build_log
    assert 'Uploading artifacts as "archive" to coordinator... 201 Created' in build_log
    assert 'Uploading artifacts as "junit" to coordinator... 201 Created' in build_log
    assert build_log.endswith("\x1b[32;1mJob succeeded\x1b[0;m\n")

    test_log = await trace_of(stack.rails, test["id"])
    assert f"Downloading artifacts for build ({build['id']})..." in test_log
    assert "Downloading artifacts from coordinator... ok" in test_log
    assert "$ find out -type f | sort\x1b[0;m\nout/a.txt\nout/sub/b.txt\n" in test_log
    assert "$ cat out/sub/b.txt\x1b[0;m\ndeep\n" in test_log
    assert "Checking for jobs... received" in done.stderr


async def test_failing_script(stack, tmp_path):
    """The first failing command ends the script: after_script still runs, then the uploads for a
    failed job (``on_failure`` and ``always``, not ``on_success``)."""
    failing = {
        "stage": "build",
        "status": "pending",
        "script": [
            "mkdir out",
            "echo partial > out/log.txt",
            "echo '<testsuites/>' > report.xml",
            "exit 3",
            "echo never",
        ],
        "after_script": ['echo "after with status $CI_JOB_STATUS"'],
    }
    jobs = [
        {
            **failing,
            "name": "on-failure",
            "ci_artifacts": {"paths": ["out/"], "when": "on_failure", "reports": {"junit": ["report.xml"]}},
        },
        {**failing, "name": "on-success", "ci_artifacts": {"paths": ["out/"]}},
    ]
    seeded = await stack.rails.seed(pipeline_scenario(jobs))

    done = await run_jobs(stack.url, tmp_path, 2)

    assert done.code == 0, done.stderr
    for name in ("on-failure", "on-success"):
        job = job_named(seeded, name)
        row = await job_row(stack.rails, job["id"])
        assert (row.status, row.failure_reason) == (BuildStatus.failed, "script_failure")
        log = await trace_of(stack.rails, job["id"])
        assert "\x1b[32;1m$ exit 3\x1b[0;m\n" in log and "$ echo never" not in log
        assert 'Running after script...\x1b[0;m\n\x1b[32;1m$ echo "after with status $CI_JOB_STATUS"\x1b[0;m\n' in log
        assert "after with status failed\n" in log
        assert log.endswith("\x1b[31;1mERROR: Job failed: exit status 3\x1b[0;m\n")
        assert "Job failed: exit status 3" in done.stderr
    assert done.stderr.count("exit_code=3 failure_reason=script_failure") == 2

    uploaded = await artifacts_of(stack.rails, job_named(seeded, "on-failure")["id"])
    assert set(uploaded) == {FileType.archive, FileType.metadata, FileType.junit, FileType.trace}
    assert "Uploading artifacts for failed job" in await trace_of(stack.rails, job_named(seeded, "on-failure")["id"])
    skipped = await artifacts_of(stack.rails, job_named(seeded, "on-success")["id"])
    assert set(skipped) == {FileType.trace}
    assert "Uploading artifacts" not in await trace_of(stack.rails, job_named(seeded, "on-success")["id"])


async def test_variables_and_masking(stack, tmp_path):
    """Job variables are exported (and expanded); the masked job token and tokens with GitLab's
    prefixes reach the coordinator as ``[MASKED]`` (the coordinator's own x-ing never sees them)."""
    job = {
        "name": "vars",
        "status": "pending",
        "variables": {"GREETING": "hello from $CI_JOB_NAME", "PIPE_FAIL": "no"},
        "script": [
            'echo "greeting=$GREETING"',
            'echo "token=$CI_JOB_TOKEN"',
            "echo personal glpat-Abc_123.def-456 end",
            'printf "split:%s" "$CI_JOB_TOKEN"; sleep 0.2; echo " done"',
            'echo "dir=$CI_PROJECT_DIR server=$CI_SERVER"',
        ],
    }
    seeded = await stack.rails.seed(pipeline_scenario([job]))
    token = job_named(seeded, "vars")["token"]

    done = await run_jobs(stack.url, tmp_path, 1)

    assert done.code == 0, done.stderr
    log = await trace_of(stack.rails, job_named(seeded, "vars")["id"])
    assert "greeting=hello from vars\n" in log
    assert "token=[MASKED]\n" in log
    assert "personal glpat-[MASKED] end\n" in log
    assert "split:[MASKED] done\n" in log
    assert token not in log and "x" * len(token) not in log
    project_dir = tmp_path / "builds" / "builtin-r" / "0" / "acme" / "app"
    assert f"dir={project_dir} server=yes\n" in log
