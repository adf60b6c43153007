"""Where a ``JobArtifact``'s bytes live in the store, by GitLab's rules."""

from __future__ import annotations

import posixpath
from urllib.parse import quote

from app.models import JobArtifact
from app.storage.paths import hashed_store_dir

UNRESERVED = "!#$&+-.^_`|~"


def artifact_key(artifact: JobArtifact) -> str:
    """``file_final_path`` when the upload went straight to its ``@final`` place,
    else the hashed path ``h/h/h/YYYY_MM_DD/<job>/<artifact>/<file>``."""
    if artifact.file_final_path:
        return artifact.file_final_path
    assert artifact.id is not None and artifact.file
    return posixpath.join(
        hashed_store_dir(artifact.project_id, artifact.created_at, artifact.job_id, artifact.id), artifact.file
    )


def store_dir_and_file(artifact: JobArtifact) -> tuple[str, str]:
    """What ``Ci::DeletedObject`` records: dirname and basename of the key."""
    key = artifact_key(artifact)
    return posixpath.dirname(key), posixpath.basename(key)


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """``ActionDispatch::Http::ContentDisposition.format``: an ASCII fallback and RFC 5987."""
    ascii_name = "".join(c if 32 <= ord(c) < 127 else "?" for c in filename)
    ascii_name = ascii_name.replace("\\", "\\\\").replace('"', '\\"')
    return f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe=UNRESERVED)}"
