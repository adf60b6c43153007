"""``Gitlab::Ci::Status::Composite``: one status for a set of jobs (a stage, a pipeline, the
jobs before a job or the jobs it needs). The order of the checks is GitLab's and matters."""

from __future__ import annotations

from collections.abc import Iterable

PASSED_WITH_WARNINGS = {"failed", "canceled"}  # Ci::HasStatus::PASSED_WITH_WARNINGS_STATUSES
IGNORED = {"manual"}  # Ci::HasStatus::IGNORED_STATUSES


class Composite:
    def __init__(self, jobs: Iterable[tuple[str, bool]], dag: bool = False) -> None:
        """``jobs``: (status, allow_failure) pairs. An allowed failure counts as
        ``success_with_warnings``, a manual job that may fail as ``ignored``."""
        self.dag = dag
        self.set: set[str] = set()
        for status, allow_failure in jobs:
            if allow_failure and status in PASSED_WITH_WARNINGS:
                self.set.add("success_with_warnings")
            elif allow_failure and status in IGNORED:
                self.set.add("ignored")
            else:
                self.set.add(status)

    @property
    def warnings(self) -> bool:
        return "success_with_warnings" in self.set

    def _only(self, *names: str) -> bool:
        return bool(self.set) and self.set <= set(names)

    def _any(self, *names: str) -> bool:
        return bool(self.set & set(names))

    @property
    def status(self) -> str | None:
        if not self.set:
            return None
        if self.dag and self._any("skipped", "ignored"):
            return "skipped"  # a need that does not run at all skips the job
        ladder = [
            (self._only("skipped", "ignored"), "skipped"),
            (self._only("success", "skipped", "success_with_warnings", "ignored"), "success"),
            (self._only("created", "success_with_warnings", "ignored"), "created"),
            (self._only("preparing", "success_with_warnings", "ignored"), "preparing"),
            (self._only("canceled", "success", "skipped", "success_with_warnings", "ignored"), "canceled"),
            (self._only("pending", "created", "skipped", "success_with_warnings", "ignored"), "pending"),
            (self._any("running", "pending"), "running"),
            (self._any("waiting_for_resource"), "waiting_for_resource"),
            (self._any("waiting_for_callback"), "waiting_for_callback"),
            (self._any("manual"), "manual"),
            (self._any("scheduled"), "scheduled"),
            (self._any("preparing"), "preparing"),
            (self._any("created"), "running"),
            (self._any("canceling"), "canceling"),
        ]
        return next((status for matched, status in ladder if matched), "failed")
