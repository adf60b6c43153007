"""The runner's job API client (network/gitlab.go): register, verify, request a job, update
it, append to its log. Same headers, bodies and answer handling as gitlab-runner, the same
transport retry as the artifact helpers (``runner_client.transport``), runner_facts.md §0 and §3.
"""

from __future__ import annotations

import asyncio
import json
import platform
import re
import secrets
import sys
from dataclasses import dataclass
from enum import Enum
from typing import Any

import httpx

from runner_client.connection import api_url
from runner_client.log import RunnerLog
from runner_client.profile import RunnerProfile, get_profile, status_line
from runner_client.responses import message_from_json
from runner_client.runner.config import RunnerEntry
from runner_client.tokens import shorten_token
from runner_client.transport import RetryRequester, Sleep, TransportError, go_duration

NAME = "gitlab-runner"
REVISION = "mockcoord"
DEFAULT_UPDATE_INTERVAL = 3.0  # common.DefaultUpdateInterval
MAX_UPDATE_INTERVAL = 15 * 60.0  # common.MaxUpdateInterval
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i386": "386", "i686": "386"}
# FeaturesInfo, in the struct's order. The network client, the shell executor and the bash
# shell each switch some on (getFeatures, executors/shell, shells/abstract.go GetFeatures).
_FEATURES = (
    "variables",
    "image",
    "services",
    "artifacts",
    "cache",
    "fallback_cache_keys",
    "shared",
    "upload_multiple_artifacts",
    "upload_raw_artifacts",
    "session",
    "terminal",
    "refspecs",
    "masking",
    "proxy",
    "raw_variables",
    "artifacts_exclude",
    "multi_build_steps",
    "trace_reset",
    "trace_checksum",
    "trace_size",
    "vault_secrets",
    "cancelable",
    "return_exit_code",
    "service_variables",
    "service_multiple_aliases",
    "image_executor_opts",
    "service_executor_opts",
    "cancel_gracefully",
    "native_steps_integration",
    "two_phase_job_commit",
    "job_inputs",
)
_NETWORK_FEATURES = {"trace_reset", "trace_checksum", "trace_size", "cancelable"}
_SHELL_EXECUTOR_FEATURES = {"variables", "shared"}
_BASH_FEATURES = {
    "artifacts",
    "upload_multiple_artifacts",
    "upload_raw_artifacts",
    "refspecs",
    "masking",
    "raw_variables",
    "artifacts_exclude",
    "multi_build_steps",
    "return_exit_code",
}
_RANGE = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


def architecture() -> str:
    machine = platform.machine().lower()
    return _ARCH.get(machine, machine)


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:2])


def runner_info(profile: RunnerProfile, executor: str = "", shell: str = "") -> dict[str, Any]:
    """``Info`` as ``getRunnerInfo`` fills it; registration sends it without an executor."""
    enabled = set(_NETWORK_FEATURES)
    if executor == "shell":
        enabled |= _SHELL_EXECUTOR_FEATURES | _BASH_FEATURES
        if version_tuple(profile.version) >= (18, 5):
            enabled.add("two_phase_job_commit")
    info: dict[str, Any] = {
        "name": NAME,
        "version": profile.version,
        "revision": REVISION,
        "platform": sys.platform,
        "architecture": architecture(),
    }
    if executor:
        info["executor"] = executor
    if shell:
        info["shell"] = shell
    info["features"] = {name: name in enabled for name in _FEATURES}
    info["config"] = {"gpus": ""}
    return info


class UpdateState(Enum):
    SUCCEEDED = "succeeded"
    ACCEPTED = "accepted, but not yet completed"  # 202: ask again after the interval
    TRACE_VALIDATION_FAILED = "trace validation failed"  # 412: send the whole log again
    ABORT = "abort"  # 403, 404, or the job failed/canceled server-side
    FAILED = "failed"


class PatchState(Enum):
    SUCCEEDED = "succeeded"
    NOT_FOUND = "not found"
    ABORT = "abort"
    RANGE_MISMATCH = "range mismatch"
    FAILED = "failed"


@dataclass(frozen=True)
class UpdateResult:
    state: UpdateState
    update_interval: float = 0  # from X-GitLab-Trace-Update-Interval; 0 = none given
    cancel_requested: bool = False


@dataclass(frozen=True)
class PatchResult:
    state: PatchState
    sent_offset: int
    update_interval: float = 0
    cancel_requested: bool = False


@dataclass(frozen=True)
class JobRequestResult:
    job: dict[str, Any] | None
    healthy: bool  # False for 403 and for no answer at all, as RequestJob reports


def _remote_interval(res: httpx.Response) -> float:
    value = res.headers.get("X-GitLab-Trace-Update-Interval", "")
    try:
        seconds = float(int(value))
    except ValueError:
        return 0
    return min(seconds, MAX_UPDATE_INTERVAL) if seconds > 0 else 0


def _remote_state(res: httpx.Response) -> str:
    return res.headers.get("Job-Status", "")


class JobsClient:
    """One coordinator connection for every runner of a config file."""

    def __init__(
        self,
        *,
        runner_version: str | RunnerProfile = "19",
        log: RunnerLog | None = None,
        sleep: Sleep = asyncio.sleep,
        timeout: float = 3600.0,
    ) -> None:
        self.profile = get_profile(runner_version)
        self.log = log or RunnerLog()
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=30.0), headers={"Accept-Encoding": "gzip"})
        for name in ("Accept", "Connection"):  # Go's client sends neither by itself
            self.http.headers.pop(name, None)
        self.requester = RetryRequester(
            self.http, self.log, retry_server_errors=self.profile.retry_server_errors, sleep=sleep
        )
        self.last_update: dict[str, str] = {}  # per runner token: X-GitLab-Last-Update

    async def aclose(self) -> None:
        await self.http.aclose()

    # --- plumbing ---------------------------------------------------------------------------------

    def _headers(self, token_header: str, token: str, *, json_body: bool, expect_json: bool) -> tuple[dict, str]:
        request_id = secrets.token_hex(16)
        headers = {"User-Agent": self.profile.user_agent, token_header: token}
        if self.profile.request_id:
            headers["X-Request-Id"] = request_id
        if json_body:
            headers["Content-Type"] = "application/json"
        if expect_json:
            headers["Accept"] = "application/json"
        return headers, request_id

    def _correlation(self, fields: dict[str, Any], res: httpx.Response | None, request_id: str) -> None:
        if self.profile.request_id:
            fields["correlation_id"] = (res.headers.get("X-Request-Id") if res is not None else None) or request_id

    async def _json_call(
        self,
        url: str,
        method: str,
        path: str,
        body: dict[str, Any],
        *,
        token_header: str,
        token: str,
        expect_json: bool,
    ) -> tuple[int, str, httpx.Response | None, Any, str]:
        """``doJSON``: the status (-1 when a 2xx is not the JSON asked for, -100 for no answer),
        the status text, the response (already read), its decoded body, the request id."""
        headers, request_id = self._headers(token_header, token, json_body=True, expect_json=expect_json)
        content = json.dumps(body, separators=(",", ":")).encode()
        full = api_url(url) + path

        def build() -> httpx.Request:
            return self.http.build_request(method, full, content=content, headers=headers)

        try:
            res = await self.requester.send(build)
        except TransportError as exc:
            return -100, str(exc), None, None, request_id
        try:
            await res.aread()
            text = await message_from_json(res)
        finally:
            await res.aclose()
        self._record_last_update(token, res)
        decoded: Any = None
        if 200 <= res.status_code < 300 and expect_json:
            ctype = res.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if ctype != "application/json":
                return -1, text, res, None, request_id
            try:
                decoded = res.json()
            except ValueError:
                return -1, text, res, None, request_id
        return res.status_code, text, res, decoded, request_id

    def _record_last_update(self, token: str, res: httpx.Response) -> None:
        value = res.headers.get("X-GitLab-Last-Update")
        if value:
            self.last_update[token] = value

    # --- runners ----------------------------------------------------------------------------------

    async def register(self, url: str, registration_token: str, parameters: dict[str, Any]) -> dict[str, Any] | None:
        """``POST /runners`` with a registration token: ``{id, token, token_expires_at}`` or None."""
        body = {**parameters, "info": runner_info(self.profile), "token": registration_token}
        code, text, res, decoded, rid = await self._json_call(
            url, "POST", "runners", body, token_header="RUNNER-TOKEN", token=registration_token, expect_json=True
        )
        fields: dict[str, Any] = {"runner": shorten_token(registration_token)}
        self._correlation(fields, res, rid)
        if code == 201 and isinstance(decoded, dict):
            self.log.info("Registering runner... succeeded", **fields)
            return decoded
        fields["status"] = text
        if code == 403:
            self.log.error("Registering runner... forbidden (check registration token)", **fields)
        elif code == -100:
            self.log.error("Registering runner... client error", **fields)
        else:
            self.log.error("Registering runner... failed", **fields)
        return None

    async def verify(self, url: str, token: str, system_id: str) -> dict[str, Any] | None:
        """``POST /runners/verify``: ``{id, token, token_expires_at}``, or None when the token is refused."""
        body = {"token": token, "system_id": system_id}
        code, text, res, decoded, rid = await self._json_call(
            url, "POST", "runners/verify", body, token_header="RUNNER-TOKEN", token=token, expect_json=True
        )
        fields: dict[str, Any] = {"runner": shorten_token(token)}
        self._correlation(fields, res, rid)
        created = token.startswith("glrt-")
        if code == 200 and isinstance(decoded, dict):
            self.log.info("Verifying runner... " + ("is valid" if created else "is alive"), **fields)
            return decoded
        if code == 403:
            if created:
                self.log.info("Verifying runner... is not valid", **fields)
            else:
                self.log.error("Verifying runner... is removed", status=text, **fields)
            return None
        self.log.error("Verifying runner... " + ("client error" if code == -100 else "failed"), status=text, **fields)
        return None

    # --- jobs -------------------------------------------------------------------------------------

    async def request_job(self, runner: RunnerEntry, system_id: str) -> JobRequestResult:
        body: dict[str, Any] = {
            "info": runner_info(self.profile, runner.executor, runner.shell_name),
            "token": runner.token,
            "system_id": system_id,
        }
        if self.last_update.get(runner.token):
            body["last_update"] = self.last_update[runner.token]
        code, text, res, decoded, rid = await self._json_call(
            runner.url, "POST", "jobs/request", body, token_header="RUNNER-TOKEN", token=runner.token, expect_json=True
        )
        fields: dict[str, Any] = {"runner": runner.short_token}
        self._correlation(fields, res, rid)
        if code == 201 and isinstance(decoded, dict):
            repo = str((decoded.get("git_info") or {}).get("repo_url") or "")
            self.log.info(
                "Checking for jobs... received", job=decoded.get("id"), repo_url=_clean_repo_url(repo), **fields
            )
            return JobRequestResult(decoded, True)
        if code == 204:
            self.log.debug("Checking for jobs... no content", **fields)
            return JobRequestResult(None, True)
        fields["status"] = text
        if code == 403:
            self.log.error("Checking for jobs... forbidden", **fields)
            return JobRequestResult(None, False)
        if code == 503:
            self.log.warning("Checking for jobs... GitLab instance currently unavailable", **fields)
            return JobRequestResult(None, True)
        if code == -100:
            self.log.error("Checking for jobs... client error", **fields)
            return JobRequestResult(None, False)
        self.log.warning("Checking for jobs... failed", **fields)
        return JobRequestResult(None, True)

    async def update_job(
        self,
        runner: RunnerEntry,
        job_id: int,
        job_token: str,
        state: str,
        *,
        failure_reason: str = "",
        exit_code: int = 0,
        checksum: str = "",
        bytesize: int = 0,
    ) -> UpdateResult:
        """``PUT /jobs/:id``: ``omitempty`` leaves out an empty reason, a zero exit code, empty output."""
        body: dict[str, Any] = {"info": runner_info(self.profile, runner.executor, runner.shell_name)}
        body["token"] = job_token
        body["state"] = state
        if failure_reason:
            body["failure_reason"] = failure_reason
        if checksum:
            body["checksum"] = checksum  # deprecated, still sent
        output = {k: v for k, v in (("checksum", checksum), ("bytesize", bytesize)) if v}
        body["output"] = output
        if exit_code:
            body["exit_code"] = exit_code
        fields: dict[str, Any] = {
            "bytesize": bytesize,
            "checksum": checksum,
            "job": job_id,
            "runner": runner.short_token,
        }
        self.log.info("Updating job...", **fields)
        code, text, res, _, rid = await self._json_call(
            runner.url, "PUT", f"jobs/{job_id}", body, token_header="JOB-TOKEN", token=job_token, expect_json=False
        )
        remote = _remote_state(res) if res is not None else ""
        interval = _remote_interval(res) if res is not None else 0
        fields.update({"code": code, "job-status": remote, "update-interval": go_duration(interval)})
        self._correlation(fields, res, rid)
        cancel = remote in ("canceling", "canceled")
        message = "Submitting job to coordinator..."
        if remote == "failed":
            self.log.warning(message + "job failed", status=text, **fields)
            return UpdateResult(UpdateState.ABORT, interval, cancel)
        if code == 200:
            self.log.info(message + "ok", **fields)
            return UpdateResult(UpdateState.SUCCEEDED, interval, cancel)
        if code == 202:
            self.log.info(message + "accepted, but not yet completed", **fields)
            return UpdateResult(UpdateState.ACCEPTED, interval, cancel)
        if code == 412:
            self.log.info(message + "trace validation failed", **fields)
            return UpdateResult(UpdateState.TRACE_VALIDATION_FAILED, interval, cancel)
        if code in (403, 404, -100):
            level = self.log.warning if code == 404 else self.log.error
            words = {403: "forbidden", 404: "not found", -100: "error"}[code]
            level(message + words, status=text, **fields)
            return UpdateResult(UpdateState.ABORT, interval, cancel)
        self.log.warning(message + "failed", status=text, **fields)
        return UpdateResult(UpdateState.FAILED, interval, cancel)

    async def patch_trace(
        self, runner: RunnerEntry, job_id: int, job_token: str, content: bytes, offset: int
    ) -> PatchResult:
        """``PATCH /jobs/:id/trace``: inclusive ``Content-Range: start-end``; a 416 gives the offset to resume from."""
        if not content:
            return PatchResult(PatchState.SUCCEEDED, offset)
        end = offset + len(content)
        content_range = f"{offset}-{end - 1}"
        headers, request_id = self._headers("JOB-TOKEN", job_token, json_body=False, expect_json=False)
        headers.update({"Content-Range": content_range, "Content-Type": "text/plain"})
        url = api_url(runner.url) + f"jobs/{job_id}/trace?debug_trace=false"

        def build() -> httpx.Request:
            return self.http.build_request("PATCH", url, content=content, headers=headers)

        base: dict[str, Any] = {"job": job_id, "runner": runner.short_token}
        try:
            res = await self.requester.send(build)
        except TransportError as exc:
            self.log.error("Appending trace to coordinator... error", str(exc), **base)
            return PatchResult(PatchState.FAILED, offset)
        await res.aclose()
        remote_range = res.headers.get("Range", "")
        remote = _remote_state(res)
        interval = _remote_interval(res)
        cancel = remote in ("canceling", "canceled")
        fields = {
            **base,
            "code": res.status_code,
            "job-log": remote_range,
            "job-status": remote,
            "sent-log": content_range,
            "status": status_line(res),
            "update-interval": go_duration(interval),
        }
        self._correlation(fields, res, request_id)
        message = "Appending trace to coordinator..."
        if remote in ("failed", "canceled"):
            self.log.warning(message + "job " + remote, **fields)
            return PatchResult(PatchState.ABORT, offset, interval, cancel)
        if res.status_code == 202:
            self.log.info(message + "ok", **fields)
            return PatchResult(PatchState.SUCCEEDED, end, interval, cancel)
        if res.status_code == 404:
            self.log.warning(message + "not-found", **fields)
            return PatchResult(PatchState.NOT_FOUND, offset, interval, cancel)
        if res.status_code == 403:
            self.log.warning(message + "forbidden", **fields)
            return PatchResult(PatchState.ABORT, offset, interval, cancel)
        if res.status_code == 416:
            self.log.warning(message + "range mismatch", **fields)
            match = _RANGE.match(remote_range)
            resume = int(match.group(2)) if match else 0
            return PatchResult(PatchState.RANGE_MISMATCH, resume, interval, cancel)
        self.log.warning(message + "failed", **fields)
        return PatchResult(PatchState.FAILED, offset, interval, cancel)


def _clean_repo_url(url: str) -> str:
    """``RepoCleanURL``: the repository URL without its credentials."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return url
    return str(parsed.copy_with(username=None, password=None)) if parsed.userinfo else url
