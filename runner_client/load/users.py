"""Locust users that behave like runners. Each user has its own runner connection; its operations
run on the process's asyncio loop (``bridge``) and are reported to Locust as one request each:
the time to the last byte (retries included), the bytes verified, and a failure of kind ``verify``
when the bytes were wrong, ``runner: <reason>`` when the runner would have ended FATAL."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Any

from locust import User, constant, task

from runner_client.load.bridge import shared_loop
from runner_client.load.operations import Done, Tally, download, fetch_url, fresh_jobs, open_client, upload
from runner_client.load.plan import Plan

JOBS_PER_SEED = 25


class RunnerUser(User):
    abstract = True
    wait_time = constant(0)

    def on_start(self) -> None:
        self.plan = Plan.from_json(self.environment.parsed_options.mockcoord_plan)
        self.loop = shared_loop()
        self.runner = self.loop.run(open_client(self.plan))
        self.turn = id(self)  # users spread over the objects

    def on_stop(self) -> None:
        self.loop.run(self.runner.aclose())

    def measure(self, request_type: str, name: str, operation: Callable[[Tally], Coroutine[Any, Any, Done]]) -> None:
        tally, start = Tally(), time.time()
        done: Done | None = None
        exception: Exception | None = None
        try:
            done = self.loop.run(operation(tally))
        except Exception as exc:  # noqa: BLE001 - any other break is a failure of its own kind
            exception = exc
        self.environment.events.request.fire(
            request_type=request_type,
            name=name,
            response_time=(done.seconds if done else time.time() - start) * 1000,
            response_length=done.size if done else 0,
            exception=exception,
            context={"retries": tally.retries, "waited": tally.waited},
            start_time=start,
            url=self.plan.url,
            response=None,
        )

    def next_object(self) -> Any:
        self.turn += 1
        return self.plan.objects[self.turn % len(self.plan.objects)]


class DirectDownloadUser(RunnerUser):
    """``direct_download=true``: the 302 to object storage followed, as the runner does."""

    @task
    def download(self) -> None:
        obj = self.next_object()
        self.measure("GET", "direct download", lambda tally: download(self.runner, self.plan, obj, True, tally))


class ProxyDownloadUser(RunnerUser):
    """No ``direct_download``: Workhorse fetches the object (send-url) and streams it."""

    @task
    def download(self) -> None:
        obj = self.next_object()
        self.measure("GET", "proxy download", lambda tally: download(self.runner, self.plan, obj, False, tally))


class UrlDownloadUser(RunnerUser):
    """A plain GET of each object's ``plan.urls`` entry (the same bytes behind another front, such
    as nginx ``proxy_pass`` to the store), with the runner's HTTP client, every byte checked."""

    @task
    def download(self) -> None:
        self.turn += 1
        index = self.turn % len(self.plan.objects)
        obj, url, token = self.plan.objects[index], self.plan.urls[index], self.plan.reader_token
        self.measure("GET", "url download", lambda tally: fetch_url(self.runner, url, token, obj, tally))


class UploadUser(RunnerUser):
    """Chunked multipart POSTs, as ``artifacts-uploader`` sends them, each to a fresh running job."""

    jobs: list[tuple[int, str]] = []  # shared by the process's upload users

    @task
    def upload(self) -> None:
        if not UploadUser.jobs:
            UploadUser.jobs.extend(self.loop.run(fresh_jobs(self.runner, self.plan, JOBS_PER_SEED)))
        job = UploadUser.jobs.pop()
        self.measure("POST", "upload", lambda tally: upload(self.runner, self.plan, job, tally))
