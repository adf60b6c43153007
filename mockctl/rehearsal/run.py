"""A whole rehearsal against one database and one store of its own.

The database is a fresh SQLite file in a temporary directory unless ``--database-url`` names
one; a database that already holds projects, pipelines or artifacts is refused unless
``--replace`` (its tables dropped first) or ``--existing`` (rehearse on its rows as they are:
an administrator's copy of a backlog). The store is always the rehearsal's own: local files in
the temporary directory, or an embedded S3 (moto) with ``--storage s3``; the environment's
``MOCKCOORD_*`` object storage and Redis are never used, so a rehearsal cannot touch a running
instance's bucket or leases.
"""

from __future__ import annotations

import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, inspect, text
from sqlalchemy.engine import make_url

from app import clock
from app.config import Housekeeping, Settings
from app.db import Database
from app.lib import feature, gitlab_version
from app.models import FeatureGate
from app.state import AppState
from mockctl.rehearsal.forecast import Forecast, forecast
from mockctl.rehearsal.instrument import RehearsalInstrument
from mockctl.rehearsal.measure import Fates
from mockctl.rehearsal.objects import write_objects
from mockctl.rehearsal.options import OptionError, RehearsalOptions
from mockctl.rehearsal.population import Population, populate
from mockctl.rehearsal.report import LABELS, write_all
from mockctl.rehearsal.simulate import CUT_NOTE, DELETE, UNKNOWN, WORKERS, Simulation, Step

OCCUPIED = ("projects", "p_ci_pipelines", "p_ci_job_artifacts")


@dataclass
class Rehearsal:
    population: Population | None
    steps: list[Step]
    fates: dict[str, Fates]
    forecast: Forecast
    paths: dict[str, Path]
    settings: list[tuple[str, object]] = field(default_factory=list)
    summary: list[tuple[str, object]] = field(default_factory=list)
    object_keys: list[str] = field(default_factory=list)


def cron_workers() -> dict[str, type]:
    from app.workers.cron import CRON_WORKERS

    if missing := [name for name in WORKERS if name not in CRON_WORKERS]:
        raise OptionError(f"this mockcoord has no cron worker {', '.join(missing)} to rehearse")
    return {name: CRON_WORKERS[name] for name in WORKERS}


async def occupied(url: str) -> dict[str, int]:
    """Rows already in the tables a population writes to (none when the tables do not exist)."""
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            found = {}
            for table in OCCUPIED:
                if table in tables:
                    found[table] = int((await conn.execute(text(f'SELECT count(*) FROM "{table}"'))).scalar_one())
            return found
    finally:
        await db.dispose()


async def _prepare_database(opts: RehearsalOptions, url: str) -> None:
    try:
        found = await occupied(url)
    except Exception as exc:  # an unreachable or wrong URL: one line naming the flag
        raise OptionError(
            f"--database-url {make_url(url).render_as_string()}: {exc.__class__.__name__}: {exc}"
        ) from None
    held = {t: n for t, n in found.items() if n}
    where = make_url(url).render_as_string()
    if opts.existing:
        if not found.get("p_ci_job_artifacts"):
            raise OptionError(f"--existing: {where} holds no artifacts to rehearse on")
        return
    if held and not opts.replace:
        what = ", ".join(f"{n:,} {t}" for t, n in held.items())
        raise OptionError(
            f"--database-url {where} already holds {what}; rehearse builds its population in an empty "
            "database (--replace drops its tables first, --existing rehearses on its rows as they are)"
        )
    if opts.replace:
        db = Database(url)
        try:
            await db.drop_all()
        finally:
            await db.dispose()


async def _set_flags(state: AppState, flags: dict[str, bool]) -> dict[str, bool]:
    """Writes the chosen gates (as ``Feature.enable``/``disable`` would); answers every flag's value."""
    async with state.db.session() as session:
        for name, value in flags.items():
            await session.exec(delete(FeatureGate).where(FeatureGate.feature_key == name))  # type: ignore[call-overload]
            session.add(FeatureGate(feature_key=name, value="true" if value else "false"))
        await session.commit()
        return {name: await feature.enabled(session, name) for name in sorted(feature.DEFINITIONS)}


def _limits_text(limits: Housekeeping) -> str:
    return ", ".join(f"{k}={v}" for k, v in limits.model_dump().items())


async def rehearse(
    opts: RehearsalOptions,
    say: Callable[[str], None] = lambda _line: None,
    on_step: Callable[[Step, int], None] = lambda _step, _total: None,
) -> Rehearsal:
    """Builds, runs and writes out a rehearsal (see the package); ``OptionError`` for a bad option."""
    from app.main import start, stop
    from mockctl.embedded_s3 import EmbeddedS3

    opts.check()
    workers = cron_workers()
    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="mockcoord-rehearsal-"))
    saved_offset, saved_version = clock.offset(), gitlab_version.render(gitlab_version.current())
    s3: EmbeddedS3 | None = None
    state: AppState | None = None
    try:
        url = opts.database_url or f"sqlite+aiosqlite:///{tmp / 'rehearsal.sqlite3'}"
        await _prepare_database(opts, url)
        object_store: dict[str, Any] = {"enabled": False}
        if opts.storage == "s3":
            s3 = EmbeddedS3().start()
            object_store = {
                "enabled": True,
                "connection": {"endpoint": s3.endpoint},
                "objects": {"artifacts": {"bucket": "rehearsal"}},
            }
        settings = Settings(
            data_dir=tmp,
            database_url=url,
            redis_url=None,
            object_store=object_store,
            housekeeping=opts.housekeeping(),
            gitlab_version=opts.gitlab_version,
        )
        gitlab_version.configure(opts.gitlab_version)
        try:
            state = await start(settings, RehearsalInstrument(opts.run_idle))
        except RuntimeError as exc:  # a database an older mockcoord made
            raise OptionError(f"--database-url: {exc}") from None
        flags = await _set_flags(state, opts.flags)
        at = clock.now().replace(microsecond=0)
        population = None
        if not opts.existing:
            say(f"population: {opts.artifacts:,} artifacts in {'SQLite' if state.db.is_sqlite else 'PostgreSQL'}")
            population = await populate(state.db, opts, at, state.store.remote, say)
            say(f"population built in {population.seconds:.1f}s")
        keys: list[str] = []
        if opts.objects:
            first = population.first_artifact_id if population else 0
            keys = await write_objects(state.db, state.store, first, opts.objects, say)
        simulation = Simulation(state, workers, at, opts.days, keys)
        total = len(simulation.events)
        steps = await simulation.run(lambda step: on_step(step, total))
        window_days = min(1.0, opts.days / 2)
        result = forecast(
            steps, simulation.fates["start"], simulation.fates["window"], simulation.fates["end"], window_days
        )
        settings_rows = _settings_rows(opts, settings, flags, at, state)
        summary = _summary(opts, population, steps, simulation.fates, keys, time.perf_counter() - began)
        vacuum = simulation.autovacuum
        summary.insert(-1, ("autovacuum (simulated)", f"{vacuum.runs:,} passes, {vacuum.seconds:.1f}s"))
        expired = steps[0].counts.expired_total if steps[0].counts else 0
        of = "existing" if opts.existing else f"{opts.artifacts:,}"
        title = f"GitLab {opts.gitlab_version}: {expired:,} expired of {of} artifacts, {opts.days:g} simulated days"
        paths = write_all(opts.out, steps, settings_rows, summary, result.line, title)
        return Rehearsal(population, steps, simulation.fates, result, paths, settings_rows, summary, keys)
    finally:
        if state is not None:
            await stop(state)
        if s3 is not None:
            s3.stop()
        clock.reset()
        clock.advance(saved_offset)
        gitlab_version.configure(saved_version)
        shutil.rmtree(tmp, ignore_errors=True)


def _settings_rows(
    opts: RehearsalOptions, settings: Settings, flags: dict[str, bool], at: datetime, state: AppState
) -> list[tuple[str, object]]:
    db = "SQLite" if state.db.is_sqlite else "PostgreSQL"
    return [
        ("database", f"{db}: {make_url(settings.resolved_database_url).render_as_string()}"),
        ("storage", "embedded S3 (moto)" if opts.storage == "s3" else "local files"),
        ("GitLab release", opts.gitlab_version),
        *((f"flag {name}", "on" if value else "off") for name, value in flags.items()),
        ("housekeeping limits", _limits_text(settings.housekeeping) + (" (--lifted)" if opts.lifted else "")),
        ("artifacts", "existing rows" if opts.existing else f"{opts.artifacts:,}"),
        ("expired share", opts.expired_share),
        ("locked share (older pipelines)", opts.locked_share),
        ("unknown share", opts.unknown_share),
        ("keep-latest refs", opts.refs),
        ("projects", opts.projects),
        ("expiry spread", f"{opts.past_days:g} days back, {opts.future_days:g} days ahead"),
        ("real objects", opts.objects),
        ("empty passes", "all made" if opts.run_idle else "a run ends at its first (nothing else writes meanwhile)"),
        ("simulated", f"{opts.days:g} days from {at.isoformat()}"),
        ("machine", f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}"),
    ]


def _summary(
    opts: RehearsalOptions,
    population: Population | None,
    steps: list[Step],
    fates: dict[str, Fates],
    keys: list[str],
    wall: float,
) -> list[tuple[str, object]]:
    first, last = steps[0].counts, steps[-1].counts
    assert first is not None and last is not None
    rows: list[tuple[str, object]] = []
    if population:
        rows.append(
            (
                "population",
                f"{population.artifacts:,} artifacts, {population.jobs:,} jobs, {population.pipelines:,} pipelines, "
                f"{population.projects:,} projects in {population.seconds:.1f}s",
            )
        )
    for label, f in (("at the start", fates["start"]), ("at the end", fates["end"])):
        rows.append(
            (
                f"expired artifacts {label}",
                f"{f.expired:,}: {f.drainable:,} to destroy, {f.locked + f.unknown_to_lock:,} locked, "
                f"{f.unknown_idle:,} unknown and idle",
            )
        )
    rows += [
        (
            "expired by own column, start",
            f"unlocked {first.expired_unlocked:,}, locked {first.expired_locked:,}, unknown {first.expired_unknown:,}",
        ),
        (
            "expired by own column, end",
            f"unlocked {last.expired_unlocked:,}, locked {last.expired_locked:,}, unknown {last.expired_unknown:,}",
        ),
        ("deleted objects queued at the end", f"{last.queue_length:,} ({last.queue_ready:,} ready)"),
    ]
    for worker, label in LABELS.items():
        runs = [s for s in steps if s.worker == worker]
        if not runs:
            continue
        seconds = sum(s.seconds for s in runs)
        done = sum(s.objects_removed if s.worker == DELETE else s.rows_destroyed for s in runs)
        what = "objects removed" if worker == DELETE else "rows destroyed"
        extra = f", {sum(s.rows_locked for s in runs):,} locked" if worker == UNKNOWN else ""
        if cut := sum(1 for s in runs if s.note == CUT_NOTE):
            extra += f", {cut:,} ended at their first empty pass"
        rows.append(
            (
                label,
                f"{len(runs):,} runs, {done:,} {what}{extra}, {seconds:.1f}s "
                f"(longest {max(s.seconds for s in runs):.2f}s)"
                + (f", {done / seconds:,.0f}/s" if seconds and done else ""),
            )
        )
    if keys:
        rows.append(("real objects", f"{len(keys):,} written, {steps[-1].real_objects_left:,} left"))
    rows.append(("wall time", f"{wall:.1f}s"))
    return rows
