"""POST /jobs/:id/artifacts/authorize: Workhorse check, job authentication, the answer."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from app.workhorse_api import INTERNAL_API_CONTENT_TYPE, sign
from tests.conftest import Coordinator
from tests.rails.helpers import authorize, job, pipeline_scenario


async def test_local_answer_is_temp_path_and_limit(coordinator: Coordinator) -> None:
    seeded = await coordinator.seed(pipeline_scenario())
    test = job(seeded, "test")
    res = await authorize(coordinator, test["id"], test["token"])
    assert res.status_code == 200
    assert res.headers["content-type"] == INTERNAL_API_CONTENT_TYPE
    body = res.json()
    assert body["MaximumSize"] == 100 * 1024 * 1024
    if coordinator.state.store.remote:
        remote = body["RemoteObject"]
        assert "TempPath" not in body
        assert remote["Timeout"] == 14400 and remote["SkipDelete"] is True and remote["CustomPutHeaders"] is True
        h = hashlib.sha256(str(seeded["projects"]["acme/app"]["id"]).encode()).hexdigest()
        assert remote["ID"].startswith(f"{h[:2]}/{h[2:4]}/{h}/@final/")
        parts = remote["ID"].split("/@final/")[1].split("/")
        assert [len(p) for p in parts] == [2, 2, 60]
        assert remote["ObjectStorage"]["S3Config"]["Bucket"] == coordinator.settings.object_store.artifacts_bucket
        async with httpx.AsyncClient() as raw:  # the presigned URLs really work
            assert (await raw.put(remote["StoreURL"], content=b"x")).status_code == 200
            assert (await raw.get(remote["GetURL"])).content == b"x"
            assert (await raw.delete(remote["DeleteURL"])).status_code == 204
    else:
        assert body == {"TempPath": str(coordinator.settings.uploads_path), "MaximumSize": 100 * 1024 * 1024}


async def test_missing_or_bad_workhorse_jwt_is_bare_403(coordinator: Coordinator) -> None:
    seeded = await coordinator.seed(pipeline_scenario())
    test = job(seeded, "test")
    url = f"/api/v4/jobs/{test['id']}/artifacts/authorize"
    res = await coordinator.client.post(url, headers={"JOB-TOKEN": test["token"], "Gitlab-Workhorse": "v1"})
    assert (res.status_code, res.json()) == (403, {"message": "403 Forbidden"})
    forged = sign({"iat": 2_000_000_000}, b"x" * 32)
    res = await coordinator.client.post(
        url, headers={"JOB-TOKEN": test["token"], "Gitlab-Workhorse": "v1", "Gitlab-Workhorse-Api-Request": forged}
    )
    assert (res.status_code, res.json()) == (403, {"message": "403 Forbidden"})
    stale = sign({"iat": 1_000_000_000}, coordinator.state.secret)
    res = await coordinator.client.post(
        url, headers={"JOB-TOKEN": test["token"], "Gitlab-Workhorse": "v1", "Gitlab-Workhorse-Api-Request": stale}
    )
    assert res.status_code == 403


async def test_signed_but_without_workhorse_header_says_why(coordinator: Coordinator) -> None:
    seeded = await coordinator.seed(pipeline_scenario())
    test = job(seeded, "test")
    headers = coordinator.workhorse_headers(**{"JOB-TOKEN": test["token"]})
    del headers["Gitlab-Workhorse"]
    res = await coordinator.client.post(f"/api/v4/jobs/{test['id']}/artifacts/authorize", headers=headers)
    assert res.status_code == 403
    assert res.json() == {"message": "403 Forbidden - Request should be executed via GitLab Workhorse"}


@pytest.mark.parametrize("token_source", ["header", "lowercase-header", "query"])
async def test_token_sources(coordinator: Coordinator, token_source: str) -> None:
    seeded = await coordinator.seed(pipeline_scenario())
    test = job(seeded, "test")
    url = f"/api/v4/jobs/{test['id']}/artifacts/authorize"
    headers = coordinator.workhorse_headers()
    if token_source == "query":
        url += f"?token={test['token']}"
    else:
        headers["job-token" if token_source == "lowercase-header" else "JOB-TOKEN"] = test["token"]
    assert (await coordinator.client.post(url, headers=headers)).status_code == 200


async def test_unknown_job_and_wrong_token_are_bare_403(coordinator: Coordinator) -> None:
    seeded = await coordinator.seed(pipeline_scenario())
    test, build = job(seeded, "test"), job(seeded, "build")
    for job_id, token in (
        (999_999, test["token"]),
        (test["id"], "glcbt-wrong"),
        (test["id"], ""),
        (build["id"], test["token"]),
    ):
        res = await authorize(coordinator, job_id, token)
        assert (res.status_code, res.json()) == (403, {"message": "403 Forbidden"}), (job_id, token)
        assert "job-status" not in res.headers


async def test_job_not_processing_on_runner(coordinator: Coordinator) -> None:
    seeded = await coordinator.seed(pipeline_scenario())
    build = job(seeded, "build")
    res = await authorize(coordinator, build["id"], build["token"])
    assert res.status_code == 403
    assert res.json() == {"message": "403 Forbidden - Job is not processing on runner"}
    assert res.headers["job-status"] == "success"


async def test_canceling_job_may_still_upload(coordinator: Coordinator) -> None:
    seeded = await coordinator.seed(pipeline_scenario(job_status="canceling"))
    test = job(seeded, "test")
    assert (await authorize(coordinator, test["id"], test["token"])).status_code == 200


async def test_erased_job_and_deleted_project(coordinator: Coordinator) -> None:
    scenario = pipeline_scenario(extra_jobs=[{"name": "erased", "status": "running", "erased": True}])
    erased = job(await coordinator.seed(scenario), "erased")
    res = await authorize(coordinator, erased["id"], erased["token"])
    assert (res.status_code, res.json()) == (403, {"message": "403 Forbidden - Job has been erased!"})

    gone = job(
        await coordinator.seed(
            {
                "projects": [
                    {
                        "path": "acme/gone",
                        "pending_delete": True,
                        "pipelines": [{"jobs": [{"name": "doomed", "status": "running"}]}],
                    }
                ]
            }
        ),
        "doomed",
    )
    res = await authorize(coordinator, gone["id"], gone["token"])
    assert (res.status_code, res.json()) == (403, {"message": "403 Forbidden - Project has been deleted!"})


async def test_expired_job_token(coordinator: Coordinator) -> None:
    scenario = pipeline_scenario(
        extra_jobs=[{"name": "late", "status": "running", "token_expires_at": "2020-01-01T00:00:00Z"}]
    )
    seeded = await coordinator.seed(scenario)
    late = job(seeded, "late")
    res = await authorize(coordinator, late["id"], late["token"])
    assert res.status_code == 403
    assert res.json() == {"message": "403 Forbidden - Job token has expired"}
    assert res.headers["job-status"] == "running"


async def test_filesize_over_the_closest_limit_is_413(coordinator: Coordinator) -> None:
    seeded = await coordinator.seed(pipeline_scenario(project={"max_artifacts_size": 2}))
    test = job(seeded, "test")
    res = await authorize(coordinator, test["id"], test["token"], f"artifact_type=archive&filesize={3 << 20}")
    assert (res.status_code, res.json()) == (413, {"message": "file size has reached maximum size limit"})
    res = await authorize(coordinator, test["id"], test["token"], f"artifact_type=archive&filesize={2 << 20}")
    assert res.status_code == 200 and res.json()["MaximumSize"] == 2 << 20


async def test_limit_precedence_plan_group_instance(coordinator: Coordinator) -> None:
    scenario = pipeline_scenario()
    scenario["settings"] = {"max_artifacts_size": 50}
    scenario["groups"][0]["max_artifacts_size"] = 20
    scenario["plan_limits"] = {"ci_max_artifact_size_junit": 5}
    seeded = await coordinator.seed(scenario)
    test = job(seeded, "test")
    archive = await authorize(coordinator, test["id"], test["token"])
    junit = await authorize(coordinator, test["id"], test["token"], "artifact_type=junit&artifact_format=gzip")
    assert archive.json()["MaximumSize"] == 20 << 20
    assert junit.json()["MaximumSize"] == 5 << 20


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("artifact_type=bogus", "artifact_type does not have a valid value"),
        ("artifact_format=tar", "artifact_format does not have a valid value"),
        ("filesize=big", "filesize is invalid"),
    ],
)
async def test_invalid_parameters_are_grape_400s(coordinator: Coordinator, query: str, error: str) -> None:
    seeded = await coordinator.seed(pipeline_scenario())
    test = job(seeded, "test")
    res = await authorize(coordinator, test["id"], test["token"], query)
    assert (res.status_code, res.json()) == (400, {"error": error})


async def test_non_numeric_job_id(coordinator: Coordinator) -> None:
    res = await coordinator.client.post("/api/v4/jobs/abc/artifacts/authorize")
    assert (res.status_code, res.json()) == (400, {"error": "id is invalid"})
