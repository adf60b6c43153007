"""``mockcoord housekeeping rehearse``: small real rehearsals (a few thousand rows, one simulated
day) on SQLite and, through ``MOCKCOORD_TEST_DATABASE_URL``, PostgreSQL (a database of their own
next to the test database, made and dropped here).

The loop limits are cut to a few passes (``--limits``) so that a simulated day's 528 runs take
seconds: GitLab's runs never end on an empty batch, and 500 empty passes a run would be minutes.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func
from sqlmodel import col, select
from typer.testing import CliRunner

from app import clock
from app.db import Database
from app.lib import gitlab_version
from app.models import DeletedObject, JobArtifact, ProjectStatistics
from mockctl.cli import cli
from mockctl.rehearsal.forecast import forecast
from mockctl.rehearsal.measure import Counts, Fates
from mockctl.rehearsal.options import RehearsalOptions
from mockctl.rehearsal.run import Rehearsal, rehearse
from mockctl.rehearsal.simulate import CUT_NOTE, DELETE, EXPIRE, UNKNOWN, Step
from tests import postgres
from tests.test_cli_imports import HEAVY, PROBE

QUICK = {"expire_loop_limit": 5, "unknown_loop_limit": 5}  # 500 rows a run; idle runs cost 5 queries


@pytest.fixture(scope="module")
async def database(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A database of the rehearsals' own: a SQLite file, or a PostgreSQL database beside the test one."""
    if db_url.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('rehearse') / 'rehearse.sqlite3'}"
        return
    try:
        url = postgres.database_beside(db_url, "rehearse", empty=True)
    except Exception as exc:  # no right to make databases: say so
        pytest.skip(f"cannot create a PostgreSQL database for the rehearsals: {exc}")
    yield url
    postgres.drop_beside(db_url, "rehearse")


@pytest.fixture(autouse=True)
def untouched_clock_and_release() -> Any:
    offset = clock.offset()
    yield
    assert clock.offset() == offset, "a rehearsal leaves the process's mock clock as it found it"
    assert gitlab_version.current() == gitlab_version.NEWEST
    gitlab_version.configure("newest")


def series(result: Rehearsal) -> list[dict[str, str]]:
    with result.paths["series.csv"].open() as fh:
        return list(csv.DictReader(fh))


def column(rows: list[dict[str, str]], name: str) -> list[int]:
    return [int(r[name]) for r in rows]


def non_increasing(values: list[int]) -> bool:
    return all(a >= b for a, b in zip(values, values[1:], strict=False))


async def table_counts(url: str) -> tuple[int, int]:
    """Artifacts and deleted objects left; and every project's ``build_artifacts_size`` is the sum
    of its artifacts' sizes (each destroyed batch took its sizes off the right projects)."""
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            artifacts = (await conn.execute(select(func.count()).select_from(JobArtifact))).scalar_one()
            queued = (await conn.execute(select(func.count()).select_from(DeletedObject))).scalar_one()
            sizes = dict(
                (
                    await conn.execute(
                        select(JobArtifact.project_id, func.sum(JobArtifact.size)).group_by(JobArtifact.project_id)
                    )
                ).all()
            )
            usage = dict(
                (await conn.execute(select(ProjectStatistics.project_id, ProjectStatistics.build_artifacts_size))).all()
            )
        assert len(usage) >= 3 and {p: u for p, u in usage.items() if u} == {p: int(s) for p, s in sizes.items()}
        return int(artifacts), int(queued)
    finally:
        await db.dispose()


async def test_a_day_drains_what_may_go_and_keeps_the_rest(database: str, tmp_path: Path) -> None:
    opts = RehearsalOptions(
        artifacts=3000,
        expired_share=1.0,  # nothing expires during the day: the accounting below is exact
        locked_share=0.2,
        unknown_share=0.3,
        refs=5,
        projects=3,
        objects=400,
        days=1,
        limits=QUICK,
        database_url=database,
        replace=True,
        out=tmp_path / "out",
    )
    result = await rehearse(opts)
    rows = series(result)
    start, last = rows[0], rows[-1]

    # outputs
    assert {p.name for p in result.paths.values()} == {"series.csv", "drain.png", "drain.html", "forecast.txt"}
    assert result.paths["drain.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = result.paths["drain.html"].read_text()
    assert "data:image/png;base64,iVBOR" in page and result.forecast.line in page
    assert result.paths["forecast.txt"].read_text() == result.forecast.line + "\n"
    # every fire time of a day, in order: */7 (9 an hour, two workers) and */16 (4 an hour)
    assert [r["worker"] for r in rows].count(EXPIRE) == [r["worker"] for r in rows].count(UNKNOWN) == 24 * 9
    assert [r["worker"] for r in rows].count(DELETE) == 24 * 4
    times = [datetime.fromisoformat(r["sim_time"]) for r in rows]
    assert times == sorted(times) and times[-1] - times[0] <= timedelta(days=1)

    # what must only go down, or only up
    for name in ("expired_total", "expired_unlocked", "expired_unknown", "unknown_total"):
        assert non_increasing(column(rows, name)), name
    for name in ("expired_locked", "destroyed_total", "objects_removed_total"):
        assert non_increasing(column(rows, name)[::-1]), name

    # counts: every expired unlocked row went, through the expiry worker; unknown rows went or got locked
    destroyed = {w: sum(int(r["rows_destroyed"]) for r in rows if r["worker"] == w) for w in (EXPIRE, UNKNOWN)}
    locked = sum(int(r["rows_locked"]) for r in rows)
    assert int(start["expired_unlocked"]) > 0 and int(last["expired_unlocked"]) == 0
    assert destroyed[EXPIRE] == int(start["expired_unlocked"]) - int(last["expired_unlocked"])
    assert int(last["expired_unknown"]) == 0 and int(start["expired_unknown"]) == destroyed[UNKNOWN] + locked
    assert int(last["expired_locked"]) == int(start["expired_locked"]) + locked > 0
    left, queued = await table_counts(database)
    assert left == 3000 - destroyed[EXPIRE] - destroyed[UNKNOWN] == int(last["expired_total"])
    # deleted objects: drained at each DeleteObjects run, all of them removed by the end of the day
    assert all(int(r["queue_ready"]) == 0 for r in rows if r["worker"] == DELETE)
    assert int(last["objects_removed_total"]) == int(last["destroyed_total"]) - queued
    # real objects: those of destroyed artifacts removed from the store, the others still there
    assert int(start["real_objects_left"]) == 400 > int(last["real_objects_left"]) > 0
    # the forecast: everything that may go went; what stays is locked
    assert result.forecast.days == 0
    share = round(100 * int(last["expired_locked"]) / int(last["expired_total"]))
    assert result.forecast.line == (
        f"at this pace the backlog is gone in 0 days: nothing expired is left to destroy; "
        f"{share}% of expired artifacts are locked and stay"
    )


async def test_a_locked_backlog_never_goes(database: str, tmp_path: Path) -> None:
    opts = RehearsalOptions(
        artifacts=2000,
        expired_share=1.0,
        locked_share=1.0,
        days=1,
        limits=QUICK,
        database_url=database,
        replace=True,
        out=tmp_path,
    )
    result = await rehearse(opts)
    rows = series(result)
    assert column(rows, "expired_locked")[0] == column(rows, "expired_locked")[-1] == 2000
    assert sum(column(rows, "rows_destroyed")) == 0
    assert result.forecast.line == "never: 100% of expired artifacts are locked"
    assert result.forecast.days is None


async def test_a_slow_pace_is_extrapolated(database: str, tmp_path: Path) -> None:
    """Ten rows a run (one pass of ten): 216 runs a day drain 2,160 of 4,000."""
    opts = RehearsalOptions(
        artifacts=4000,
        expired_share=1.0,
        refs=1,
        days=1,
        limits={"expire_batch_size": 10, "expire_loop_limit": 1, "unknown_loop_limit": 1},
        database_url=database,
        replace=True,
        out=tmp_path,
    )
    result = await rehearse(opts)
    rows = series(result)
    assert all(int(r["rows_destroyed"]) == 10 for r in rows if r["worker"] == EXPIRE)
    left = int(rows[-1]["expired_unlocked"])
    assert left == 4000 - 10 - 216 * 10  # the latest pipeline's ten artifacts are locked
    assert result.forecast.days == pytest.approx(left / 2160, abs=0.06)
    assert result.forecast.line.startswith(f"at this pace the backlog is gone in {result.forecast.days:.1f} days: ")
    assert "1,830 expired artifacts to destroy" in result.forecast.line


async def test_15_2_walks_into_locked_refs_and_15_3_drains(database: str, tmp_path: Path) -> None:
    """15.2's expiry walks the newest expired rows first (here five batches of 100, all of them the
    latest pipelines of 60 refs, locked) and never gets past them; the backlog worker is off.
    15.3 goes by the rows' own column and works the unknown backlog off."""
    common: dict[str, Any] = {
        "artifacts": 2000,
        "expired_share": 1.0,
        "unknown_share": 1.0,
        "refs": 60,
        "days": 0.5,
        "limits": QUICK,
        "database_url": database,
        "replace": True,
    }
    old = await rehearse(RehearsalOptions(gitlab_version="15.2", out=tmp_path / "15.2", **common))
    new = await rehearse(RehearsalOptions(gitlab_version="15.3", out=tmp_path / "15.3", **common))
    assert sum(column(series(old), "rows_destroyed")) == 0
    assert column(series(old), "unknown_total")[-1] == 2000
    assert dict(old.settings)["flag ci_job_artifacts_backlog_work"] == "off"
    assert old.forecast.line == (
        "never: 70% of expired artifacts are unlocked but out of the workers' reach "
        "(none destroyed in the last 6 hours) and 30% locked"
    )
    rows = series(new)
    assert column(rows, "unknown_total")[-1] == 0
    assert sum(column(rows, "rows_destroyed")) == 1400 and sum(column(rows, "rows_locked")) == 600
    assert new.forecast.line == (
        "at this pace the backlog is gone in 0 days: nothing expired is left to destroy; "
        "100% of expired artifacts are locked and stay"
    )
    # a flag given wins over the release's default
    flagged = await rehearse(
        RehearsalOptions(
            gitlab_version="15.2", flags={"ci_job_artifacts_backlog_work": True}, out=tmp_path / "flag", **common
        )
    )
    rows = series(flagged)
    assert sum(column(rows, "rows_destroyed")) == 1400 and sum(column(rows, "rows_locked")) == 600


async def test_runs_ended_at_their_first_empty_pass_change_nothing(database: str, tmp_path: Path) -> None:
    """Ending runs at their first empty pass gives the series every pass gives (rows expire all
    day long here, so runs turn busy again after idle ones)."""
    common: dict[str, Any] = {
        "artifacts": 3000,
        "expired_share": 0.5,
        "unknown_share": 0.2,
        "locked_share": 0.3,
        "future_days": 2,
        "days": 1,
        "limits": QUICK,
        "database_url": database,
        "replace": True,
    }
    saved = clock.offset()
    try:  # both from the same start, so the fire times fall alike
        clock.set_to(datetime(2026, 3, 1, 0, 3, tzinfo=UTC))
        every = series(await rehearse(RehearsalOptions(run_idle=True, out=tmp_path / "every", **common)))
        clock.set_to(datetime(2026, 3, 1, 0, 3, tzinfo=UTC))
        skipping = series(await rehearse(RehearsalOptions(out=tmp_path / "skip", **common)))
    finally:
        clock.reset()
        clock.advance(saved)

    def state(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{k: v for k, v in r.items() if k not in ("seconds", "note")} for r in rows]

    assert state(every) == state(skipping)
    assert not any(r["note"] for r in every)
    cut = [r for r in skipping if r["note"] == CUT_NOTE]
    assert len(cut) > 100 and {r["worker"] for r in cut} == {EXPIRE, UNKNOWN}
    assert any(int(r["rows_destroyed"]) for r in cut), "a run that found rows then ends at its empty pass"
    busy_after_idle = [r for r in skipping[skipping.index(cut[0]) + 1 :] if int(r["rows_destroyed"])]
    assert busy_after_idle, "rows expiring later are found by later runs"
    assert all(float(r["seconds"]) > 0 for r in cut)


def _step(at: datetime, worker: str, destroyed: int = 0) -> Step:
    return Step(0, at, worker, rows_destroyed=destroyed, counts=Counts(0, 0, 0, 0, 0, 0))


def test_forecast_keeps_up_with_a_trickle() -> None:
    """Ten rows expired since the last run, 34 deleted objects queued since the last removal: the
    backlog is gone, the workers clear what expires as it comes."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    steps = [_step(at, "start"), _step(at + timedelta(hours=13), EXPIRE, 32)]
    steps.append(Step(2, at + timedelta(hours=14), DELETE, objects_removed=40, counts=Counts(10, 0, 0, 0, 34, 0)))
    window, end = Fates(32, 0, 0, 32, 0), Fates(10, 0, 0, 10, 0)
    assert forecast(steps, Fates(1000, 0, 0, 1000, 0), window, end, 1.0).line == (
        "at this pace the backlog is gone in 0 days: the workers keep up with what expires (32 destroyed a day)"
    )
    end = Fates(100, 0, 0, 100, 0)  # more than a run clears: extrapolated
    assert forecast(steps, Fates(1000, 0, 0, 1000, 0), Fates(200, 0, 0, 200, 0), end, 1.0).line == (
        "at this pace the backlog is gone in 1.0 days: 100 expired artifacts to destroy, 100 fewer a day"
    )


@pytest.mark.parametrize(
    ("window", "end", "destroyed", "line"),
    [
        (
            Fates(1000, 900, 0, 100, 0),
            Fates(1000, 900, 0, 100, 0),
            0,
            "never: 90% of expired artifacts are locked and 10% unlocked but out of the workers' reach "
            "(none destroyed in the last 12 hours)",
        ),
        (
            Fates(1000, 10, 0, 990, 0),
            Fates(1200, 10, 0, 1190, 0),
            300,
            "never: the backlog grows: 600 destroyed a day, 990 to go 12 hours ago and 1,190 now; "
            "<1% of expired artifacts are locked",
        ),
        (
            Fates(1000, 995, 5, 0, 0),
            Fates(1000, 995, 5, 0, 0),
            0,
            "never: 99% of expired artifacts are locked and <1% unknown with the backlog worker off "
            "(ci_job_artifacts_backlog_work)",
        ),
    ],
)
def test_forecast_says_why_never(window: Fates, end: Fates, destroyed: int, line: str) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    steps = [
        _step(at, "start"),
        _step(at + timedelta(hours=18), EXPIRE, destroyed),
        _step(at + timedelta(days=1), DELETE),
    ]
    assert forecast(steps, window, window, end, 0.5).line == line


def test_bad_options_are_one_line_and_exit_2(tmp_path: Path) -> None:
    out = ["--out", str(tmp_path / "out")]
    for args, message in [
        (["--expired-share", "1.5"], "--expired-share 1.5: a share is between 0 and 1"),
        (["--artifacts", "0"], "--artifacts 0: give 1 to 100,000,000"),
        (["--refs", "0"], "--refs 0: at least 1"),
        (["--artifacts", "100", "--refs", "20"], "--refs 20: more refs than the 10 pipelines 100 artifacts make"),
        (["--objects", "200", "--artifacts", "100"], "--objects 200: between 0 and --artifacts (100)"),
        (["--days", "0"], "--days 0.0: more than 0"),
        (["--gitlab-version", "15"], "--gitlab-version: not a GitLab release"),
        (["--flag", "ci_nope=true"], "--flag ci_nope: not a known feature flag"),
        (["--flag", "ci_job_artifacts_backlog_work"], "--flag 'ci_job_artifacts_backlog_work': give NAME=true"),
        (["--limits", "expire_batch_size=0"], "--limits expire_batch_size=0: Input should be greater than or equal"),
        (["--limits", "batch=5"], "--limits batch: not a housekeeping limit"),
        (["--limits", "expire_batch_size=x"], "--limits expire_batch_size='x': not a number"),
        (["--storage", "nfs"], "--storage 'nfs': local or s3"),
        (["--existing"], "--existing: give the --database-url"),
    ]:
        result = CliRunner().invoke(cli, ["housekeeping", "rehearse", *args, *out])
        assert result.exit_code == 2, (args, result.output)
        assert result.output.startswith(message) and result.output.count("\n") == 1, (args, result.output)
    assert not (tmp_path / "out").exists()


def test_an_occupied_database_is_refused_unless_replaced(database: str, tmp_path: Path) -> None:
    args = ["housekeeping", "rehearse", "--artifacts", "300", "--refs", "1", "--days", "0.05"]
    args += ["--database-url", database]
    args += ["--limits", "expire_loop_limit=2,unknown_loop_limit=2", "--out", str(tmp_path)]
    first = CliRunner().invoke(cli, [*args, "--replace"])
    assert first.exit_code == 0, first.output
    assert "day 0.00: 270 expired left (270 unlocked, 0 locked, 0 unknown)" in first.output  # plain lines
    assert first.output.rstrip().endswith("nothing expired is left to destroy")
    assert f"drain.html: {tmp_path / 'drain.html'}" in first.output
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 2
    assert "already holds" in again.output and "--replace" in again.output
    existing = CliRunner().invoke(cli, [*args, "--existing"])  # the rows as they are: nothing expired left
    assert existing.exit_code == 0, existing.output


def test_help_imports_nothing_heavy() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=set(HEAVY)), "housekeeping", "rehearse", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(out.stdout.splitlines()[-1]) == []


async def test_population_is_set_based_and_shaped(database: str, tmp_path: Path) -> None:
    """As many statements for 3,000 rows as for 1,000; shares, keep-latest locks, statistics and
    the id sequences as promised."""
    from app.config import Settings
    from app.instrumentation import Instrument
    from app.main import start, stop
    from app.models import Pipeline
    from mockctl.rehearsal.population import populate

    statements: dict[int, int] = {}
    for size in (1000, 3000):
        fresh = Database(database)
        await fresh.drop_all()
        await fresh.dispose()
        state = await start(
            Settings(data_dir=tmp_path, database_url=database, object_store={"enabled": False}), Instrument()
        )
        seen: list[str] = []
        event.listen(state.db.engine.sync_engine, "before_cursor_execute", lambda *a, seen=seen: seen.append(a[2]))
        at = datetime(2026, 3, 1, tzinfo=UTC)
        opts = RehearsalOptions(
            artifacts=size, expired_share=0.5, locked_share=0.5, unknown_share=0.2, refs=7, projects=3
        )
        population = await populate(state.db, opts, at, False)
        statements[size] = sum(1 for s in seen if s.lstrip().upper().startswith(("INSERT", "WITH")))
        async with state.db.session() as session:
            artifacts = (await session.exec(select(func.count()).select_from(JobArtifact))).one()
            expired = (await session.exec(select(func.count()).where(col(JobArtifact.expire_at) < at))).one()
            unknown = (await session.exec(select(func.count()).where(JobArtifact.locked == 2))).one()
            latest = (await session.exec(select(Pipeline).order_by(col(Pipeline.id).desc()).limit(7))).all()
            sizes = (await session.exec(select(func.sum(JobArtifact.size)))).one()
            usage = (await session.exec(select(func.sum(ProjectStatistics.build_artifacts_size)))).one()
            session.add(Pipeline(project_id=latest[0].project_id))  # the id sequence moved past the rows
            await session.commit()
        await stop(state)
        assert (population.artifacts, artifacts) == (size, size)
        assert expired == size // 2 and unknown == round(population.pipelines * 0.2) * 10
        assert (
            all(p.locked == 1 for p in latest)
            and {p.ref for p in latest} >= {"main"}
            and len({p.ref for p in latest}) == 5
        )
        assert usage == sizes > 0
    assert statements[1000] == statements[3000] <= 8
