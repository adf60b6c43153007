"""Presigned direct downloads reached by storage faults and the mock clock (the object-storage door)."""

from __future__ import annotations

import io
import zipfile
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, Coordinator
from tests.rails.helpers import job, pipeline_scenario

ADMIN = {"PRIVATE-TOKEN": ADMIN_TOKEN}


@pytest.fixture
async def direct(coordinator: Coordinator) -> tuple[Coordinator, dict, dict]:
    if not coordinator.state.store.remote:
        pytest.skip("presigned URLs are an object storage matter")
    seeded = await coordinator.seed(pipeline_scenario())
    return coordinator, job(seeded, "build"), job(seeded, "test")


async def redirect(c: Coordinator, build: dict, test: dict) -> str:
    res = await c.client.get(
        f"/api/v4/jobs/{build['id']}/artifacts?direct_download=true", headers={"JOB-TOKEN": test["token"]}
    )
    assert res.status_code == 302, res.text
    return res.headers["location"]


def names(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.namelist()


async def test_without_faults_or_a_moved_clock_the_real_presigned_url_is_given(direct) -> None:
    c, build, test = direct
    location = await redirect(c, build, test)
    assert "X-Amz-Signature=" in location and "/-/mock/object-storage/" not in location


async def test_a_storage_fault_reaches_the_direct_download(direct) -> None:
    c, build, test = direct
    rule = {"component": "storage", "method": "GET", "path": "@final/", "status": 503, "body": "SlowDown"}
    created = await c.client.post("/-/mock/faults", json=rule, headers=ADMIN)
    assert created.status_code == 201
    location = await redirect(c, build, test)
    assert urlsplit(location).netloc == urlsplit(c.url).netloc  # Rails' own socket, not the store
    assert urlsplit(location).path.startswith("/-/mock/object-storage/") and "/%40final/" in location
    async with httpx.AsyncClient() as raw:
        res = await raw.get(location)
        assert (res.status_code, res.text) == (503, "SlowDown")
        requests = (await c.client.get("/-/mock/requests?component=storage", headers=ADMIN)).json()
    door = [(e["via"], e["status"], e["note"]) for e in requests["requests"] if e["via"] == "door"]
    assert door == [("door", 503, f"fault {created.json()['id']}")]


async def test_a_truncating_storage_fault_cuts_the_body(direct) -> None:
    c, build, test = direct
    rule = {"component": "storage", "method": "GET", "path": "@final/", "truncate_after": 10, "times": 1}
    await c.client.post("/-/mock/faults", json=rule, headers=ADMIN)
    location = await redirect(c, build, test)
    async with httpx.AsyncClient() as raw:
        with pytest.raises(httpx.RemoteProtocolError):
            await raw.get(location)
        again = await raw.get(location)  # times: 1 -> the store is healthy again
    assert again.status_code == 200 and names(again.content) == ["out/a.txt"]


async def test_the_mock_clock_governs_the_presigned_lifetime(direct) -> None:
    c, build, test = direct
    await c.client.post("/-/mock/clock", json={"advance": "1 minute"}, headers=ADMIN)
    location = await redirect(c, build, test)
    assert "/-/mock/object-storage/" in location
    async with httpx.AsyncClient() as raw:
        fresh = await raw.get(location)
        assert fresh.status_code == 200 and names(fresh.content) == ["out/a.txt"]
        ranged = await raw.get(location, headers={"Range": "bytes=0-3"})
        assert ranged.status_code == 206 and ranged.content == b"PK\x03\x04"
        assert ranged.headers["content-range"].startswith("bytes 0-3/")
        await c.client.post("/-/mock/clock", json={"advance": "11 minutes"}, headers=ADMIN)
        expired = await raw.get(location)
    assert expired.status_code == 403 and expired.headers["content-type"] == "application/xml"
    assert "<Code>AccessDenied</Code><Message>Request has expired</Message>" in expired.text


async def test_a_tampered_door_url_is_refused(direct) -> None:
    c, build, test = direct
    await c.client.post("/-/mock/clock", json={"advance": "1 minute"}, headers=ADMIN)
    location = await redirect(c, build, test)
    async with httpx.AsyncClient() as raw:
        forged = await raw.get(location[:-3] + "abc")
        other_key = await raw.get(location.replace("/%40final/", "/%40final/0"))
    for res in (forged, other_key):
        assert res.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in res.text
