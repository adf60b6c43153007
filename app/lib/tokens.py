"""Token formats with GitLab's prefixes, so ShortenToken-style masking behaves as on GitLab."""

from __future__ import annotations

import secrets


def personal_access_token() -> str:
    return "glpat-" + secrets.token_urlsafe(15)


def job_token() -> str:
    return "glcbt-" + secrets.token_urlsafe(18)


def runner_token() -> str:
    return "glrt-" + secrets.token_urlsafe(15)
