"""What a rehearsal was asked to do, checked before anything starts: a bad option is one line
naming it (``OptionError``), never a traceback halfway through a population."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.config import Housekeeping
from app.lib import feature, gitlab_version

# ``--lifted``: GitLab's batch sizes a hundred times over (each pass moves 10,000 rows), runs as
# long as an hour. The loop limits stay: GitLab's runs never end on an empty batch, so a lifted
# loop limit would only make every idle run longer.
LIFTED: dict[str, Any] = {
    "expire_batch_size": 10_000,
    "unknown_batch_size": 10_000,
    "delete_objects_batch_size": 10_000,
    "loop_timeout_seconds": 3600,
    "lease_timeout_seconds": 3900,
}
ARTIFACTS_PER_JOB = 2  # archive (zip) and metadata (gzip), as an ``artifacts:`` job leaves them
JOBS_PER_PIPELINE = 5
MAX_ARTIFACTS = 100_000_000


class OptionError(ValueError):
    """A bad option: the message names it."""


@dataclass
class RehearsalOptions:
    artifacts: int = 100_000
    expired_share: float = 0.9
    locked_share: float = 0.0
    unknown_share: float = 0.0
    refs: int = 10
    projects: int = 10
    past_days: float = 180.0
    future_days: float = 30.0
    objects: int = 0
    storage: str = "local"
    days: float = 3.0
    gitlab_version: str = "newest"
    flags: dict[str, bool] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)
    lifted: bool = False
    run_idle: bool = False
    database_url: str | None = None
    replace: bool = False
    existing: bool = False
    out: Path = Path("rehearsal")

    @property
    def jobs(self) -> int:
        return math.ceil(self.artifacts / ARTIFACTS_PER_JOB)

    @property
    def pipelines(self) -> int:
        return math.ceil(self.jobs / JOBS_PER_PIPELINE)

    def housekeeping(self) -> Housekeeping:
        """GitLab's limits, lifted if asked, then the ``--limits`` given (those win)."""
        return Housekeeping(**{**(LIFTED if self.lifted else {}), **self.limits})

    def check(self) -> RehearsalOptions:
        if not 1 <= self.artifacts <= MAX_ARTIFACTS:
            raise OptionError(f"--artifacts {self.artifacts}: give 1 to {MAX_ARTIFACTS:,}")
        for name in ("expired_share", "locked_share", "unknown_share"):
            value = getattr(self, name)
            if not (0.0 <= value <= 1.0):
                raise OptionError(f"--{name.replace('_', '-')} {value}: a share is between 0 and 1")
        if self.projects < 1:
            raise OptionError(f"--projects {self.projects}: at least 1")
        if self.refs < 1:
            raise OptionError(f"--refs {self.refs}: at least 1 (the latest pipeline of each ref is kept locked)")
        if self.refs > self.pipelines:
            raise OptionError(
                f"--refs {self.refs}: more refs than the {self.pipelines:,} pipelines {self.artifacts:,} artifacts "
                f"make ({JOBS_PER_PIPELINE} jobs of {ARTIFACTS_PER_JOB} artifacts a pipeline)"
            )
        if self.past_days <= 0 or self.future_days <= 0:
            raise OptionError("--past-days and --future-days: more than 0")
        if not 0 <= self.objects <= self.artifacts:
            raise OptionError(f"--objects {self.objects}: between 0 and --artifacts ({self.artifacts:,})")
        if self.storage not in ("local", "s3"):
            raise OptionError(f"--storage {self.storage!r}: local or s3")
        if not (0 < self.days <= 366):
            raise OptionError(f"--days {self.days}: more than 0, at most 366")
        try:
            gitlab_version.parse(self.gitlab_version)
        except ValueError as exc:
            raise OptionError(f"--gitlab-version: {exc}") from None
        if self.existing and self.replace:
            raise OptionError("--existing and --replace: one or the other")
        if self.existing and not self.database_url:
            raise OptionError("--existing: give the --database-url of the copy to rehearse on")
        self.housekeeping_checked()
        if self.out.exists() and not self.out.is_dir():
            raise OptionError(f"--out {self.out}: not a directory")
        return self

    def housekeeping_checked(self) -> Housekeeping:
        known = set(Housekeeping.model_fields)
        if unknown := sorted(set(self.limits) - known):
            raise OptionError(f"--limits {unknown[0]}: not a housekeeping limit (known: {', '.join(sorted(known))})")
        try:
            return self.housekeeping()
        except ValidationError as exc:
            error = exc.errors()[0]
            name = ".".join(str(p) for p in error["loc"])
            raise OptionError(f"--limits {name}={error.get('input')!r}: {error['msg']}") from None


def parse_flags(values: list[str]) -> dict[str, bool]:
    """``name=true|false``, a flag ``app.lib.feature`` knows."""
    flags: dict[str, bool] = {}
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep or setting.lower() not in ("true", "false"):
            raise OptionError(f"--flag {value!r}: give NAME=true or NAME=false")
        if name not in feature.DEFINITIONS:
            raise OptionError(
                f"--flag {name}: not a known feature flag (known: {', '.join(sorted(feature.DEFINITIONS))})"
            )
        flags[name] = setting.lower() == "true"
    return flags


def parse_limits(values: list[str]) -> dict[str, Any]:
    """``key=value`` pairs of ``Settings.housekeeping``; values are numbers (checked by the model)."""
    limits: dict[str, Any] = {}
    for value in values:
        for pair in value.split(","):
            key, sep, number = pair.strip().partition("=")
            if not sep or not key:
                raise OptionError(f"--limits {pair!r}: give KEY=VALUE")
            try:
                limits[key] = int(number)
            except ValueError:
                try:
                    limits[key] = float(number)
                except ValueError:
                    raise OptionError(f"--limits {key}={number!r}: not a number") from None
    return limits
