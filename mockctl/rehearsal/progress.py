"""A rehearsal's progress: a Rich bar on a terminal, plain lines otherwise (a log, a CI job):
one every simulated six hours and at the end."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from mockctl.rehearsal.simulate import Step

PLAIN_EVERY_HOURS = 6


def describe(step: Step, start_hours: float = 0.0) -> str:
    c = step.counts
    assert c is not None
    return (
        f"day {start_hours / 24:.2f}: {c.expired_total:,} expired left ({c.expired_unlocked:,} unlocked, "
        f"{c.expired_locked:,} locked, {c.expired_unknown:,} unknown), {c.queue_length:,} deleted objects queued"
    )


class Progress:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar: RichProgress | None = None
        self.task: int | None = None
        self.start = None
        self.next_line = 0.0

    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            self.bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=False,
            )
            self.bar.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.__exit__(kind, value, tb)

    def say(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False)

    def step(self, step: Step, total: int) -> None:
        if self.start is None:
            self.start = step.at
        hours = (step.at - self.start).total_seconds() / 3600
        if self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task("simulating", total=total)
            self.bar.update(self.task, completed=step.step, description=f"simulated day {hours / 24:.2f}")
            return
        if step.step == 0 or hours >= self.next_line or step.step == total:
            self.console.print(describe(step, hours), markup=False, highlight=False)
            while self.next_line <= hours:
                self.next_line += PLAIN_EVERY_HOURS
