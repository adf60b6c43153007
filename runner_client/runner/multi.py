"""The polling loop (commands/multi.go, and ``run-single``'s ``--max-builds`` / ``--wait-timeout``):
ask each configured runner for a job while there is room under ``concurrent`` (and the
runner's ``limit``), run jobs as asyncio tasks, and wait ``check_interval`` after a request
that brought nothing, so an idle runner costs one request per interval, never a busy loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runner_client.log import RunnerLog
from runner_client.runner.config import Config, RunnerEntry
from runner_client.runner.job import Build, JobOutcome
from runner_client.runner.network import JobsClient

UNHEALTHY_REQUESTS_LIMIT = 3  # common.DefaultUnhealthyRequestsLimit


@dataclass
class _Running:
    build: Build
    runner: RunnerEntry
    project_id: int
    concurrent_id: int
    project_concurrent_id: int


@dataclass
class MultiRunner:
    config: Config
    client: JobsClient
    log: RunnerLog
    builds_dir: Path | None = None  # overrides every runner's builds_dir
    max_jobs: int = 0  # 0: no limit
    wait_timeout: float = 0  # 0: wait for jobs forever
    clock: Callable[[], float] = time.monotonic
    outcomes: list[JobOutcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stopping = asyncio.Event()
        self._running: dict[asyncio.Task[JobOutcome], _Running] = {}
        self._failures: dict[str, int] = {}
        self._last_activity = self.clock()

    def stop(self) -> None:
        """Graceful: request no more jobs, let running ones finish."""
        if self._stopping.is_set():
            self.interrupt()
        self._stopping.set()

    def interrupt(self) -> None:
        """Forceful: running jobs end now as system failures (``aborted: interrupt``)."""
        for running in self._running.values():
            running.build.interrupted.set()

    async def run(self) -> int:
        if not self.config.runners:
            self.log.error("No runners configured in", str(self.config.path))
            return 1
        system_id = self.config.system_id()
        self.log.info(f"Starting multi-runner from {self.config.path}...", builds=0, max_builds=self.config.concurrent)
        received = 0
        turn = 0
        while not self._stopping.is_set():
            if self.max_jobs and received >= self.max_jobs:
                break
            if len(self._running) >= self.config.concurrent:
                await asyncio.wait(list(self._running), return_when=asyncio.FIRST_COMPLETED)
                continue
            healthy = [r for r in self.config.runners if self._failures.get(r.token, 0) < UNHEALTHY_REQUESTS_LIMIT]
            if not healthy:
                await self._drain()
                return 1
            runner = healthy[turn % len(healthy)]
            turn += 1
            if runner.limit and sum(1 for r in self._running.values() if r.runner is runner) >= runner.limit:
                await self._idle()
                continue
            result = await self.client.request_job(runner, system_id)
            if result.job is not None:
                self._failures[runner.token] = 0
                received += 1
                self._start(result.job, runner, system_id)
                continue  # ask again at once, as the runner does after a job
            if not result.healthy:
                self._failures[runner.token] = self._failures.get(runner.token, 0) + 1
                if self._failures[runner.token] >= UNHEALTHY_REQUESTS_LIMIT:
                    self.log.error(f'Runner "{runner.url}{runner.short_token}" is not healthy and will be disabled!')
                    continue
            else:
                self._failures[runner.token] = 0
            if self.wait_timeout and not self._running and self.clock() - self._last_activity >= self.wait_timeout:
                self.log.info("No job received within the wait timeout", wait_timeout=self.wait_timeout)
                break
            await self._idle()
        await self._drain()
        return 0

    async def _idle(self) -> None:
        """One ``check_interval``, cut short by a stop request."""
        wait = self.config.poll_interval
        if self.wait_timeout and not self._running:
            wait = min(wait, max(self.wait_timeout - (self.clock() - self._last_activity), 0.01))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), wait)

    def _start(self, payload: dict, runner: RunnerEntry, system_id: str) -> None:
        project_id = int((payload.get("job_info") or {}).get("project_id") or 0)
        used = {r.concurrent_id for r in self._running.values()}
        concurrent_id = next(i for i in range(len(used) + 1) if i not in used)
        same = {
            r.project_concurrent_id for r in self._running.values() if r.runner is runner and r.project_id == project_id
        }
        project_concurrent_id = next(i for i in range(len(same) + 1) if i not in same)
        build = Build(
            payload,
            runner,
            self.client,
            builds_dir=(self.builds_dir or Path(runner.builds_dir or "builds")).resolve(),
            system_id=system_id,
            concurrent_id=concurrent_id,
            project_concurrent_id=project_concurrent_id,
            log=self.log,
        )
        task = asyncio.create_task(build.run(), name=f"job-{build.id}")
        self._running[task] = _Running(build, runner, project_id, concurrent_id, project_concurrent_id)
        self.log.info(
            "Added job to processing list", builds=len(self._running), job=build.id, max_builds=self.config.concurrent
        )
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[JobOutcome]) -> None:
        running = self._running.pop(task, None)
        self._last_activity = self.clock()
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.log.error("Job crashed:", repr(exc), job=running.build.id if running else "?")
            return
        self.outcomes.append(task.result())
        self.log.info("Removed job from processing list", builds=len(self._running), job=task.result().job_id)

    async def _drain(self) -> None:
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
