"""``Ci::ResetSkippedJobsService``: after a retry, the skipped jobs that depend on the retried ones
are decided again."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models import Build, BuildNeed, BuildStatus, SchedulingType, latest


async def reset_skipped(session: AsyncSession, pipeline_id: int, retried: Sequence[Build]) -> None:
    """``Ci::ResetSkippedJobsService``: skipped jobs after the retried ones (later stages, or
    needing them) go back to ``created`` so processing decides them again."""
    skipped = (
        await session.exec(
            select(Build).where(Build.commit_id == pipeline_id, Build.status == BuildStatus.skipped, latest())
        )
    ).all()
    if not skipped:
        return
    dag = [j.id for j in skipped if j.scheduling_type == SchedulingType.dag]
    needs: dict[int, set[str]] = {}
    if dag:
        for need in (await session.exec(select(BuildNeed).where(col(BuildNeed.build_id).in_(dag)))).all():
            needs.setdefault(need.build_id, set()).add(need.name)
    first_stage = min(j.stage_idx for j in retried)
    names = {j.name for j in retried}
    for job in skipped:
        after = bool(needs.get(job.id, set()) & names) if job.id in needs else job.stage_idx > first_stage  # type: ignore[arg-type]
        if after:
            job.status = BuildStatus.created
            session.add(job)
