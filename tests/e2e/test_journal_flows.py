"""The journal and flow diagrams through the front door: Workhorse, Rails and storage together."""

from __future__ import annotations

import httpx

from tests.conftest import ADMIN_TOKEN
from tests.e2e.conftest import Stack
from tests.rails.helpers import job, pipeline_scenario

ADMIN = {"PRIVATE-TOKEN": ADMIN_TOKEN}


async def test_journal_merges_workhorse_entries_and_clears_them(stack: Stack) -> None:
    seeded = await stack.rails.seed(pipeline_scenario())
    build, test = job(seeded, "build"), job(seeded, "test")
    await stack.client.delete("/-/mock/requests", headers=ADMIN)
    res = await stack.client.get(
        f"/api/v4/jobs/{build['id']}/artifacts", headers={"Job-Token": test["token"], "X-Request-Id": "proxy-flow"}
    )
    assert res.status_code == 200
    journal = (
        await stack.client.get("/-/mock/requests", params={"correlation_id": "proxy-flow"}, headers=ADMIN)
    ).json()
    components = [(e["component"], e.get("via", "")) for e in journal["requests"]]
    assert ("workhorse", "") in components and ("rails", "") in components
    assert journal["count"] == len(journal["requests"])
    front = next(e for e in journal["requests"] if e["component"] == "workhorse")
    assert front["status"] == 200 and front["bytes_out"] == len(res.content)
    assert front["headers"]["job-token"] == test["token"].removeprefix("glcbt-")[:9]
    only_workhorse = (await stack.client.get("/-/mock/requests?component=workhorse", headers=ADMIN)).json()
    assert {e["component"] for e in only_workhorse["requests"]} == {"workhorse"}
    await stack.client.delete("/-/mock/requests", headers=ADMIN)
    assert (await stack.client.get("/-/mock/requests", headers=ADMIN)).json()["count"] == 0


async def test_proxy_download_flow_matches_gitlabs_diagram(stack: Stack) -> None:
    seeded = await stack.rails.seed(pipeline_scenario())
    build, test = job(seeded, "build"), job(seeded, "test")
    await stack.client.get(
        f"/api/v4/jobs/{build['id']}/artifacts", headers={"Job-Token": test["token"], "X-Request-Id": "proxy-2"}
    )
    diagram = (await stack.client.get("/-/mock/flows/proxy-2", headers=ADMIN)).text
    lines = [line.strip() for line in diagram.splitlines()]
    expected = [
        "C->>+W: GET /api/v4/jobs/1/artifacts",
        "W->>+R: GET /api/v4/jobs/1/artifacts",
        "R->>P: Look up job for CI_JOB_TOKEN",
        "R->>P: Find user who triggered job",
        "R->>R: Does user have :read_build access? yes",
    ]
    assert all(line in lines for line in expected), diagram
    if stack.rails.state.store.remote:
        assert "R->>W: SendURL with object storage presigned URL" in lines
        assert "W->>O: GET <presigned URL>" in lines
    else:
        assert "R->>W: Send X-Sendfile with the local path" in lines
    assert lines[-1].startswith("W-->>-C: 200 OK")


async def test_direct_download_flow_shows_the_redirect(stack: Stack) -> None:
    seeded = await stack.rails.seed(pipeline_scenario())
    build, test = job(seeded, "build"), job(seeded, "test")
    res = await stack.client.get(
        f"/api/v4/jobs/{build['id']}/artifacts?direct_download=true",
        headers={"Job-Token": test["token"], "X-Request-Id": "direct-1"},
    )
    diagram = (await stack.client.get("/-/mock/flows/direct-1?format=json", headers=ADMIN)).json()["mermaid"]
    if stack.rails.state.store.remote:
        assert res.status_code == 302
        assert "    R->>W: Send 302 redirect to object storage presigned URL" in diagram
        assert "    W-->>-C: 302 Found" in diagram
    else:
        assert res.status_code == 200


async def test_upload_is_journaled_with_the_object_storage_put(stack: Stack) -> None:
    seeded = await stack.rails.seed(pipeline_scenario())
    test = job(seeded, "test")
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n' + b"x" * 5000 + b"\r\n--b--\r\n"
    )
    res = await stack.client.post(
        f"/api/v4/jobs/{test['id']}/artifacts?artifact_format=raw&artifact_type=sast",
        content=body,
        headers={"Job-Token": test["token"], "X-Request-Id": "up-1", "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert res.status_code == 201
    entries = (await stack.client.get("/-/mock/requests?correlation_id=up-1", headers=ADMIN)).json()["requests"]
    kinds = [(e["component"], e["method"], e["path"].split("/")[-1]) for e in entries]
    assert ("rails", "POST", "authorize") in kinds and ("rails", "POST", "artifacts") in kinds
    front = next(e for e in entries if e["component"] == "workhorse")
    assert front["bytes_in"] == len(body) and front["status"] == 201
    if stack.rails.state.store.remote:
        put = next(e for e in entries if e["component"] == "storage")
        assert put["via"] == "workhorse" and put["bytes_in"] == 5000


async def test_journal_needs_an_admin_through_the_front_door(stack: Stack) -> None:
    res = await stack.client.get("/-/mock/requests")
    assert res.status_code == 401
    async with httpx.AsyncClient(base_url=stack.url) as other:
        assert (await other.get("/-/mock/flows/x", headers={"PRIVATE-TOKEN": "nope"})).status_code == 401


async def test_query_string_tokens_are_filtered_in_journal_and_flows(stack: Stack) -> None:
    """``token``, ``job_token`` and ``private_token`` values are ``[FILTERED]``, in every component."""
    seeded = await stack.rails.seed(pipeline_scenario())
    build, test = job(seeded, "build"), job(seeded, "test")
    await stack.client.delete("/-/mock/requests", headers=ADMIN)
    token = test["token"]
    targets = {
        "q-1": f"/api/v4/jobs/{build['id']}/artifacts?token={token}&direct_download=false",
        "q-2": f"/api/v4/projects/acme%2Fapp/jobs/{build['id']}/artifacts?job_token={token}",
        "q-3": f"/api/v4/projects/acme%2Fapp/jobs?private_token={ADMIN_TOKEN}&scope[]=success",
    }
    for request_id, target in targets.items():
        assert (await stack.client.get(target, headers={"X-Request-Id": request_id})).status_code in (200, 302)
    journal = (await stack.client.get("/-/mock/requests", headers=ADMIN)).json()["requests"]
    queries = {(e["component"], e["correlation_id"]): e["query"] for e in journal if e["component"] != "storage"}
    for component in ("workhorse", "rails"):
        assert queries[(component, "q-1")] == "token=[FILTERED]&direct_download=false"
        assert queries[(component, "q-2")] == "job_token=[FILTERED]"
        assert queries[(component, "q-3")] == "private_token=[FILTERED]&scope[]=success"
    assert token not in str(journal) and ADMIN_TOKEN not in str(journal)
    diagram = (await stack.client.get("/-/mock/flows/q-1", headers=ADMIN)).text
    assert f"C->>+W: GET /api/v4/jobs/{build['id']}/artifacts?token=[FILTERED]&direct_download=false" in diagram
    assert token not in diagram


async def test_upload_flow_draws_authorize_store_and_finalize(stack: Stack) -> None:
    """Workhorse asks Rails to authorize, stores the file, then calls Rails again to finalize."""
    seeded = await stack.rails.seed(pipeline_scenario())
    test = job(seeded, "test")
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n' + b"x" * 500 + b"\r\n--b--\r\n"
    )
    path = f"/api/v4/jobs/{test['id']}/artifacts"
    res = await stack.client.post(
        f"{path}?artifact_format=raw&artifact_type=sast",
        content=body,
        headers={
            "Job-Token": test["token"],
            "X-Request-Id": "up-flow",
            "Content-Type": "multipart/form-data; boundary=b",
        },
    )
    assert res.status_code == 201
    lines = [
        line.strip() for line in (await stack.client.get("/-/mock/flows/up-flow", headers=ADMIN)).text.splitlines()
    ]
    authorize = lines.index(f"W->>+R: POST {path}/authorize?artifact_format=raw&artifact_type=sast")
    finalize = lines.index(f"W->>+R: POST {path}?artifact_format=raw&artifact_type=sast")
    assert lines[authorize + 1] == "R-->>-W: 200 OK"
    assert authorize < finalize < lines.index("R-->>-W: 201 Created") < lines.index("W-->>-C: 201 Created (3 bytes)")
    if stack.rails.state.store.remote:
        stored = next(i for i, line in enumerate(lines) if line.startswith("W->>O: PUT "))
        assert authorize < stored < finalize
