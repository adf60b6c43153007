"""Simulated time: every fire time of the three housekeeping cron workers between the start and
``--days`` later, in order (croniter on each worker's own ``cron`` line; workers firing at the
same minute run in GitLab's listing order), the mock clock set to it, the worker run to the end
(``perform()``), and what is left measured.

A run takes the real seconds it takes; simulated time then jumps to the next fire time. GitLab's
limits that are counted in time (five minutes a run) are real seconds, as in GitLab.

Empty passes: GitLab's runs never end on an empty pass, so a run with nothing left to find still
makes its 500 queries (a second or so here, ~1,300 runs in three days). Nothing else writes while
a rehearsed worker runs, so the rehearsal's instrument (``RehearsalInstrument``) ends a run at its
first empty pass and the step is noted ``ended at its first empty pass`` (``--run-idle`` makes them
all); the rows are the same either way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from croniter import croniter

from app import clock
from app.lib.exclusive_lease import FailedToObtainLockError
from app.state import AppState
from mockctl.rehearsal.instrument import RehearsalInstrument
from mockctl.rehearsal.measure import Autovacuum, Counts, Fates, Tally, counts, fates, real_objects_left

EXPIRE = "expire_build_artifacts_worker"
UNKNOWN = "update_locked_unknown_artifacts_worker"
DELETE = "ci_schedule_delete_objects_worker"
WORKERS = (EXPIRE, UNKNOWN, DELETE)  # order at a shared minute
CUT_NOTE = "ended at its first empty pass"


@dataclass
class Step:
    step: int
    at: datetime
    worker: str  # the cron job name; "start" for the population as built
    seconds: float = 0.0
    rows_destroyed: int = 0
    rows_locked: int = 0
    objects_removed: int = 0
    objects_failed: int = 0
    counts: Counts | None = None
    real_objects_left: int | None = None
    note: str = ""


def fire_times(crons: dict[str, str], start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """Every (time, cron job) in (start, end], ordered by time, then by ``crons``' order."""
    events: list[tuple[datetime, int, str]] = []
    for order, (name, line) in enumerate(crons.items()):
        schedule = croniter(line, start)
        while (at := schedule.get_next(datetime)) <= end:
            events.append((at, order, name))
    return [(at, name) for at, _, name in sorted(events)]


def _take(result: dict[str, Any], *names: str) -> int:
    for name in names:
        if name in result:
            return int(result[name] or 0)
    return 0


def read_result(worker: str, result: dict[str, Any], step: Step) -> None:
    """The worker's own account (what GitLab logs with ``log_extra_metadata_on_done``)."""
    if worker == EXPIRE:
        step.rows_destroyed = _take(result, "destroyed_job_artifacts_count")
    elif worker == UNKNOWN:
        step.rows_destroyed = _take(result, "removed_count")
        step.rows_locked = _take(result, "locked_count")
    elif worker == DELETE:
        step.objects_removed = _take(result, "removed_count", "removed")
        step.objects_failed = _take(result, "failed_count", "failed")


class Simulation:
    def __init__(
        self,
        state: AppState,
        workers: dict[str, type],
        start: datetime,
        days: float,
        object_keys: list[str] | None = None,
    ) -> None:
        self.state = state
        self.workers = workers
        self.start = start
        self.end = start + timedelta(days=days)
        self.object_keys = object_keys or []
        self.events = fire_times({name: workers[name].cron for name in WORKERS}, self.start, self.end)
        # the forecast's window: the last day, or the second half of a shorter run
        self.window_start = self.end - timedelta(days=min(1.0, days / 2))
        self.fates: dict[str, Fates] = {}  # "start", "window", "end"
        self.tally = Tally(state.db)
        self.autovacuum = Autovacuum(state.db)

    async def check(self, last: Step) -> None:
        """The triggers' counts against a full count of the tables: they must agree."""
        exact = await counts(self.state.db, last.at)
        if exact != last.counts:
            raise RuntimeError(f"the rehearsal's running counts drifted: {last.counts} against {exact}")

    async def first(self) -> Step:
        clock.set_to(self.start)
        await self.tally.install(self.start)
        step = Step(0, self.start, "start", counts=await self.tally.read())
        self.fates["start"] = await fates(self.state.db, self.start)
        if self.object_keys:
            step.real_objects_left = await real_objects_left(self.state.store, self.object_keys)
        return step

    async def run(self, on_step: Callable[[Step], None] = lambda _s: None) -> list[Step]:
        """The steps, the population as built first. The mock clock is left at the end."""
        try:
            return await self._run(on_step)
        finally:
            await self.tally.uninstall()

    async def _run(self, on_step: Callable[[Step], None]) -> list[Step]:
        steps = [await self.first()]
        on_step(steps[0])
        objects_left = steps[0].real_objects_left
        for number, (at, name) in enumerate(self.events, start=1):
            if "window" not in self.fates and at > self.window_start:
                self.fates["window"] = await fates(self.state.db, self.window_start)
            await self.tally.advance(at)
            clock.set_to(at)
            step = Step(number, at, name)
            began = time.perf_counter()
            try:
                result = await self.workers[name](self.state).perform()
            except FailedToObtainLockError as exc:  # another process holds the lease: GitLab's job fails
                result, step.note = {}, str(exc)
            step.seconds = time.perf_counter() - began
            if isinstance(self.state.instrument, RehearsalInstrument) and self.state.instrument.take_cut():
                step.note = CUT_NOTE
            read_result(name, result, step)
            await self.autovacuum.after(step.rows_destroyed + step.rows_locked + step.objects_removed)
            step.counts = await self.tally.read()
            if self.object_keys and name == DELETE:
                objects_left = await real_objects_left(self.state.store, self.object_keys)
            step.real_objects_left = objects_left
            steps.append(step)
            on_step(step)
        await self.check(steps[-1])
        clock.set_to(self.end)
        self.fates.setdefault("window", self.fates["start"])
        self.fates["end"] = await fates(self.state.db, self.end)
        return steps
