"""Reading jobs with python-gitlab: ``project.jobs.get``, ``project.jobs.list``,
``pipeline.jobs.list`` with GitLab's pagination headers."""

from __future__ import annotations

from tests.e2e.conftest import Stack
from tests.project_jobs.helpers import call, client, jobs_by, scenario, token

JOB_KEYS = [
    "id",
    "status",
    "stage",
    "name",
    "ref",
    "tag",
    "coverage",
    "allow_failure",
    "created_at",
    "started_at",
    "finished_at",
    "erased_at",
    "duration",
    "queued_duration",
    "user",
    "commit",
    "pipeline",
    "web_url",
    "project",
    "artifacts_file",
    "artifacts",
    "runner",
    "runner_manager",
    "artifacts_expire_at",
    "archived",
    "tag_list",
]


async def test_get_job_has_gitlabs_keys_and_values(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    build = jobs_by(seeded, "build")[1]
    project = client(stack).projects.get("demo/app", lazy=True)
    job = await call(lambda: project.jobs.get(build["id"]))
    attrs = {k: v for k, v in job.attributes.items() if k != "project_id"}  # python-gitlab adds project_id
    assert list(attrs) == JOB_KEYS
    assert (attrs["id"], attrs["name"], attrs["stage"], attrs["status"]) == (build["id"], "build", "build", "success")
    assert attrs["ref"] == "main" and attrs["tag"] is False and attrs["coverage"] is None
    assert attrs["web_url"] == f"{stack.url}/demo/app/-/jobs/{build['id']}"
    assert attrs["pipeline"]["id"] == build["pipeline_id"] and attrs["pipeline"]["iid"] == 2
    assert attrs["pipeline"]["web_url"] == f"{stack.url}/demo/app/-/pipelines/{build['pipeline_id']}"
    assert attrs["user"]["username"] == "dev" and attrs["user"]["web_url"] == f"{stack.url}/dev"
    assert attrs["tag_list"] == ["docker", "linux"]
    assert attrs["artifacts_file"]["filename"] == "artifacts.zip"
    assert [(a["file_type"], a["filename"], a["file_format"]) for a in attrs["artifacts"]] == [
        ("archive", "artifacts.zip", "zip"),
        ("junit", "junit.gz", "gzip"),
        ("trace", "job.log", "raw"),
    ]
    assert attrs["created_at"].endswith("Z") and attrs["duration"] == 0.0
    assert attrs["project"] == {"ci_job_token_scope_enabled": False}
    assert attrs["runner"] is None and attrs["archived"] is False
    assert "failure_reason" not in attrs


async def test_failed_job_shows_failure_reason_and_no_artifacts_file(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    lint = jobs_by(seeded, "lint")[0]
    job = await call(lambda: client(stack).projects.get("demo/app", lazy=True).jobs.get(lint["id"]))
    assert job.status == "failed" and "failure_reason" in job.attributes
    assert "artifacts_file" not in job.attributes and job.attributes["artifacts"] == []


async def test_pipeline_jobs_list_all_follows_next_links(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    pipeline_id = jobs_by(seeded, "test")[0]["pipeline_id"]
    # Chained lazy objects need the numeric id: python-gitlab would encode a path twice.
    project_id = seeded["projects"]["demo/app"]["id"]
    pipeline = client(stack).projects.get(project_id, lazy=True).pipelines.get(pipeline_id, lazy=True)
    listed = await call(lambda: pipeline.jobs.list(get_all=True, per_page=2))
    assert [j.name for j in listed] == ["deploy", "lint", "test", "build"]  # newest first
    some = await call(lambda: list(pipeline.jobs.list(iterator=True, per_page=3)))
    assert [j.id for j in some] == [j.id for j in listed]
    failed = await call(lambda: pipeline.jobs.list(scope=["failed", "manual"], get_all=True))
    assert sorted(j.name for j in failed) == ["deploy", "lint"]


async def test_pipeline_jobs_pagination_headers(stack: Stack) -> None:
    seeded = await stack.rails.seed(scenario())
    pipeline_id = jobs_by(seeded, "test")[0]["pipeline_id"]
    url = f"/api/v4/projects/demo%2Fapp/pipelines/{pipeline_id}/jobs"
    res = await stack.client.get(url, params={"per_page": 3, "page": 1}, headers={"PRIVATE-TOKEN": token("dev")})
    assert res.status_code == 200 and len(res.json()) == 3
    h = res.headers
    assert (h["x-page"], h["x-per-page"], h["x-next-page"], h["x-prev-page"]) == ("1", "3", "2", "")
    assert (h["x-total"], h["x-total-pages"]) == ("4", "2")
    base = f"{stack.url}{url}?id=demo%2Fapp&include_retried=false"
    assert h["link"] == (
        f'<{base}&page=2&per_page=3&pipeline_id={pipeline_id}>; rel="next", '
        f'<{base}&page=1&per_page=3&pipeline_id={pipeline_id}>; rel="first", '
        f'<{base}&page=2&per_page=3&pipeline_id={pipeline_id}>; rel="last"'
    )
    last = await stack.client.get(
        url, params={"per_page": 3, "page": 2, "scope[]": "success"}, headers={"PRIVATE-TOKEN": token("dev")}
    )
    assert [j["name"] for j in last.json()] == []  # two successful jobs fit on page 1
    assert (last.headers["x-total"], last.headers["x-prev-page"], last.headers["x-next-page"]) == ("2", "1", "")
    assert "scope%5B%5D=success" in last.headers["link"]


async def test_project_jobs_are_not_counted(stack: Stack) -> None:
    """``GET /projects/:id/jobs`` paginates ``without_count``: no X-Total, no rel="last"."""
    await stack.rails.seed(scenario())
    project = client(stack).projects.get("demo/app", lazy=True)
    jobs = await call(lambda: project.jobs.list(get_all=True, per_page=4))
    assert len(jobs) == 8 and [j.id for j in jobs] == sorted((j.id for j in jobs), reverse=True)
    res = await stack.client.get("/api/v4/projects/1/jobs?per_page=4", headers={"PRIVATE-TOKEN": token("dev")})
    assert "x-total" not in res.headers and "x-total-pages" not in res.headers
    assert res.headers["x-next-page"] == "2" and 'rel="last"' not in res.headers["link"]
    running = await call(lambda: project.jobs.list(scope="running", get_all=True))
    assert [j.name for j in running] == ["test"]
