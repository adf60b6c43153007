"""Rails' side of the Workhorse contract: the shared secret and the JWTs it signs.

GitLab's secret file holds base64 of 32 random bytes; both sides decode it and use
the bytes as the HS256 key (``Gitlab::Workhorse.secret``).
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from pathlib import Path
from typing import Any

import jwt

INTERNAL_API_CONTENT_TYPE = "application/vnd.gitlab-workhorse+json"
INTERNAL_API_REQUEST_HEADER = "Gitlab-Workhorse-Api-Request"
SEND_DATA_HEADER = "Gitlab-Workhorse-Send-Data"
MULTIPART_FIELDS_HEADER = "Gitlab-Workhorse-Multipart-Fields"
ISSUER = "gitlab-workhorse"
SECRET_LENGTH = 32
API_REQUEST_JWT_VALIDITY = 90


class SecretError(Exception):
    pass


def ensure_secret(path: Path) -> bytes:
    """Read the secret, writing a new one (mode 0600) the first time, as GitLab's installer does."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(secrets.token_bytes(SECRET_LENGTH)).decode())
    return read_secret(path)


def read_secret(path: Path) -> bytes:
    raw = base64.b64decode(path.read_text().strip(), validate=True)
    if len(raw) != SECRET_LENGTH:
        raise SecretError(f"{path} does not contain {SECRET_LENGTH} bytes")
    return raw


def verify_api_request(token: str | None, secret: bytes) -> dict[str, Any]:
    """``Gitlab::Workhorse.verify_api_request!``: issuer and an ``iat`` no older than 90 s."""
    if not token:
        raise jwt.InvalidTokenError("missing Gitlab-Workhorse-Api-Request")
    claims = jwt.decode(token, secret, algorithms=["HS256"], issuer=ISSUER, options={"require": ["iss", "iat"]})
    if claims["iat"] < time.time() - API_REQUEST_JWT_VALIDITY:
        raise jwt.InvalidTokenError("Gitlab-Workhorse-Api-Request is too old")
    return claims


def decode_with_issuer(token: str, secret: bytes) -> dict[str, Any]:
    """Upload-finalize tokens carry no ``iat``; only the issuer is checked."""
    return jwt.decode(token, secret, algorithms=["HS256"], issuer=ISSUER, options={"require": ["iss"]})


def sign(claims: dict[str, Any], secret: bytes) -> str:
    """Used by tests and benchmarks that play Workhorse without running it."""
    return jwt.encode({"iss": ISSUER, **claims}, secret, algorithm="HS256")
