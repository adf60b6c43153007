"""``Feature.enabled?``: GitLab's feature flags, read from Flipper's ``feature_gates``.

A flag set by an administrator (a gate row, ``true`` or ``false``) wins; an unset flag has
the default of the release being imitated (``app.lib.gitlab_version``). Only the flags that
change artifact housekeeping are known; asking for another is a programming error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.lib import gitlab_version
from app.models import FeatureGate


def _from_15_3() -> bool:
    """MR 92931 ("Enable performant artifact expiration by default") flipped these in 15.3."""
    return gitlab_version.at_least(15, 3)


@dataclass(frozen=True)
class Definition:
    name: str
    default: Callable[[], bool]
    effect: str


DEFINITIONS: dict[str, Definition] = {
    d.name: d
    for d in (
        Definition(
            "ci_destroy_unlocked_job_artifacts",
            _from_15_3,
            "on: ExpireBuildArtifactsWorker selects by ci_job_artifacts.locked; off: the slow walk over every "
            "expired row, joined to the pipeline's lock",
        ),
        Definition(
            "ci_update_unlocked_job_artifacts",
            _from_15_3,
            "on: new artifacts copy the pipeline's locked value; off: they are written unknown (2)",
        ),
        Definition(
            "ci_job_artifacts_backlog_work",
            _from_15_3,
            "on: UpdateLockedUnknownArtifactsWorker works through expired unknown artifacts; off: it does nothing",
        ),
        Definition(
            "ci_detect_wrongly_expired_artifacts",
            lambda: False,
            "on (up to 15.x): DestroyBatchService spares artifacts whose expire_at looks wrongly set "
            "(21st-23rd of a month, on the hour, :30 or :45) and makes them permanent",
        ),
        Definition(
            "ci_artifact_fast_removal_large_loop_limit",
            lambda: False,
            "on (15.x): ExpireBuildArtifactsWorker's loop limit is 500 instead of 100",
        ),
        Definition(
            "ci_job_artifacts_backlog_large_loop_limit",
            lambda: False,
            "on: UpdateLockedUnknownArtifactsWorker's loop limit is 500 instead of 100 (50,000 a run)",
        ),
        Definition(
            "projects_build_artifacts_size_refresh",
            lambda: True,
            "ops flag (default UNVERIFIED; on here so the page's refresh task works): "
            "Projects::RefreshBuildArtifactsSizeStatisticsWorker runs 1 job at a time; with the two below "
            "also off, 0: queued refreshes never run",
        ),
        Definition(
            "projects_build_artifacts_size_refresh_medium",
            lambda: False,
            "ops flag: the refresh worker runs 3 jobs at a time",
        ),
        Definition(
            "projects_build_artifacts_size_refresh_high",
            lambda: False,
            "ops flag: the refresh worker runs 5 jobs at a time",
        ),
    )
}


class UnknownFeatureError(KeyError):
    pass


def definition(name: str) -> Definition:
    try:
        return DEFINITIONS[name]
    except KeyError:
        raise UnknownFeatureError(name) from None


async def gate(session: AsyncSession, name: str) -> bool | None:
    """The administrator's choice, or ``None`` when the flag was never set."""
    value = (
        await session.exec(select(FeatureGate.value).where(FeatureGate.feature_key == name).order_by(FeatureGate.id))
    ).first()
    return None if value is None else value == "true"


async def enabled(session: AsyncSession, name: str) -> bool:
    chosen = await gate(session, name)
    return definition(name).default() if chosen is None else chosen
