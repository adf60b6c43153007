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
    ("GET", "/api/v4/projects/{project}/jobs/{job}/trace", USER),
    ("POST", "/api/v4/projects/{project}/pipelines/{pipeline}/cancel", USER),
    ("POST", "/api/v4/projects/{project}/pipelines/{pipeline}/retry", USER),
    ("POST", "/api/v4/projects/{project}/pipeline?ref=main", USER),
    ("GET", "/api/v4/projects/{project}/pipelines", USER),
    ("GET", "/api/v4/projects/{project}/pipelines/{pipeline}", USER),
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
