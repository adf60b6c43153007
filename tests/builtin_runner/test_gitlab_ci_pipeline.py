"""The whole job lifecycle, as a CI user sees it: a project's repository carries a
``.gitlab-ci.yml``; python-gitlab creates a pipeline; the built-in runner (registered with the
registration token, its own process) fetches the sources over git HTTP through Workhorse, runs
the jobs in stage order, passes artifacts from ``build`` to ``test`` in direct (302 to object
storage) or proxy (Workhorse send-url) mode; python-gitlab then downloads the archive, one
file of it, by ref and job name, keeps and deletes them."""

from __future__ import annotations

import asyncio
import io
import zipfile
from datetime import timedelta
from pathlib import Path

import gitlab
import pytest

from app import clock
from app.models import FileType
from tests.builtin_runner.helpers import REGISTRATION_TOKEN, artifacts_of, runner_cli, trace_of
from tests.conftest import ADMIN_TOKEN
from tests.e2e.conftest import Stack

PAT = "glpat-pipeline-developer-01"
CI_CONFIG = """
stages: [build, test, cleanup]
build:
  stage: build
  script:
    - mkdir -p out
    - cp src/hello.txt out/hello.txt
    - echo "built $CI_COMMIT_SHORT_SHA" > out/build-info.txt
    - echo '<testsuites><testsuite name="unit" tests="1"><testcase name="ok"/></testsuite></testsuites>' > report.xml
  artifacts:
    paths: [out/]
    expire_in: 1 week
    reports:
      junit: report.xml
test:
  stage: test
  dependencies: [build]
  script:
    - find out -type f | sort
    - test "$(cat out/hello.txt)" = "hello from the repository"
cleanup:
  stage: cleanup
  when: on_failure
  script: [echo cleaning up]
"""


def scenario() -> dict:
    return {
        "settings": {"runner_registration_token": REGISTRATION_TOKEN},
        "users": [{"username": "dev", "token": PAT}],
        "groups": [{"path": "acme", "members": [{"user": "dev", "access_level": "maintainer"}]}],
        "projects": [
            {
                "path": "acme/app",
                "repository": {"files": {".gitlab-ci.yml": CI_CONFIG, "src/hello.txt": "hello from the repository\n"}},
            }
        ],
    }


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {n: archive.read(n) for n in archive.namelist() if not n.endswith("/")}


@pytest.fixture(params=["direct", "proxy"])
def download_mode(request: pytest.FixtureRequest, stack: Stack):
    if not stack.rails.state.store.remote:
        pytest.skip("direct and proxy downloads are object storage modes")
    cfg = stack.rails.settings.object_store
    cfg.proxy_download = request.param == "proxy"
    yield request.param
    cfg.proxy_download = False


async def test_pipeline_from_gitlab_ci_yml_run_by_the_builtin_runner(
    stack: Stack, download_mode: str, tmp_path: Path
) -> None:
    seeded = await stack.rails.seed(scenario())
    project_id = seeded["projects"]["acme/app"]["id"]
    gl = gitlab.Gitlab(stack.url, private_token=PAT)
    project = gl.projects.get(project_id, lazy=True)

    pipeline = await asyncio.to_thread(project.pipelines.create, {"ref": "main"})
    assert (pipeline.status, pipeline.ref, pipeline.sha) == (
        "pending",
        "main",
        seeded["projects"]["acme/app"]["repository"]["sha"],
    )

    config = tmp_path / "config.toml"
    registered = await runner_cli(
        "register", "--url", stack.url, "--registration-token", REGISTRATION_TOKEN, "--config", str(config),
        "--name", "e2e", cwd=tmp_path,
    )  # fmt: skip
    assert registered.code == 0, registered.stderr
    ran = await runner_cli(
        "run", "--config", str(config), "--max-jobs", "2", "--wait-timeout", "60", cwd=tmp_path, limit=180
    )
    assert ran.code == 0, ran.stderr

    await asyncio.to_thread(pipeline.refresh)
    jobs = {j.name: j for j in await asyncio.to_thread(pipeline.jobs.list, get_all=True)}
    assert pipeline.status == "success", {n: (j.status, j.failure_reason) for n, j in jobs.items()}
    assert {n: j.status for n, j in jobs.items()} == {"build": "success", "test": "success", "cleanup": "skipped"}
    build, test = jobs["build"], jobs["test"]

    build_log = await trace_of(stack.rails, build.id)
    assert "Fetching changes" in build_log and "Checking out" in build_log, build_log
    assert 'Uploading artifacts as "junit" to coordinator... 201 Created' in build_log
    test_log = await trace_of(stack.rails, test.id)
    assert f"Downloading artifacts for build ({build.id})..." in test_log
    assert "out/build-info.txt\nout/hello.txt\n" in test_log and "Job succeeded" in test_log
    stored = await artifacts_of(stack.rails, build.id)
    assert {FileType.archive, FileType.metadata, FileType.junit, FileType.trace} <= set(stored)
    assert abs(stored[FileType.archive].expire_at - (clock.now() + timedelta(weeks=1))) < timedelta(minutes=5)

    # How the test job's download was answered: a 302 to object storage, or Workhorse's send-url.
    requests = await stack.rails.client.get(
        "/-/mock/requests",
        params={"component": "rails", "method": "GET", "path": f"^/api/v4/jobs/{build.id}/artifacts$"},
        headers={"PRIVATE-TOKEN": ADMIN_TOKEN},
    )
    # (runner 19's direct flow asks twice: the no-redirect probe, then a redirect-following GET)
    assert {e["status"] for e in requests.json()["requests"]} == {302 if download_mode == "direct" else 200}

    # python-gitlab, as a user would fetch the results
    job = await asyncio.to_thread(project.jobs.get, build.id)
    assert job.artifacts_file["filename"] == "artifacts.zip"
    archive = members(await asyncio.to_thread(job.artifacts))
    assert archive["out/hello.txt"] == b"hello from the repository\n"
    assert archive["out/build-info.txt"] == f"built {pipeline.sha[:8]}\n".encode()
    assert await asyncio.to_thread(job.artifact, "out/hello.txt") == b"hello from the repository\n"
    by_ref = await asyncio.to_thread(project.artifacts.download, ref_name="main", job="build")
    assert members(by_ref) == archive
    raw = await asyncio.to_thread(project.artifacts.raw, "main", "out/build-info.txt", "build")
    assert raw == archive["out/build-info.txt"]

    await asyncio.to_thread(job.keep_artifacts)
    kept = await asyncio.to_thread(project.jobs.get, build.id)
    assert kept.artifacts_expire_at is None
    await asyncio.to_thread(job.delete_artifacts)
    with pytest.raises(gitlab.GitlabGetError) as gone:
        await asyncio.to_thread(job.artifacts)
    assert gone.value.response_code == 404
