"""Ids beyond the id columns' type: every route answers as for an id no record has.

Grape coerces ``9223372036854775808`` to an Integer; ActiveRecord finds no record with it
(an out-of-range id is a ``1=0`` predicate, never a database error). So each route's answer
to such an id is its answer to an unknown one, whatever that is (404, the runner API's 403).
"""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_TOKEN, Coordinator
from tests.rails.helpers import job, pipeline_scenario

UNKNOWN = 10**6
OUT_OF_RANGE = [2**31, 2**63, 2**64, -(2**63) - 1]  # beyond integer, bigint, and 8 bytes at all
USER, JOB, WORKHORSE, ADMIN = "user", "job", "workhorse", "admin"

ROUTES = [
    ("GET", "/api/v4/projects/{project}?statistics=true", USER),
    ("GET", "/api/v4/projects/{project}/jobs", USER),
    ("GET", "/api/v4/projects/{project}/jobs/{job}", USER),
    ("GET", "/api/v4/projects/{project}/pipelines/{pipeline}/jobs", USER),
    ("GET", "/api/v4/projects/{project}/jobs/artifacts/main/download?job=build", USER),
    ("GET", "/api/v4/projects/{project}/jobs/artifacts/main/raw/out/a.txt?job=build", USER),
    ("GET", "/api/v4/projects/{project}/jobs/{job}/artifacts", USER),
    ("GET", "/api/v4/projects/{project}/jobs/{job}/artifacts/out/a.txt", USER),
    ("DELETE", "/api/v4/projects/{project}/jobs/{job}/artifacts", USER),
    ("POST", "/api/v4/projects/{project}/jobs/{job}/artifacts/keep", USER),
    ("DELETE", "/api/v4/projects/{project}/artifacts", USER),
    ("POST", "/api/v4/projects/{project}/jobs/{job}/cancel", USER),
    ("POST", "/api/v4/projects/{project}/jobs/{job}/retry", USER),
    ("POST", "/api/v4/projects/{project}/jobs/{job}/play", USER),
    ("POST", "/api/v4/projects/{project}/jobs/{job}/erase", USER),
    ("GET", "/api/v4/projects/{project}/jobs/{job}/trace", USER),
    ("POST", "/api/v4/projects/{project}/pipelines/{pipeline}/cancel", USER),
    ("POST", "/api/v4/projects/{project}/pipelines/{pipeline}/retry", USER),
    ("POST", "/api/v4/projects/{project}/pipeline?ref=main", USER),
    ("GET", "/api/v4/projects/{project}/pipelines", USER),
    ("GET", "/api/v4/projects/{project}/pipelines/{pipeline}", USER),
    ("DELETE", "/api/v4/projects/{project}/pipelines/{pipeline}", USER),
    ("POST", "/api/v4/jobs/{job}/artifacts/authorize", WORKHORSE),
    ("POST", "/api/v4/jobs/{job}/artifacts", WORKHORSE),
    ("GET", "/api/v4/jobs/{job}/artifacts", JOB),
    ("PUT", "/api/v4/jobs/{job}", JOB),
    ("PATCH", "/api/v4/jobs/{job}/trace", JOB),
    ("POST", "/-/mock/jobs/{job}/start", ADMIN),
    ("PUT", "/-/mock/projects/{project}/ci_config", ADMIN),
    ("DELETE", "/-/mock/projects/{project}/ci_config", ADMIN),
]
CASES = [
    pytest.param(method, path, who, slot, id=f"{method} {path} {slot}")
    for method, path, who in ROUTES
    for slot in ("project", "job", "pipeline")
    if f"{{{slot}}}" in path
]


@pytest.mark.parametrize("rails", ["local"], indirect=True, scope="session")  # storage plays no part
@pytest.mark.parametrize(("method", "path", "who", "slot"), CASES)
async def test_an_id_beyond_bigint_is_an_unknown_id(
    coordinator: Coordinator, method: str, path: str, who: str, slot: str
) -> None:
    c = coordinator
    seeded = await c.seed(pipeline_scenario())
    running = job(seeded, "test")
    ids = {"project": seeded["projects"]["acme/app"]["id"], "job": running["id"], "pipeline": running["pipeline_id"]}
    headers = {
        USER: {"PRIVATE-TOKEN": seeded["users"]["alice"]["token"]},
        JOB: {"JOB-TOKEN": running["token"]},
        WORKHORSE: c.workhorse_headers(**{"JOB-TOKEN": running["token"]}),
        ADMIN: {"PRIVATE-TOKEN": ADMIN_TOKEN},
    }[who]
    body = {"content": "test:\n  script: [true]\n"} if path.endswith("ci_config") else {"token": running["token"]}

    async def answer(value: int) -> tuple[int, str]:
        res = await c.client.request(method, path.format(**{**ids, slot: value}), headers=headers, json=body)
        return res.status_code, res.text

    unknown = await answer(UNKNOWN)
    assert unknown[0] in (403, 404), unknown
    for value in OUT_OF_RANGE:
        assert await answer(value) == unknown, value


@pytest.mark.parametrize("rails", ["local"], indirect=True, scope="session")
@pytest.mark.parametrize(
    "path",
    [
        "/api/v4/projects/{project}/jobs",
        "/api/v4/projects/{project}/pipelines/{pipeline}/jobs",
        "/api/v4/projects/{project}/pipelines",
    ],
)
async def test_a_page_past_every_row_is_an_empty_page(coordinator: Coordinator, path: str) -> None:
    """An offset past what any table holds reads no row, as a page past the last does."""
    c = coordinator
    seeded = await c.seed(pipeline_scenario())
    running = job(seeded, "test")
    url = path.format(project=seeded["projects"]["acme/app"]["id"], pipeline=running["pipeline_id"])
    headers = {"PRIVATE-TOKEN": seeded["users"]["alice"]["token"]}
    past_last = await c.client.get(url, params={"page": 1000}, headers=headers)
    assert past_last.status_code == 200 and past_last.json() == []
    for page in (2**31, 2**63, 2**64):
        res = await c.client.get(url, params={"page": page}, headers=headers)
        assert res.status_code == 200, res.text
        assert res.json() == []
        assert res.headers["X-Page"] == str(page)


@pytest.mark.parametrize("rails", ["local"], indirect=True, scope="session")
@pytest.mark.parametrize("exit_code", [2**31, 2**63, -(2**31) - 1])
async def test_an_exit_code_beyond_its_column_is_400(coordinator: Coordinator, exit_code: int) -> None:
    c = coordinator
    running = job(await c.seed(pipeline_scenario()), "test")
    res = await c.client.put(
        f"/api/v4/jobs/{running['id']}", json={"token": running["token"], "state": "failed", "exit_code": exit_code}
    )
    assert (res.status_code, res.json()) == (400, {"error": "exit_code is invalid"})
    ok = await c.client.put(
        f"/api/v4/jobs/{running['id']}", json={"token": running["token"], "state": "failed", "exit_code": 2**31 - 1}
    )
    assert ok.status_code == 200
