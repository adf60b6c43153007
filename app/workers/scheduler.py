"""sidekiq-cron's part of a Sidekiq process: the cron workers run on their ``cron`` lines.

GitLab's Sidekiq processes each run sidekiq-cron's poller; whichever process first records a
fire time in Redis (``ZADD cron_job:<name>:enqueued``) enqueues the job, so a fire time runs
once however many processes poll. Here the poller runs where it is started (``mockcoord
serve``, in the Rails process; ``mockcoord worker``, any number of them) and the job runs in
that process:

- every ``cron_poll_interval`` seconds each cron job's latest fire time is computed with
  croniter from the mock clock (``app.clock``); when it is later than the one this process
  last saw, the process claims it in the shared store (``Gitlab::ExclusiveLease`` key
  ``sidekiq-cron:<cron job>:<fire time>``, a day long and never cancelled: Redis when
  configured, the ``exclusive_leases`` table otherwise) and, if the claim is its own, runs the
  job once. Fire times passed in one jump of the clock coalesce into that one run.
- a process starting up takes the latest fire time as seen, without running it (sidekiq-cron
  does not run a schedule late either).
- runs of one job never overlap in a process: while it runs, later fire times are left
  unclaimed for another process, or for this one when its run ends.
- every run is one line of GitLab's structured Sidekiq log (``mockcoord.sidekiq``) and one
  observation of ``sidekiq_jobs_completion_seconds``; a failing job is logged and the
  schedule goes on.

Nothing here knows of the instrument; ``before_tick`` is how the process's owner brings the
shared mock clock in before each look.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter
from sqlalchemy import delete
from sqlmodel import col

from app import clock
from app.config import Settings
from app.lib import metrics
from app.lib.exclusive_lease import REDIS_PREFIX, ExclusiveLease, redis_client
from app.models import ExclusiveLeaseRow
from app.state import AppState
from app.workers import scheduled
from app.workers.cron import CRON_WORKERS, CronWorker

log = logging.getLogger("mockcoord.sidekiq")

CLAIM_PREFIX = "sidekiq-cron:"
CLAIM_TTL = timedelta(days=1)  # far longer than any process takes to look again


@dataclass(frozen=True)
class Entry:
    cron_job: str
    cron: str
    worker: type[CronWorker]

    def latest_fire_time(self, now: datetime) -> datetime:
        """The most recent fire time at or before ``now`` (``now`` itself when it is one)."""
        return croniter(self.cron, now + timedelta(microseconds=1)).get_prev(datetime)


def schedule(settings: Settings) -> list[Entry]:
    """GitLab's cron jobs with the settings' overrides; disabled ones left out. ``ValueError``
    naming the key for an override of a cron job that does not exist."""
    for name in settings.cron_jobs:
        if name not in CRON_WORKERS:
            raise ValueError(f"cron_jobs.{name}: no such cron job (known: {', '.join(sorted(CRON_WORKERS))})")
    entries = []
    for name, worker in CRON_WORKERS.items():
        override = settings.cron_jobs.get(name)
        if override is not None and not override.enabled:
            continue
        entries.append(Entry(name, override.cron if override and override.cron else worker.cron, worker))
    return entries


@dataclass
class JobRun:
    """One job as Sidekiq ran it: what its log line says."""

    cron_job: str
    job_class: str
    jid: str
    job_status: str  # done | fail
    duration_s: float
    result: dict[str, Any] = field(default_factory=dict)
    error_class: str | None = None
    error_message: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "cron_job": self.cron_job,
            "job_class": self.job_class,
            "jid": self.jid,
            "job_status": self.job_status,
            "duration_s": self.duration_s,
            "result": self.result,
            **({"error_class": self.error_class, "error_message": self.error_message} if self.error_class else {}),
        }


def _underscore(job_class: str) -> str:
    """ActiveSupport's ``underscore`` with ``/`` as ``_``: ``Ci::DeleteObjectsWorker`` ->
    ``ci_delete_objects_worker``."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", job_class.replace("::", "/"))
    return snake.lower().replace("/", "_")


def queue_name(job_class: str) -> str:
    """GitLab's queue of a cron worker: ``cronjob:`` and the class without ``Worker``."""
    return "cronjob:" + _underscore(job_class).removesuffix("_worker")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


async def run_job(state: AppState, cron_job: str, enqueued_at: datetime | None = None) -> JobRun:
    """Run one cron worker as Sidekiq does: timed, logged, counted; an exception is the job's
    failure (logged, answered), never the caller's. Cancellation (a process stopping) is logged
    as ``Sidekiq::Shutdown`` and goes on up."""
    worker = CRON_WORKERS[cron_job]
    jid = secrets.token_hex(12)
    created = enqueued_at or clock.now()
    started_at = clock.now()
    started = time.monotonic()
    run = JobRun(cron_job, worker.job_class, jid, "done", 0.0)
    try:
        run.result = dict(await worker(state).perform())
    except asyncio.CancelledError:
        run.job_status, run.error_class, run.error_message = "fail", "Sidekiq::Shutdown", "the process is stopping"
        raise
    except Exception as exc:  # noqa: BLE001 - Sidekiq's job fails; the schedule goes on
        run.job_status, run.error_class, run.error_message = "fail", type(exc).__name__, str(exc)
    finally:
        run.duration_s = round(time.monotonic() - started, 6)
        metrics.sidekiq_jobs_completion_seconds.labels(worker=run.job_class, job_status=run.job_status).observe(
            run.duration_s
        )
        _log(run, created, started_at)
    return run


def _log(run: JobRun, created: datetime, started_at: datetime) -> None:
    """One line of GitLab's structured (JSON) Sidekiq log."""
    extra = _underscore(run.job_class)
    line: dict[str, Any] = {
        "severity": "INFO" if run.job_status == "done" else "WARN",
        "time": _iso(clock.now()),
        "queue": queue_name(run.job_class),
        "args": [],
        "class": run.job_class,
        "retry": 0,
        "queue_namespace": "cronjob",
        "jid": run.jid,
        "created_at": _iso(created),
        "meta.caller_id": "Cronjob",
        "enqueued_at": _iso(created),
        "pid": os.getpid(),
        "message": f"{run.job_class} JID-{run.jid}: {run.job_status}: {run.duration_s} sec",
        "job_status": run.job_status,
        "scheduling_latency_s": round(max(0.0, (started_at - created).total_seconds()), 6),
        "duration_s": run.duration_s,
        "completed_at": _iso(clock.now()),
    }
    if run.error_class:
        line["error_class"], line["error_message"] = run.error_class, run.error_message
    line.update({f"extra.{extra}.{key}": value for key, value in run.result.items()})
    log.log(
        logging.INFO if run.job_status == "done" else logging.WARNING,
        json.dumps(line, default=str, separators=(",", ":")),
    )


async def claim(state: AppState, cron_job: str, fire_time: datetime) -> bool:
    """True for the one process that records this fire time first."""
    key = f"{CLAIM_PREFIX}{cron_job}:{fire_time.astimezone(UTC).isoformat()}"
    taken = await ExclusiveLease(state.db, state.settings.redis_url, key, CLAIM_TTL).try_obtain() is not None
    if taken and not state.settings.redis_url:  # Redis lets its keys go by itself; the table is pruned here
        async with state.db.engine.begin() as conn:
            await conn.execute(
                delete(ExclusiveLeaseRow).where(
                    col(ExclusiveLeaseRow.key).startswith(CLAIM_PREFIX),
                    col(ExclusiveLeaseRow.expires_at) <= datetime.now(UTC),
                )
            )
    return taken


async def forget_claims(state: AppState) -> None:
    """Every fire time forgotten (an emptied instance whose clock starts again): the table's
    rows go with the other rows; Redis keys are removed here."""
    async with state.db.engine.begin() as conn:
        await conn.execute(delete(ExclusiveLeaseRow).where(col(ExclusiveLeaseRow.key).startswith(CLAIM_PREFIX)))
    if state.settings.redis_url:
        redis = redis_client(state.settings.redis_url)
        keys = [key async for key in redis.scan_iter(match=f"{REDIS_PREFIX}{CLAIM_PREFIX}*", count=1000)]
        if keys:
            await redis.delete(*keys)


class Scheduler:
    """The poller of one process. ``start()`` then ``stop()``; ``tick()`` is one look."""

    def __init__(
        self,
        state: AppState,
        before_tick: Callable[[], Awaitable[None]] | None = None,
        on_run: Callable[[JobRun], None] | None = None,
    ) -> None:
        self.state = state
        self.entries = schedule(state.settings)
        self.before_tick = before_tick
        self.on_run = on_run
        self.poll_interval = state.settings.cron_poll_interval
        self.last_seen: dict[str, datetime] = {}
        self.running: dict[str, asyncio.Task[JobRun]] = {}
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._scheduled: asyncio.Task[None] | None = None  # Sidekiq's scheduled poller: perform_in jobs

    async def tick(self) -> list[asyncio.Task[JobRun]]:
        """Look at the schedule once; answers the runs it started."""
        if self.before_tick is not None:
            await self.before_tick()
        now = clock.now()
        started = []
        for entry in self.entries:
            fire = entry.latest_fire_time(now)
            seen = self.last_seen.get(entry.cron_job)
            if seen is None or fire < seen:  # starting up, or the clock went back: nothing is late
                self.last_seen[entry.cron_job] = fire
                continue
            if fire == seen or entry.cron_job in self.running:
                continue
            self.last_seen[entry.cron_job] = fire
            if not await claim(self.state, entry.cron_job, fire):
                continue  # another process runs it
            task = asyncio.create_task(self._run(entry.cron_job, fire), name=f"cron:{entry.cron_job}")
            self.running[entry.cron_job] = task
            started.append(task)
        if self._scheduled is None or self._scheduled.done():
            self._scheduled = asyncio.create_task(self._run_scheduled(), name="sidekiq:scheduled")
        return started

    async def _run_scheduled(self) -> None:
        """The jobs of Sidekiq's scheduled set that are due (``perform_in``), once each."""
        try:
            await scheduled.run_due(self.state)
        except Exception:  # noqa: BLE001 - as a look at the schedule: the next one tries again
            log.warning("sidekiq: could not run the scheduled jobs", exc_info=True)

    async def _run(self, cron_job: str, fire: datetime) -> JobRun:
        try:
            run = await run_job(self.state, cron_job, enqueued_at=max(fire, clock.now()))
            if self.on_run is not None:
                self.on_run(run)
            return run
        finally:
            self.running.pop(cron_job, None)

    async def start(self) -> None:
        """The first look (it takes the latest fire times as seen), then one every
        ``poll_interval`` seconds in the background."""
        try:
            await self.tick()
        except Exception:  # noqa: BLE001 - as any look: the next one tries again
            log.warning("sidekiq-cron: could not look at the schedule", exc_info=True)
        self._loop_task = asyncio.create_task(self._poll(), name="sidekiq-cron")

    async def _poll(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.poll_interval)
            if self._stopping.is_set():
                return
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - the database or Redis away for a moment: look again later
                log.warning("sidekiq-cron: could not look at the schedule", exc_info=True)

    async def stop(self, grace: float | None = None) -> list[str]:
        """No new runs; running jobs get ``grace`` seconds (``cron_shutdown_timeout``) to
        finish, then are cancelled (what they did is committed batch by batch: the next run
        takes up the rest). Answers the cron jobs that were cancelled."""
        self._stopping.set()
        if self._loop_task is not None:
            await self._loop_task
        grace = self.state.settings.cron_shutdown_timeout if grace is None else grace
        pending = list(self.running.values())
        if pending:
            await asyncio.wait(pending, timeout=grace)
        cancelled = [name for name, task in self.running.items() if not task.done()]
        for task in list(self.running.values()):
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._scheduled is not None:
            if not self._scheduled.done():
                await asyncio.wait([self._scheduled], timeout=grace)
            self._scheduled.cancel()
            await asyncio.gather(self._scheduled, return_exceptions=True)
        return cancelled
