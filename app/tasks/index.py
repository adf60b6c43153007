"""Every rake task mockcoord has, by name (what ``rake -T`` lists)."""

from __future__ import annotations

from app.tasks.gitlab import cleanup_tasks, refresh_project_statistics_build_artifacts_size
from app.tasks.rake import TaskDefinition

TASKS: dict[str, TaskDefinition] = {
    t.name: t for t in (*cleanup_tasks.TASKS, refresh_project_statistics_build_artifacts_size.DEFINITION)
}
