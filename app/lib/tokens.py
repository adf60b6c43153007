"""Token formats with GitLab's prefixes, so ShortenToken-style masking behaves as on GitLab,
and the one way a secret is compared."""

from __future__ import annotations

import hmac
import secrets


def secure_compare(given: str, expected: str) -> bool:
    """``ActiveSupport::SecurityUtils.secure_compare``: time independent of where they differ.

    Compared as UTF-8 bytes: ``hmac.compare_digest`` refuses non-ASCII ``str`` (a 500 for a
    client that sends one).
    """
    return hmac.compare_digest(given.encode(), expected.encode())


def personal_access_token() -> str:
    return "glpat-" + secrets.token_urlsafe(15)


def job_token() -> str:
    return "glcbt-" + secrets.token_urlsafe(18)


def runner_token() -> str:
    return "glrt-" + secrets.token_urlsafe(15)
