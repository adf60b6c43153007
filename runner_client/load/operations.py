"""What one runner-like user does once, on the asyncio loop: the runner client's own download and
upload flows (with its retry rules), every byte checked against what was seeded. No Locust here."""

from __future__ import annotations

import asyncio
import secrets
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from runner_client.client import ArtifactsClient
from runner_client.download import fetch_archive
from runner_client.load.blob import CHUNK, Digest, DigestSink, ablob_chunks
from runner_client.load.plan import Plan, SeededObject
from runner_client.log import RunnerLog
from runner_client.upload import MultipartBody, UploadOptions, send_with_retries


class VerifyError(Exception):
    """The coordinator answered with the wrong bytes (or recorded the wrong ones)."""

    kind = "verify"


@dataclass
class Tally:
    """The runner's retries during one operation: how many waits, and how long they were."""

    retries: int = 0
    waited: float = 0.0


_tally: ContextVar[Tally | None] = ContextVar("mockcoord_tally", default=None)


async def counted_sleep(seconds: float) -> None:
    """The client's ``sleep``: every runner wait before a retry (helper or transport) comes here."""
    if (tally := _tally.get()) is not None:
        tally.retries += 1
        tally.waited += seconds
    await asyncio.sleep(seconds)


class QuietLog(RunnerLog):
    """The runner's lines go nowhere under load (RunnerLog keeps every line for tests)."""

    def log(self, level: str, *message: object, **fields: Any) -> None:
        return None


async def open_client(plan: Plan) -> ArtifactsClient:
    """Made on the loop, so its connection pool belongs there."""
    return ArtifactsClient(
        plan.url, runner_version=plan.runner_version, log=QuietLog(), progress="off", sleep=counted_sleep
    )


@dataclass(frozen=True)
class Done:
    seconds: float
    size: int


def _check(got: Digest, want: Digest, what: str) -> None:
    if got != want:
        raise VerifyError(
            f"{what}: {got.size} bytes sha256 {str(got.sha256)[:12]}, seeded {want.size} bytes {want.sha256[:12]}"
        )


async def download(client: ArtifactsClient, plan: Plan, obj: SeededObject, direct: bool, tally: Tally) -> Done:
    """``artifacts-downloader``'s fetch (and retries) into a digest sink; timed to the last byte."""
    _tally.set(tally)
    sink = DigestSink()
    started = time.perf_counter()
    await fetch_archive(client, obj.job_id, plan.reader_token, sink, direct_download=direct)
    seconds = time.perf_counter() - started
    _check(sink.digest, obj.digest, f"job {obj.job_id}")
    return Done(seconds, obj.size)


async def fetch_url(client: ArtifactsClient, url: str, token: str, obj: SeededObject, tally: Tally) -> Done:
    """A plain GET of ``url`` (an object's bytes behind some other front, e.g. nginx) with the
    runner's HTTP client into a digest sink, as the direct flow's second leg reads the store. It
    carries the job token as the runner's download does: a front that authorizes (nginx's
    ``auth_request`` to Rails) passes it on, a presigned URL's store ignores it."""
    _tally.set(tally)
    sink = DigestSink()
    started = time.perf_counter()
    async with client.http.stream("GET", url, headers={"Job-Token": token}) as res, sink.open() as out:
        res.raise_for_status()
        async for chunk in res.aiter_bytes():
            out.write(chunk)
    seconds = time.perf_counter() - started
    _check(sink.digest, obj.digest, url.split("?", 1)[0])
    return Done(seconds, obj.size)


async def send_generated(client: ArtifactsClient, job_id: int, token: str, seed: int, size: int) -> None:
    """``blob_chunks(seed, size)`` as a job's archive, the runner's multipart POST and retries."""
    body = MultipartBody(lambda: ablob_chunks(seed, size), "artifacts.zip")
    await send_with_retries(client, job_id, token, body, UploadOptions(body.filename, None, "zip", "archive"))


async def upload(client: ArtifactsClient, plan: Plan, job: tuple[int, str], tally: Tally) -> Done:
    """``artifacts-uploader``'s POST (and retries) of a generated zip-typed archive to a fresh running
    job; timed to the 201, then checked against what Rails recorded from Workhorse's hashing."""
    _tally.set(tally)
    job_id, token = job
    started = time.perf_counter()
    await send_generated(client, job_id, token, plan.upload_seed, plan.upload_size)
    seconds = time.perf_counter() - started
    res = await client.http.get(
        f"{plan.url}/-/mock/jobs/{job_id}/artifacts", headers={"PRIVATE-TOKEN": plan.admin_token}
    )
    res.raise_for_status()
    archive = next((a for a in res.json() if a["file_type"] == "archive"), {"size": 0, "file_sha256": ""})
    want = Digest(plan.upload_size, plan.upload_sha256)
    _check(Digest(archive["size"], archive["file_sha256"]), want, f"job {job_id}")
    return Done(seconds, plan.upload_size)


async def fresh_jobs(client: ArtifactsClient, plan: Plan, count: int) -> list[tuple[int, str]]:
    """Running jobs with no archive yet (a job takes one archive): a new project in the run's group."""
    scenario = {
        "projects": [
            {
                "path": f"{plan.upload_group}/up-{secrets.token_hex(6)}",
                "max_artifacts_size": plan.upload_size // CHUNK + 1,
                "pipelines": [
                    {"status": "running", "jobs": [{"name": f"upload {i}", "status": "running"} for i in range(count)]}
                ],
            }
        ]
    }
    res = await client.http.post(f"{plan.url}/-/mock/seed", json=scenario, headers={"PRIVATE-TOKEN": plan.admin_token})
    res.raise_for_status()
    return [(job["id"], job["token"]) for job in res.json()["jobs"]]
