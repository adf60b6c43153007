"""A load run end to end: the coordinator (started or given), seeding, the fault installed for the
run's length, one Locust run a mode with its processes sampled, then ``report.json`` and
``report.html`` in ``--out``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from mockctl.loadtest.figures import MIB, compare_figures, mode_figures
from mockctl.loadtest.from_records import modes_from_records
from mockctl.loadtest.html import render
from mockctl.loadtest.locust_run import STOP_TIMEOUT, LocustRun
from mockctl.loadtest.options import LoadOptions, OptionError
from mockctl.loadtest.sampler import Sampler
from mockctl.loadtest.seed import seed_run
from mockctl.loadtest.stack import Target, answer_message, check_target, local_stack
from runner_client.load.plan import Plan


class LiveRecords:
    """What Locust has written so far, read as it grows, for the progress line."""

    def __init__(self, run: LocustRun) -> None:
        self.path, self.offset = run.records, 0
        self.requests = self.failures = self.bytes = 0

    def read(self) -> None:
        with self.path.open() as f:
            f.seek(self.offset)
            text = f.read()
        complete = text[: text.rfind("\n") + 1]
        self.offset += len(complete)
        for line in map(json.loads, complete.splitlines()):
            if "name" in line:
                self.requests += 1
                self.failures += line["kind"] is not None
                self.bytes += line["len"] if line["kind"] is None else 0


@contextmanager
def installed_fault(target: Target, rule: dict[str, Any] | None) -> Iterator[dict[str, Any] | None]:
    """The rule in force for the run (after seeding), removed after it whatever happens."""
    if rule is None:
        yield None
        return
    headers = {"PRIVATE-TOKEN": target.admin_token}
    res = httpx.post(f"{target.url}/-/mock/faults", json=rule, headers=headers, timeout=30)
    if res.status_code != 201:
        raise OptionError(f"--fault: the coordinator refused it ({res.status_code} {answer_message(res)})")
    added = res.json()
    try:
        yield added
    finally:
        httpx.delete(f"{target.url}/-/mock/faults/{added['id']}", headers=headers, timeout=30)


def seed(options: LoadOptions, target: Target, console: Console) -> Plan:
    uploads = options.modes == ["upload"]
    total = 0 if uploads else options.objects * options.artifact_size
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(binary_units=True), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("seeding", total=total)
        return asyncio.run(
            seed_run(
                target.url,
                target.admin_token,
                options.objects,
                options.artifact_size,
                uploads,
                lambda n: progress.advance(task, n),
            )
        )


def run_mode(
    mode: str,
    options: LoadOptions,
    plan: Plan,
    target: Target,
    console: Console,
    stop_timeout: float = STOP_TIMEOUT,
) -> dict[str, Any]:
    """One Locust run of ``mode``'s users (``USER_CLASSES``) with ``target.processes`` sampled:
    its figures (``mode_figures``) and ``processes``. Benchmarks call it per cell."""
    run = LocustRun(
        mode,
        options.users,
        options.spawn_rate,
        options.duration,
        options.locust_workers,
        plan,
        options.out / f"records-{mode}.jsonl",
        options.out / f"locust-{mode}.log",
        stop_timeout,
    )
    live = LiveRecords(run)
    sampler = Sampler(target.processes).start()
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(mode, total=options.duration)

        def tick(seconds: float) -> None:
            live.read()
            rate = live.bytes / MIB / seconds if seconds else 0.0
            progress.update(
                task,
                completed=min(seconds, options.duration),
                description=f"{mode}: {live.requests} requests, {live.failures} failed, {rate:.1f} MiB/s",
            )

        try:
            run.run(tick)
        finally:
            processes = sampler.stop()
    lines = [json.loads(line) for line in run.records.read_text().splitlines()]
    return mode_figures(lines) | {"processes": processes}


def write_report(out: Path, head: dict[str, Any], modes: dict[str, Any]) -> dict[str, Any]:
    """``report.json`` and ``report.html`` in ``out``; direct and proxy side by side when both ran."""
    report = {
        "mockcoord_loadtest": 1,
        **head,
        "modes": modes,
        "compare": compare_figures(modes["direct"], modes["proxy"]) if {"direct", "proxy"} <= modes.keys() else None,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.html").write_text(render(report))
    return report


def load(options: LoadOptions, target: Target, plan: Plan, console: Console, started_here: bool) -> dict[str, Any]:
    """The modes run on a seeded coordinator with the fault in force; the reports written."""
    started = datetime.now(UTC).isoformat(timespec="seconds")
    options.out.mkdir(parents=True, exist_ok=True)
    with installed_fault(target, options.fault) as fault:
        modes = {mode: run_mode(mode, options, plan, target, console) for mode in options.modes}
    head = {
        "started": started,
        "options": {k: str(v) if k == "out" else v for k, v in vars(options).items() if k != "admin_token"},
        "target": {"url": target.url, "started_here": started_here, "processes": target.processes},
        "fault": fault,
    }
    return write_report(options.out, head, modes)


def report_from_records(paths: list[Path], out: Path) -> dict[str, Any]:
    """The report of a Locust run made by hand, from the records its master wrote."""
    modes, started = modes_from_records(paths)
    records = [str(path) for path in paths]
    head = {
        "started": started,
        "options": {"from_records": records, "out": str(out)},
        "target": {"url": "", "started_here": False, "processes": {}},
        "fault": None,
    }
    return write_report(out, head, modes)


def run_load(options: LoadOptions, console: Console, seed_only: bool = False) -> dict[str, Any] | None:
    """The coordinator (``--url``, or one started here), seeded (the plan in ``plan.json``), then
    ``load``; ``seed_only``: stop after the plan (for Locust runs spread over machines by hand).
    Raises ``OptionError`` / ``TargetError`` (a bad option or coordinator: exit 2) and
    ``RuntimeError`` (the run itself failed: exit 1)."""
    if options.url is not None and options.admin_token is not None:
        check_target(options.url, options.admin_token)
        stack: AbstractContextManager[Target] = nullcontext(Target(options.url.rstrip("/"), options.admin_token))
    else:
        console.print("starting object storage, Rails and Workhorse on free ports")
        stack = local_stack(options.out / "stack")
    with stack as target:
        plan = seed(options, target, console)
        console.print(f"seeded {len(plan.objects)} object(s) of {options.artifact_size:,} bytes at {target.url}")
        options.out.mkdir(parents=True, exist_ok=True)
        (options.out / "plan.json").write_text(plan.to_json())
        if seed_only:
            return None
        return load(options, target, plan, console, started_here=options.url is None)
