"""Prometheus metrics Rails and its Sidekiq workers count (``Gitlab::Metrics``), by GitLab's names.

Counters live in the process that counts; ``/-/metrics`` adds gauges read from the database
at scrape time (artifacts by state, the deleted-object queue), which every process shares.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

destroyed_job_artifacts_count = Counter(
    "destroyed_job_artifacts_count",
    "Job artifacts DestroyBatchService turned into deleted objects",
    registry=REGISTRY,
)
destroyed_job_artifacts_bytes = Counter(
    "destroyed_job_artifacts_bytes",
    "Bytes of the job artifacts DestroyBatchService destroyed",
    registry=REGISTRY,
)
deleted_objects_removed = Counter(
    "ci_deleted_objects_removed",
    "Stored files Ci::DeleteObjectsService removed (or found already gone)",
    registry=REGISTRY,
)
deleted_objects_failed = Counter(
    "ci_deleted_objects_failed",
    "Removals that failed and wait RETRY_IN for another try",
    registry=REGISTRY,
)
sidekiq_jobs_completion_seconds = Histogram(
    "sidekiq_jobs_completion_seconds",
    "Seconds a Sidekiq job ran",
    ["worker", "job_status"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 15, 30, 60, 150, 300, 600),
    registry=REGISTRY,
)
