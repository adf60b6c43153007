"""Where GitLab finds credentials on a request (``Gitlab::Auth::AuthFinders``)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from starlette.requests import Request

JOB_TOKEN_HEADER = "job-token"
PRIVATE_TOKEN_HEADER = "private-token"
CI_USERNAME = "gitlab-ci-token"


@dataclass(frozen=True)
class Credentials:
    job_token: str | None = None
    personal_access_token: str | None = None


def token_digest(token: str) -> str:
    """PATs are stored as digests, as GitLab's ``token_digest`` column."""
    return hashlib.sha256(token.encode()).hexdigest()


def basic_auth(request: Request) -> tuple[str, str] | None:
    """``Authorization: Basic`` as (login, password); None when absent or undecodable."""
    header = request.headers.get("authorization", "")
    if header[:6].lower() != "basic ":
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def runner_job_token(request: Request) -> str:
    """The runner helper's ``job_token``: ``token`` param, else the ``JOB-TOKEN`` header."""
    return request.query_params.get("token") or request.headers.get(JOB_TOKEN_HEADER) or ""


def credentials(request: Request) -> Credentials:
    """Job token from ``job_token``/``token`` params, ``JOB-TOKEN`` (any case) or basic auth
    ``gitlab-ci-token:<token>``; personal access token from ``PRIVATE-TOKEN``,
    ``private_token`` or ``Authorization: Bearer``."""
    q = request.query_params
    job = q.get("job_token") or request.headers.get(JOB_TOKEN_HEADER) or q.get("token")
    basic = basic_auth(request)
    if not job and basic and basic[0] == CI_USERNAME:
        job = basic[1]
    pat = request.headers.get(PRIVATE_TOKEN_HEADER) or q.get("private_token")
    auth = request.headers.get("authorization", "")
    if not pat and auth[:7].lower() == "bearer ":
        pat = auth[7:].strip()
    return Credentials(job_token=job or None, personal_access_token=pat or None)
