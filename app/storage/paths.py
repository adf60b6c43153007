"""GitLab's object paths for job artifacts (``JobArtifactUploader``)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from functools import lru_cache


def disk_hash(project_id: int) -> str:
    """``Storage::Hashed#disk_path`` base: SHA256 hex of the project id."""
    return hashlib.sha256(str(project_id).encode()).hexdigest()


@lru_cache(maxsize=4096)  # a housekeeping batch computes it for each of its rows' few projects
def hashed_dir(project_id: int) -> str:
    h = disk_hash(project_id)
    return f"{h[0:2]}/{h[2:4]}/{h}"


def hashed_store_dir(project_id: int, created_at: datetime, job_id: int, artifact_id: int) -> str:
    """``h[0..1]/h[2..3]/h/YYYY_MM_DD/<job_id>/<artifact_id>``."""
    return f"{hashed_dir(project_id)}/{created_at:%Y_%m_%d}/{job_id}/{artifact_id}"


def final_path(project_id: int) -> str:
    """A fresh ``@final`` path (GitLab 16.1+): ``h[0..1]/h[2..3]/h/@final/r[0..1]/r[2..3]/r[4..]``."""
    r = hashlib.sha256(str(uuid.uuid4()).encode()).hexdigest()
    return f"{hashed_dir(project_id)}/@final/{r[0:2]}/{r[2:4]}/{r[4:]}"


def is_final_path(key: str) -> bool:
    return "/@final/" in key
