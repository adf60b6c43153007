"""The shared Workhorse secret and the JWTs Workhorse signs with it (HS256)."""

import base64
import time
from pathlib import Path
from typing import Any

import jwt

ISSUER = "gitlab-workhorse"
API_REQUEST_HEADER = "Gitlab-Workhorse-Api-Request"


def load_secret(path: Path) -> bytes:
    """Decode GitLab's secret file format: base64 text of exactly 32 bytes."""
    key = base64.b64decode(path.read_text().strip())
    if len(key) != 32:
        raise ValueError(f"{path}: expected 32 bytes after base64 decoding, got {len(key)}")
    return key


def sign(key: bytes, claims: dict[str, Any]) -> str:
    """Sign ``claims`` with the issuer Rails expects."""
    return jwt.encode({**claims, "iss": ISSUER}, key, algorithm="HS256")


def api_request_token(key: bytes) -> str:
    """Token for Gitlab-Workhorse-Api-Request; Rails rejects it once iat is 90 s old."""
    return sign(key, {"iat": int(time.time())})
