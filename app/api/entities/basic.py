"""The small API entities both the jobs API and the pipelines API nest: ``UserBasic`` and
``Ci::PipelineBasic``, keys in GitLab's order."""

from __future__ import annotations

import hashlib
from typing import Any

from app import clock
from app.models import Pipeline, User


def user_basic(user: User | None, base_url: str) -> dict[str, Any] | None:
    """``API::Entities::UserBasic``."""
    if user is None:
        return None
    email_hash = hashlib.sha256(user.email.strip().lower().encode()).hexdigest()
    return {
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "state": user.state,
        "locked": False,
        "avatar_url": f"https://www.gravatar.com/avatar/{email_hash}?s=80&d=identicon",
        "web_url": f"{base_url}/{user.username}",
    }


def pipeline_basic(pipeline: Pipeline, base_url: str, project_full_path: str) -> dict[str, Any]:
    """``API::Entities::Ci::PipelineBasic``."""
    return {
        "id": pipeline.id,
        "iid": pipeline.iid,
        "project_id": pipeline.project_id,
        "sha": pipeline.sha,
        "ref": pipeline.ref,
        "status": pipeline.status,
        "source": pipeline.source,
        "created_at": clock.iso(pipeline.created_at),
        "updated_at": clock.iso(pipeline.updated_at),
        "web_url": f"{base_url}/{project_full_path}/-/pipelines/{pipeline.id}",
    }
