"""``ProjectStatistics.build_artifacts_size`` updates (GitLab's ``counter_attribute``).

GitLab buffers these increments in Redis and flushes them ~10 minutes later; mockcoord
applies them in the same transaction as the artifact rows, so usage never lags.

While the counter is refreshed (``Projects::BuildArtifactsSizeRefresh`` started and not yet
finalized) GitLab's ``BufferedCounter`` sends every increment to the refresh sum instead,
deduplicated by artifact id (``ref``): an artifact's increment counts once, its decrement only
after its increment was counted. So an artifact created during the refresh (beyond the ids the
refresh walks) is counted by its increment, and one deleted before the refresh reached it is
counted by neither. Those Redis keys are rows of ``mockcoord_counter_refresh_increments`` here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import BuildArtifactsSizeRefresh, CounterRefreshIncrement, ProjectStatistics, RefreshState


@dataclass(frozen=True)
class Increment:
    """``Gitlab::Counters::Increment``: an amount and the artifact it comes from."""

    amount: int
    ref: int | None = None


async def refreshing(session: AsyncSession, project_ids: Iterable[int]) -> set[int]:
    """Those of the projects whose ``<key>:refresh-in-progress`` is set: a refresh started
    running and not yet finalized."""
    rows = await session.exec(
        select(BuildArtifactsSizeRefresh.project_id).where(
            col(BuildArtifactsSizeRefresh.project_id).in_(list(project_ids)),
            BuildArtifactsSizeRefresh.state != RefreshState.created,
        )
    )
    return set(rows.all())


async def _apply(session: AsyncSession, deltas: Mapping[int, int]) -> None:
    """Adds each project's delta to its usage: one UPDATE sent for them all, in project order
    (two batches racing lock the rows in the same order)."""
    sums = [{"pid": pid, "delta": delta} for pid, delta in sorted(deltas.items()) if delta]
    if not sums:
        return
    table = ProjectStatistics.__table__  # type: ignore[attr-defined]
    statement = (
        update(table)
        .where(table.c.project_id == bindparam("pid"))
        .values(
            build_artifacts_size=table.c.build_artifacts_size + bindparam("delta"),
            storage_size=table.c.storage_size + bindparam("delta"),
        )
    )
    await (await session.connection()).execute(statement, sums)


async def _increment_refresh(session: AsyncSession, project_id: int, increments: Sequence[Increment]) -> None:
    """``LUA_INCREMENT_WITH_DEDUPLICATION_SCRIPT`` for each increment, in order."""
    refs = {i.ref for i in increments if i.ref is not None}
    tracked: set[tuple[int, int]] = set()
    if refs:
        rows = await session.exec(
            select(CounterRefreshIncrement.ref, CounterRefreshIncrement.sign).where(
                CounterRefreshIncrement.project_id == project_id, col(CounterRefreshIncrement.ref).in_(refs)
            )
        )
        tracked = {(ref, sign) for ref, sign in rows.all() if ref is not None}
    new_rows = []
    for increment in increments:
        sign = 1 if increment.amount > 0 else -1
        if increment.ref is None:
            new_rows.append({"project_id": project_id, "ref": None, "sign": sign, "amount": increment.amount})
            continue
        if (increment.ref, sign) in tracked:
            continue  # counted already
        opposing = (increment.ref, -sign) in tracked
        counts = (sign > 0 and not opposing) or (sign < 0 and opposing)
        tracked.add((increment.ref, sign))
        new_rows.append(
            {"project_id": project_id, "ref": increment.ref, "sign": sign, "amount": increment.amount if counts else 0}
        )
    if not new_rows:
        return
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite  # type: ignore[union-attr]
    statement = dialect.insert(CounterRefreshIncrement).values(new_rows).on_conflict_do_nothing()
    await session.exec(statement)  # type: ignore[call-overload]


async def bulk_increment_build_artifacts_size(
    session: AsyncSession, project_id: int, increments: Sequence[Increment]
) -> None:
    """``ProjectStatistics.bulk_increment_statistic(project, :build_artifacts_size, increments)``."""
    await bulk_increment_projects(session, {project_id: increments})


async def bulk_increment_projects(session: AsyncSession, increments: Mapping[int, Sequence[Increment]]) -> None:
    """``bulk_increment_statistic`` for each project (a batch of artifacts spans several): one
    read of the refresh states and one UPDATE sent for every project's sum, not two statements
    a project."""
    wanted = {pid: [i for i in incs if i.amount] for pid, incs in increments.items()}
    wanted = {pid: incs for pid, incs in wanted.items() if incs}
    if not wanted:
        return
    in_refresh = await refreshing(session, wanted)
    for project_id in sorted(in_refresh):
        await _increment_refresh(session, project_id, wanted[project_id])
    await _apply(session, {pid: sum(i.amount for i in incs) for pid, incs in wanted.items() if pid not in in_refresh})


async def increment_build_artifacts_size(
    session: AsyncSession, project_id: int, delta: int, ref: int | None = None
) -> None:
    """``increment_statistic(:build_artifacts_size, Increment(amount: delta, ref: ref))``."""
    await bulk_increment_build_artifacts_size(session, project_id, [Increment(delta, ref)])


async def initiate_refresh(session: AsyncSession, project_id: int) -> None:
    """``initiate_refresh!(:build_artifacts_size)``: the column reads 0 (``storage_size``, the sum
    of the parts, loses it too) and what an earlier refresh left is forgotten."""
    await session.exec(  # type: ignore[call-overload]
        update(ProjectStatistics)
        .where(ProjectStatistics.project_id == project_id)
        .values(
            storage_size=ProjectStatistics.storage_size - ProjectStatistics.build_artifacts_size,
            build_artifacts_size=0,
        )
    )
    await session.exec(delete(CounterRefreshIncrement).where(col(CounterRefreshIncrement.project_id) == project_id))  # type: ignore[call-overload]


async def refresh_amount(session: AsyncSession, project_id: int) -> int:
    """``<key>:refresh``: what the refresh has summed so far."""
    total = await session.exec(
        select(func.coalesce(func.sum(CounterRefreshIncrement.amount), 0)).where(
            CounterRefreshIncrement.project_id == project_id
        )
    )
    return int(total.one())


async def finalize_refresh(session: AsyncSession, project_id: int) -> int:
    """``finalize_refresh(:build_artifacts_size)``: the refresh sum moves into the counter (and,
    with no flush to wait for here, into the column); the tracking rows go
    (``Counters::CleanupRefreshWorker``). Answers the sum."""
    amount = await refresh_amount(session, project_id)
    await _apply(session, {project_id: amount})
    await session.exec(delete(CounterRefreshIncrement).where(col(CounterRefreshIncrement.project_id) == project_id))  # type: ignore[call-overload]
    return amount
