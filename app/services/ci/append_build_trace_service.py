"""``Ci::AppendBuildTraceService``: a runner's ``PATCH /jobs/:id/trace`` appends to the live trace
at the offset it names (``Content-Range``), or learns where the trace ends (416)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.lib.ci_trace import trace_size
from app.models import Build, BuildTraceChunk


@dataclass(frozen=True)
class AppendResult:
    status: int  # 202, or 416 when the patch does not start where the trace ends
    size: int  # the trace's size afterwards


def parse_range_start(content_range: str) -> int:
    """Ruby's ``"<start>-<end>".split('-')[0].to_i``: leading digits, else 0."""
    digits = ""
    for ch in content_range.split("-", 1)[0].strip():
        if not ch.isdigit():
            break
        digits += ch
    return int(digits) if digits else 0


def mask_token(data: bytes, token: str | None) -> bytes:
    """``Ci::Build#hide_secrets``: the job's own token becomes x's of the same length."""
    if not token:
        return data
    raw = token.encode()
    return data.replace(raw, b"x" * len(raw))


async def append(session: AsyncSession, job: Build, data: bytes, start: int) -> AppendResult:
    """Append when ``start`` is exactly the current size; otherwise nothing is written and the
    current size is returned with 416 (gaps and overlaps alike), so the runner resumes there.
    A rollback expires ``job``: only the plain values taken first are read afterwards."""
    job_id, partition_id = job.id, job.partition_id
    assert job_id is not None
    data = mask_token(data, job.token)
    for _ in range(3):
        query = select(BuildTraceChunk).where(BuildTraceChunk.build_id == job_id)
        chunk = (await session.exec(query.execution_options(populate_existing=True))).first()
        current = len(chunk.raw_data) if chunk is not None else 0
        if start != current:
            await session.rollback()
            return AppendResult(416, current)
        if not data:
            await session.rollback()
            return AppendResult(202, current)
        if chunk is None:
            session.add(BuildTraceChunk(build_id=job_id, partition_id=partition_id, raw_data=data))
            try:
                await session.commit()
            except IntegrityError:  # a concurrent first patch won; look again
                await session.rollback()
                continue
            return AppendResult(202, len(data))
        new = chunk.raw_data + data
        result = await session.exec(  # type: ignore[call-overload]
            update(BuildTraceChunk)
            .where(col(BuildTraceChunk.id) == chunk.id, func.length(BuildTraceChunk.raw_data) == current)
            .values(raw_data=new, lock_version=BuildTraceChunk.lock_version + 1)
        )
        await session.commit()
        if result.rowcount == 1:
            return AppendResult(202, len(new))
    return AppendResult(416, await trace_size(session, job_id))
