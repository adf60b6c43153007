"""How a runner author tests artifact handling against mockcoord (see docs/testing-your-runner.md).

Runs as-is with `pytest examples/` once mockcoord is installed: the `coordinator` fixture
comes from mockcoord's pytest plugin. Replace the httpx calls with your runner's code.
"""

import io
import zipfile

import httpx

SCENARIO = {
    "users": [{"username": "dev"}],
    "projects": [
        {
            "path": "dev/app",
            "pipelines": [
                {
                    "user": "dev",
                    "status": "running",
                    "jobs": [
                        {"name": "build", "stage": "build", "status": "running"},
                        {"name": "test", "stage": "test", "status": "running"},
                    ],
                }
            ],
        }
    ],
}


def make_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("out/app.bin", b"\x7fELF" + b"\0" * 1000)
    return buffer.getvalue()


def upload(url: str, job: dict, data: bytes) -> httpx.Response:
    """What gitlab-runner sends: JOB-TOKEN, a multipart body with one `file` part."""
    return httpx.post(
        f"{url}/api/v4/jobs/{job['id']}/artifacts?artifact_type=archive&expire_in=1+week",
        headers={"JOB-TOKEN": job["token"], "X-Request-Id": f"upload-{job['id']}"},
        files={"file": ("artifacts.zip", data, "application/octet-stream")},
    )


def test_artifacts_pass_from_build_to_test(coordinator) -> None:
    seeded = coordinator.seed(SCENARIO)
    build, test = coordinator.job(seeded, "build"), coordinator.job(seeded, "test")
    data = make_zip()

    assert upload(coordinator.url, build, data).status_code == 201

    # the dependent job downloads it the way gitlab-runner 19 does: no redirects first...
    first = httpx.get(
        f"{coordinator.url}/api/v4/jobs/{build['id']}/artifacts?direct_download=true",
        headers={"JOB-TOKEN": test["token"]},
    )
    assert first.status_code == 302
    # ...then from object storage
    assert httpx.get(first.headers["location"]).content == data

    # what the coordinator saw: one upload through Workhorse, the object stored, metadata built
    front = coordinator.requests(component="workhorse", method="POST", job_id=build["id"])
    assert [r["status"] for r in front] == [201]
    assert "R->>W: Send 302 redirect" not in coordinator.flow(f"upload-{build['id']}")


def test_an_expired_job_token_is_refused(coordinator) -> None:
    seeded = coordinator.seed(
        {
            "projects": [
                {
                    "path": "root/app",
                    "pipelines": [
                        {"jobs": [{"name": "late", "status": "running", "token_expires_at": "2030-01-01T00:00:00Z"}]}
                    ],
                }
            ]
        }
    )
    late = coordinator.job(seeded, "late")
    coordinator.clock.set("2030-01-02T00:00:00Z")
    res = upload(coordinator.url, late, make_zip())
    assert res.status_code == 403
    assert res.json() == {"message": "403 Forbidden - Job token has expired"}


def test_the_runner_sees_a_503_then_succeeds(coordinator) -> None:
    seeded = coordinator.seed(SCENARIO)
    build = coordinator.job(seeded, "build")
    coordinator.fault("rails", method="POST", path="/artifacts$", status=503, headers={"Retry-After": "1"}, times=1)
    assert upload(coordinator.url, build, make_zip()).status_code == 503  # a runner would retry...
    assert upload(coordinator.url, build, make_zip()).status_code == 201  # ...and get through
    statuses = [r["status"] for r in coordinator.requests(component="workhorse", path="/artifacts$")]
    assert statuses == [503, 201]
