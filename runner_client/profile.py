"""Which gitlab-runner release to behave like: log fields, token masking, transport retry,
download flow. Two presets, 17.x and 19.x (runner_facts.md §0-2 say where they differ)."""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass, replace

import httpx

from runner_client.tokens import TokenRule


@dataclass(frozen=True)
class RunnerProfile:
    version: str
    #: ``responseStatus="201 Created"`` up to 18.11; 19.x logs labkit's ``status=201``.
    status_field: str
    token_rule: TokenRule
    #: v18.3+: ``X-Request-Id`` on every request and ``correlation_id`` in log lines.
    request_id: bool
    #: v18.3+: 408/429/5xx retried by the transport; before, only 429 with ``RateLimit-ResetTime``.
    retry_server_errors: bool
    #: v19.0+: the first direct download request does not follow redirects (then asks again).
    direct_flow: bool
    #: v19.3+: the uploader's retry error names the failure instead of ``invalid argument``.
    descriptive_retry_error: bool

    def status_value(self, res: httpx.Response) -> str | int:
        return res.status_code if self.status_field == "status" else status_line(res)

    @property
    def user_agent(self) -> str:
        py = f"python{platform.python_version()}"
        return f"gitlab-runner {self.version} (runner_client; {py}; {sys.platform}/{platform.machine()})"

    def with_download_flow(self, flow: str | None) -> RunnerProfile:
        """``flow``: ``direct`` (19.x) or ``classic`` (redirect-following, every release before)."""
        if flow is None:
            return self
        if flow not in ("direct", "classic"):
            raise ValueError(f"download flow must be 'direct' or 'classic', not {flow!r}")
        return replace(self, direct_flow=flow == "direct")


def status_line(res: httpx.Response) -> str:
    """Go's ``res.Status``: the code and the reason phrase as the server sent it."""
    return f"{res.status_code} {res.reason_phrase}".rstrip()


PROFILES: dict[str, RunnerProfile] = {
    "17": RunnerProfile(
        version="17.11.0",
        status_field="responseStatus",
        token_rule=TokenRule.V17_9,
        request_id=False,
        retry_server_errors=False,
        direct_flow=False,
        descriptive_retry_error=False,
    ),
    "19": RunnerProfile(
        version="19.4.0",
        status_field="status",
        token_rule=TokenRule.V18_2,
        request_id=True,
        retry_server_errors=True,
        direct_flow=True,
        descriptive_retry_error=True,
    ),
}


def get_profile(name: str | RunnerProfile) -> RunnerProfile:
    if isinstance(name, RunnerProfile):
        return name
    try:
        return PROFILES[name.split(".")[0]]
    except KeyError:
        raise ValueError(f"unknown runner version {name!r}; choose from {sorted(PROFILES)}") from None
