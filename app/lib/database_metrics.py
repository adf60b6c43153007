"""Gauges read from the database when ``/-/metrics`` is scraped: the job artifacts by lock state
and store, the expired ones, the deleted-object queue.

GitLab has no such gauges in Rails (gitlab-exporter's database probe is the nearest thing);
they are here so a backlog's drain can be watched from outside. Every process sharing the
database reports the same values; names are ``mockcoord_``-prefixed so no one takes them for
GitLab's. Two aggregate queries, whatever the table size.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func
from sqlmodel import col, select

from app import clock
from app.db import Database
from app.lib.metrics import REGISTRY
from app.models import ArtifactLocked, DeletedObject, FileStore, JobArtifact

FILE_STORES = {FileStore.LOCAL: "local", FileStore.REMOTE: "object_storage"}


async def families(db: Database, now: datetime | None = None) -> list[Metric]:
    now = now or clock.now()
    expired = col(JobArtifact.expire_at) < now
    async with db.session() as session:
        rows = (
            await session.exec(
                select(  # type: ignore[call-overload]
                    JobArtifact.locked,
                    JobArtifact.file_store,
                    func.count(),
                    func.coalesce(func.sum(JobArtifact.size), 0),
                    func.coalesce(func.sum(case((expired, 1), else_=0)), 0),
                ).group_by(JobArtifact.locked, JobArtifact.file_store)
            )
        ).all()
        queue, ready, oldest = (
            await session.exec(
                select(  # type: ignore[call-overload]
                    func.count(),
                    func.coalesce(func.sum(case((col(DeletedObject.pick_up_at) < now, 1), else_=0)), 0),
                    func.min(DeletedObject.pick_up_at),
                )
            )
        ).one()
    found = {(locked, store): (int(n), int(size), int(exp)) for locked, store, n, size, exp in rows}
    artifacts = GaugeMetricFamily(
        "mockcoord_job_artifacts", "Job artifact rows by locked state and file store", labels=["locked", "file_store"]
    )
    artifact_bytes = GaugeMetricFamily(
        "mockcoord_job_artifacts_bytes",
        "Bytes of job artifacts by locked state and file store",
        labels=["locked", "file_store"],
    )
    expired_family = GaugeMetricFamily(
        "mockcoord_job_artifacts_expired",
        "Job artifacts whose expire_at is past (by the mock clock), by locked state",
        labels=["locked"],
    )
    for locked in ArtifactLocked:
        expired_count = 0
        for store, store_name in FILE_STORES.items():
            n, size, exp = found.get((int(locked), int(store)), (0, 0, 0))
            artifacts.add_metric([locked.name, store_name], n)
            artifact_bytes.add_metric([locked.name, store_name], size)
            expired_count += exp
        expired_family.add_metric([locked.name], expired_count)
    oldest_age = GaugeMetricFamily(
        "mockcoord_ci_deleted_objects_oldest_pick_up_at_age_seconds",
        "Seconds since the earliest pick_up_at in the deleted-object queue (negative: not due yet); "
        "absent when the queue is empty",
    )
    if oldest is not None:
        oldest_age.add_metric([], (now - oldest).total_seconds())
    return [
        artifacts,
        artifact_bytes,
        expired_family,
        GaugeMetricFamily("mockcoord_ci_deleted_objects", "Rows in ci_deleted_objects", value=int(queue)),
        GaugeMetricFamily(
            "mockcoord_ci_deleted_objects_ready",
            "Deleted objects whose pick_up_at is past (by the mock clock): ready for removal",
            value=int(ready),
        ),
        oldest_age,
        GaugeMetricFamily(
            "mockcoord_clock_offset_seconds",
            "How far the mock clock is moved from real time",
            value=clock.offset().total_seconds(),
        ),
    ]


class _Snapshot(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics


async def exposition(db: Database) -> bytes:
    """The process's counters (``app.lib.metrics.REGISTRY``) and the database's gauges, in
    Prometheus' text format."""
    snapshot = CollectorRegistry(auto_describe=False)
    snapshot.register(_Snapshot(await families(db)))
    return generate_latest(REGISTRY) + generate_latest(snapshot)
