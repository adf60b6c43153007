"""Fault injection through the front door: Rails, Workhorse and object storage, on purpose."""

from __future__ import annotations

import time

import httpx
import pytest

from app.models import FileType
from tests.conftest import ADMIN_TOKEN
from tests.e2e.conftest import Stack
from tests.e2e.test_runner_flows import artifacts, runner_upload
from tests.rails.helpers import job, pipeline_scenario, zip_bytes

ADMIN = {"PRIVATE-TOKEN": ADMIN_TOKEN}


async def fault(stack: Stack, **rule: object) -> dict:
    res = await stack.client.post("/-/mock/faults", json=rule, headers=ADMIN)
    assert res.status_code == 201, res.text
    return res.json()


async def seeded_download(stack: Stack) -> tuple[str, dict]:
    seeded = await stack.rails.seed(pipeline_scenario())
    build, test = job(seeded, "build"), job(seeded, "test")
    return f"/api/v4/jobs/{build['id']}/artifacts", {"Job-Token": test["token"]}


async def test_rails_answers_503_twice_then_recovers(stack: Stack) -> None:
    url, headers = await seeded_download(stack)
    rule = await fault(
        stack,
        component="rails",
        method="GET",
        path="/artifacts$",
        status=503,
        body='{"message":"503 Service Unavailable"}',
        headers={"Retry-After": "1", "Content-Type": "application/json"},
        times=2,
    )
    assert rule["id"] and rule["hits"] == 0
    for _ in range(2):
        res = await stack.client.get(url, headers=headers)
        assert (res.status_code, res.headers["retry-after"]) == (503, "1")
        assert res.json() == {"message": "503 Service Unavailable"}
    assert (await stack.client.get(url, headers=headers)).status_code == 200
    assert (await stack.client.get("/-/mock/faults", headers=ADMIN)).json() == []  # used up


async def test_workhorse_fault_never_reaches_rails(stack: Stack) -> None:
    url, headers = await seeded_download(stack)
    await fault(stack, component="workhorse", path="/artifacts$", status=502, body="Bad Gateway\n")
    await stack.client.delete("/-/mock/requests", headers=ADMIN)
    res = await stack.client.get(url, headers=headers)
    assert (res.status_code, res.text) == (502, "Bad Gateway\n")
    seen = (await stack.client.get("/-/mock/requests", headers=ADMIN)).json()["requests"]
    assert [(e["component"], e["status"]) for e in seen] == [("workhorse", 502)]


async def test_job_id_and_header_conditions(stack: Stack) -> None:
    url, headers = await seeded_download(stack)
    await fault(stack, component="rails", job_id=999, status=500)
    await fault(stack, component="rails", header={"User-Agent": "^gitlab-runner 17"}, status=418)
    assert (await stack.client.get(url, headers=headers)).status_code == 200
    res = await stack.client.get(url, headers={**headers, "User-Agent": "gitlab-runner 17.11.0 (x)"})
    assert res.status_code == 418


async def test_delay_and_bandwidth(stack: Stack) -> None:
    url, headers = await seeded_download(stack)
    await fault(stack, component="rails", path="/artifacts$", delay="300ms", times=1)
    started = time.monotonic()
    assert (await stack.client.get(url, headers=headers)).status_code == 200
    assert time.monotonic() - started >= 0.3
    big = zip_bytes({"blob": "x" * 60_000})
    seeded = await stack.rails.seed(
        {
            "projects": [
                {
                    "path": "root/big",
                    "pipelines": [
                        {
                            "jobs": [
                                {
                                    "name": "b",
                                    "artifacts": [{"file_type": "archive", "content": big.decode("latin-1")}],
                                },
                                {"name": "t", "status": "running"},
                            ]
                        }
                    ],
                }
            ]
        }
    )
    await fault(stack, component="workhorse", path="/artifacts$", bandwidth=200_000)
    started = time.monotonic()
    res = await stack.client.get(
        f"/api/v4/jobs/{job(seeded, 'b')['id']}/artifacts", headers={"Job-Token": job(seeded, "t")["token"]}
    )
    assert res.status_code == 200 and len(res.content) > 60_000
    assert time.monotonic() - started >= len(res.content) / 200_000 * 0.8


@pytest.mark.parametrize("effect", [{"drop": True}, {"reset_after": 10}, {"truncate_after": 10}])
async def test_connection_faults(stack: Stack, effect: dict) -> None:
    url, headers = await seeded_download(stack)
    await fault(stack, component="workhorse", path="/artifacts$", times=1, **effect)
    async with httpx.AsyncClient(base_url=stack.url) as fresh:
        with pytest.raises(httpx.TransportError):
            await fresh.get(url, headers=headers)
    assert (await stack.client.get(url, headers=headers)).status_code == 200


async def test_storage_faults(stack: Stack) -> None:
    url, headers = await seeded_download(stack)
    if stack.rails.state.store.remote:
        await fault(stack, component="storage", method="GET", status=503, times=1)
        res = await stack.client.get(url, headers=headers)
        assert res.status_code == 503  # Workhorse's send-url fetch got the store's 503
    await fault(stack, component="storage", method="HEAD", status=404, times=1)
    res = await stack.client.get(url, headers=headers)
    assert (res.status_code, res.json()) == (404, {"message": "404 Not Found"})  # file.exists? said no
    seeded = await stack.rails.seed(
        {"projects": [{"path": "root/up", "pipelines": [{"jobs": [{"name": "upload", "status": "running"}]}]}]}
    )
    test = job(seeded, "upload")
    await fault(stack, component="storage", method="PUT", drop=True)
    res = await runner_upload(stack, test["id"], test["token"], zip_bytes({"a": "b"}), "artifact_type=archive")
    assert res.status_code in (500, 503)
    assert await artifacts(stack, test["id"]) == {}


@pytest.mark.parametrize("effect", [{"status": 503}, {"drop": True}])
async def test_storage_error_reading_the_archive_for_metadata_fails_the_upload(stack: Stack, effect: dict) -> None:
    """Workhorse reads the stored zip back (ranged GETs, or the local temp file) to build its
    metadata: a store that fails that read is not a "not a zip", the upload fails and leaves nothing."""
    seeded = await stack.rails.seed(
        {"projects": [{"path": "root/meta", "pipelines": [{"jobs": [{"name": "upload", "status": "running"}]}]}]}
    )
    test = job(seeded, "upload")
    objects_before = [o.key async for page in stack.rails.state.store.list() for o in page]
    await fault(stack, component="storage", method="GET", times=1, **effect)
    query = "artifact_format=zip&artifact_type=archive"
    res = await runner_upload(stack, test["id"], test["token"], zip_bytes({"a": "b"}), query)
    assert (res.status_code, res.text) == (500, "Internal Server Error\n")
    assert await artifacts(stack, test["id"]) == {}
    assert [o.key async for page in stack.rails.state.store.list() for o in page] == objects_before
    if not stack.rails.state.store.remote:
        assert list(stack.rails.settings.uploads_path.iterdir()) == []
    res = await runner_upload(stack, test["id"], test["token"], zip_bytes({"a": "b"}), query)  # the rule is used up
    assert (res.status_code, res.text) == (201, "201")
    assert set(await artifacts(stack, test["id"])) == {FileType.archive, FileType.metadata}


async def test_list_remove_clear_and_reset(stack: Stack) -> None:
    url, headers = await seeded_download(stack)
    first = await fault(stack, component="rails", path="/nothing", status=500)
    await fault(stack, component="workhorse", path="/artifacts$", status=503)
    listed = (await stack.client.get("/-/mock/faults", headers=ADMIN)).json()
    assert [r["component"] for r in listed] == ["rails", "workhorse"]
    assert (await stack.client.delete(f"/-/mock/faults/{first['id']}", headers=ADMIN)).status_code == 204
    assert (await stack.client.delete("/-/mock/faults/nope", headers=ADMIN)).status_code == 404
    assert (await stack.client.get(url, headers=headers)).status_code == 503
    await stack.client.post("/-/mock/reset", headers=ADMIN)  # faults never outlive a reset
    url, headers = await seeded_download(stack)
    assert (await stack.client.get(url, headers=headers)).status_code == 200
    await fault(stack, component="workhorse", status=500)
    assert (await stack.client.delete("/-/mock/faults", headers=ADMIN)).status_code == 204
    assert (await stack.client.get(url, headers=headers)).status_code == 200


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"component": "nginx", "status": 500}, "component: Input should be 'workhorse', 'rails' or 'storage'"),
        ({"component": "rails"}, "body: Value error, a rule needs an effect"),
        ({"component": "rails", "status": 500, "drop": True}, "body: Value error, choose one of status, drop"),
        ({"component": "rails", "delay": "soon"}, "delay: Value error, cannot read 'soon' as a delay"),
        ({"component": "rails", "path": "(", "status": 500}, "path: Value error, not a regular expression"),
        ({"component": "rails", "status": 700}, "status: Input should be less than or equal to 599"),
        ({"component": "rails", "status": 500, "probability": 0}, "probability: Input should be greater than 0"),
        ({"component": "rails", "body": "x", "delay": 1}, "body: Value error, body and headers go with status"),
        ({"component": "rails", "status": 500, "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"component": "rails", "status": 500, "error": "EIO"}, "body: Value error, error goes with a status"),
        ({"component": "storage", "delay": 1, "error": "EIO"}, "body: Value error, error goes with a status"),
    ],
)
async def test_invalid_rules_are_422(stack: Stack, rule: dict, message: str) -> None:
    res = await stack.client.post("/-/mock/faults", json=rule, headers=ADMIN)
    assert res.status_code == 422, res.text
    assert res.json()["message"].startswith(message), res.json()
