"""The request journal, the clock and flow diagrams, seen from Rails."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_TOKEN, Coordinator
from tests.rails.helpers import authorize, job, pipeline_scenario

ADMIN = {"PRIVATE-TOKEN": ADMIN_TOKEN}


async def requests(c: Coordinator, **filters: str) -> dict:
    res = await c.client.get("/-/mock/requests", params=filters, headers=ADMIN)
    assert res.status_code == 200, res.text
    return res.json()


async def test_journal_records_rails_and_storage_with_short_tokens(coordinator: Coordinator) -> None:
    c = coordinator
    seeded = await c.seed(pipeline_scenario())
    build, test = job(seeded, "build"), job(seeded, "test")
    await c.client.delete("/-/mock/requests", headers=ADMIN)
    res = await c.client.get(
        f"/api/v4/jobs/{build['id']}/artifacts?direct_download=true",
        headers={"JOB-TOKEN": test["token"], "X-Request-Id": "flow-1"},
    )
    journal = await requests(c, correlation_id="flow-1")
    rails = [e for e in journal["requests"] if e["component"] == "rails"]
    storage = [e for e in journal["requests"] if e["component"] == "storage"]
    assert len(rails) == 1 and rails[0]["status"] == res.status_code
    assert rails[0]["query"] == "direct_download=true" and rails[0]["job_id"] == build["id"]
    token = rails[0]["headers"]["job-token"]
    assert token == test["token"].removeprefix("glcbt-")[:9] and test["token"] not in str(journal)
    assert rails[0]["steps"][:3] == [
        "Look up job for CI_JOB_TOKEN",
        "Find user who triggered job",
        "Does user have :read_build access? yes",
    ]
    streamed = [] if c.state.store.remote else [("GET", 200, "rails")]  # no Workhorse: Rails sends the file
    assert [(e["method"], e["status"], e["via"]) for e in storage] == [("HEAD", 200, "rails"), *streamed]


async def test_filters_counts_and_clearing(coordinator: Coordinator) -> None:
    c = coordinator
    seeded = await c.seed(pipeline_scenario())
    test = job(seeded, "test")
    await c.client.delete("/-/mock/requests", headers=ADMIN)
    for _ in range(3):
        await authorize(c, test["id"], test["token"])
    await authorize(c, test["id"], "glcbt-wrong-token-here")
    assert (await requests(c))["count"] == 4
    assert (await requests(c, status="403"))["count"] == 1
    assert (await requests(c, method="post", path=r"/authorize$", job_id=str(test["id"])))["count"] == 4
    assert len((await requests(c, limit="2"))["requests"]) == 2
    assert (await requests(c, component="storage"))["count"] == 0
    bad = await c.client.get("/-/mock/requests?status=teapot", headers=ADMIN)
    assert (bad.status_code, bad.json()) == (422, {"message": "status must be a number, got 'teapot'"})
    bad = await c.client.get("/-/mock/requests?path=(", headers=ADMIN)
    assert bad.status_code == 422 and "regular expression" in bad.json()["message"]
    await c.client.delete("/-/mock/requests", headers=ADMIN)
    assert (await requests(c))["count"] == 0


async def test_flow_of_a_denied_download(coordinator: Coordinator) -> None:
    c = coordinator
    seeded = await c.seed(pipeline_scenario())
    await c.client.get(
        f"/api/v4/jobs/{job(seeded, 'build')['id']}/artifacts",
        headers={"JOB-TOKEN": "glcbt-not-a-real-token", "X-Request-Id": "denied-1"},
    )
    res = await c.client.get("/-/mock/flows/denied-1", headers=ADMIN)
    assert res.status_code == 200
    lines = res.text.splitlines()
    assert lines[0] == "sequenceDiagram"
    assert "    R->>P: Look up job for CI_JOB_TOKEN" in lines
    assert "    R-->>-C: 401 Unauthorized" in lines
    assert not any("read_build" in line for line in lines)
    missing = await c.client.get("/-/mock/flows/nothing-here", headers=ADMIN)
    assert missing.status_code == 404


async def test_clock_moves_expiry(coordinator: Coordinator) -> None:
    c = coordinator
    scenario = pipeline_scenario(
        extra_jobs=[{"name": "late", "status": "running", "token_expires_at": "2030-01-01T00:00:00Z"}]
    )
    late = job(await c.seed(scenario), "late")
    assert (await authorize(c, late["id"], late["token"])).status_code == 200
    res = await c.client.post("/-/mock/clock", json={"set": "2031-01-01T00:00:00Z"}, headers=ADMIN)
    assert res.status_code == 200 and res.json()["now"].startswith("2031-01-01T00:00:00")
    expired = await authorize(c, late["id"], late["token"])
    assert expired.json() == {"message": "403 Forbidden - Job token has expired"}
    res = await c.client.post("/-/mock/clock", json={"advance": "2 days"}, headers=ADMIN)
    assert res.json()["now"].startswith("2031-01-03T00:00:00")
    res = await c.client.post("/-/mock/clock", json={"reset": True}, headers=ADMIN)
    assert res.json()["real"] is True
    assert (await authorize(c, late["id"], late["token"])).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"advance": "someday"}, "advance: cannot read 'someday' as a duration"),
        ({"advance": "7000 years"}, "advance: the clock would pass the year 9000"),
        ({"advance": "99999999999 years"}, "advance: the clock would pass the year 9000"),
        ({"set": "9999-12-31T23:59:59Z"}, "set: the clock would pass the year 9000"),
        ({"advance": "1 day", "reset": True}, "give exactly one of advance, set, reset"),
        ({"set": "yesterday"}, "set: Input should be a valid datetime"),
        ({"set": "2001-01-01T00:00:00Z"}, "set: 2001-01-01T00:00:00+00:00 is before the newest record"),
        ({"rewind": "1 day"}, "rewind: Extra inputs are not permitted"),
    ],
)
async def test_bad_clock_changes_are_422(coordinator: Coordinator, body: dict, message: str) -> None:
    await coordinator.seed(pipeline_scenario())
    res = await coordinator.client.post("/-/mock/clock", json=body, headers=ADMIN)
    assert res.status_code == 422
    assert res.json()["message"].startswith(message), res.json()
    assert (await coordinator.client.get("/-/mock/clock", headers=ADMIN)).json()["real"] is True


async def test_reset_clears_journal_and_clock(coordinator: Coordinator) -> None:
    c = coordinator
    await c.client.post("/-/mock/clock", json={"advance": "1 hour"}, headers=ADMIN)
    await c.client.get("/api/v4/jobs/1/artifacts")
    await c.client.post("/-/mock/reset", headers=ADMIN)
    assert (await c.client.get("/-/mock/clock", headers=ADMIN)).json()["real"] is True
    paths = [e["path"] for e in (await requests(c))["requests"]]
    assert paths == ["/-/mock/reset", "/-/mock/clock"]  # the reset itself, then the clock read after it
