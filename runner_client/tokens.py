"""gitlab-runner's ShortenToken: how much of a token a log line may show.

Three rules existed; each runner profile picks the one its version used (runner_facts.md §1).
"""

from __future__ import annotations

import re
import string
from enum import Enum

_CURRENT_PREFIX = re.compile(r"^(?:glrt-(?:t[123]_)?|t[123]_|glrtr-|glcbt-|GR[0-9A-F]{7})")


class TokenRule(Enum):
    V17_8 = "17.8"  # first 8 characters; glrt- and GR<hex> tokens get more
    V17_9 = "17.9"  # as 17.8, plus glcbt- job tokens skip their prefix
    V18_2 = "18.2"  # strip the known prefixes, keep 9 characters


def _legacy(token: str, job_prefix: bool) -> str:
    if token.startswith("glrt-"):
        return token[5:14]
    if job_prefix and token.startswith("glcbt-"):
        return token[6:15]
    if token[:2] == "GR" and len(token) >= 17 and all(c in string.hexdigits for c in token[2:9]):
        return token[:17]
    return token[:8]


def shorten_token(token: str, rule: TokenRule = TokenRule.V18_2) -> str:
    """The part of ``token`` gitlab-runner logs; tokens under 8 characters are logged whole."""
    if len(token) < 8:
        return token
    if rule is TokenRule.V18_2:
        return _CURRENT_PREFIX.sub("", token, count=1)[:9]
    return _legacy(token, job_prefix=rule is TokenRule.V17_9)


def token_problem(flag: str, token: str) -> str | None:
    """Why ``token`` cannot be one (GitLab's tokens are ASCII), naming the flag; None if it can.

    gitlab-runner would send the bytes and be refused; an HTTP header here must be ASCII, and a
    non-ASCII token is nearly always a placeholder left in (the docs' ``glcbt-…``).
    """
    odd = next((c for c in token if not c.isascii() or not c.isprintable()), None)
    if odd is None:
        return None
    return f"{flag}: {token!r} is not a token: it contains {odd!r} (a placeholder left in?)"
