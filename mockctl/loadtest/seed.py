"""Seeding a run through the coordinator's own doors, so it works against any coordinator: the
control plane makes a group, a project and running jobs; the runner's upload (the same
``send_with_retries`` the users run) stores each generated archive, streamed, never whole."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

import httpx

from runner_client.client import ArtifactsClient
from runner_client.load.blob import CHUNK, blob_digest
from runner_client.load.operations import QuietLog, send_generated
from runner_client.load.plan import Plan, SeededObject


async def _seed(http: httpx.AsyncClient, scenario: dict[str, object]) -> dict[str, object]:
    res = await http.post("/-/mock/seed", json=scenario)
    if res.status_code != 201:
        raise RuntimeError(f"seeding failed: {res.status_code} {res.text[:200]}")
    return res.json()


async def seed_run(
    url: str, admin_token: str, objects: int, size: int, uploads: bool, done: Callable[[int], None]
) -> Plan:
    """``objects`` archives of ``size`` bytes (none when the run only uploads), a reader job, and
    the group upload users add their fresh jobs to. ``done(bytes)`` after each archive."""
    group = f"loadtest-{secrets.token_hex(4)}"
    jobs = [{"name": f"object {i}", "stage": "build", "status": "running"} for i in range(0 if uploads else objects)]
    scenario = {
        "groups": [{"path": group}],
        "projects": [
            {
                "path": f"{group}/objects",
                "max_artifacts_size": size // CHUNK + 1,
                "pipelines": [
                    {"status": "running", "jobs": [*jobs, {"name": "reader", "stage": "test", "status": "running"}]}
                ],
            }
        ],
    }
    async with httpx.AsyncClient(base_url=url, headers={"PRIVATE-TOKEN": admin_token}, timeout=60) as http:
        seeded = await _seed(http, scenario)
    rows = {job["name"]: job for job in seeded["jobs"]}  # type: ignore[union-attr]
    stored: list[SeededObject] = []
    async with ArtifactsClient(url, log=QuietLog(), progress="off") as client:
        for i in range(0 if uploads else objects):
            job = rows[f"object {i}"]
            digest, _ = await asyncio.gather(
                asyncio.to_thread(blob_digest, i + 1, size),
                send_generated(client, job["id"], job["token"], i + 1, size),
            )
            stored.append(SeededObject(job["id"], digest.size, digest.sha256))
            done(size)
    upload_seed = objects + 1
    upload_digest = await asyncio.to_thread(blob_digest, upload_seed, size) if uploads else None
    return Plan(
        url=url,
        admin_token=admin_token,
        reader_token=rows["reader"]["token"],
        objects=stored,
        upload_seed=upload_seed,
        upload_size=size if uploads else 0,
        upload_sha256=upload_digest.sha256 if upload_digest else "",
        upload_group=group,
    )
