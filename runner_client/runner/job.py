"""One job's life on the runner (common/build.go ``Build.Run``): the stages in gitlab-runner's
order, each in a collapsible trace section, then the final state.

prepare executor -> prepare script -> get sources -> download artifacts -> step_script ->
after_script -> upload artifacts (for a successful or a failed job) -> cleanup.

Script stages run in bash (``shell.py``); artifacts are downloaded and uploaded in-process
with ``ArtifactsClient``, whose log lines go into the job log exactly where the helper's
output would be.
"""

from __future__ import annotations

import asyncio
import io
import re
import shlex
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from runner_client.archive import ArchiveError
from runner_client.client import ArtifactsClient
from runner_client.log import RunnerLog
from runner_client.responses import ArtifactsError
from runner_client.runner.config import RunnerEntry
from runner_client.runner.masking import Masker
from runner_client.runner.network import NAME, REVISION, JobsClient, UpdateState, architecture, version_tuple
from runner_client.runner.shell import (
    BOLD_CYAN,
    BOLD_GREEN,
    BOLD_RED,
    CLEAR,
    RESET,
    YELLOW,
    BashScript,
    Variable,
    run_script,
)
from runner_client.runner.trace import JobTrace
from runner_client.transport import go_duration

DEFAULT_TIMEOUT = 7200  # common.DefaultTimeout: runner_info.timeout 0 means this
AFTER_SCRIPT_TIMEOUT = 300.0  # common.AfterScriptTimeout
ALWAYS_SUPPORTED_REASONS = ("script_failure", "runner_system_failure", "job_execution_timeout")
TIMEOUT_DOCS = "https://docs.gitlab.com/ci/runners/configure_runners/#set-script-and-after_script-timeouts"
_GO_DURATION = re.compile(r"^(\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_VAR_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*)|(\$))")


class BuildError(Exception):
    """``common.BuildError``: the job failed for ``failure_reason``; ``exit_code`` for a script."""

    def __init__(self, message: str, failure_reason: str = "script_failure", exit_code: int = 0) -> None:
        super().__init__(message)
        self.failure_reason, self.exit_code = failure_reason, exit_code


class SystemFailure(Exception):
    """Not the job's fault (``Job failed (system failure)``): runner_system_failure."""


@dataclass(frozen=True)
class JobOutcome:
    job_id: int
    state: str  # success, failed, or "aborted" when the coordinator took the job back
    failure_reason: str = ""
    exit_code: int = 0
    message: str = ""


def parse_go_duration(text: str) -> float | None:
    text = text.strip()
    if not text or not _GO_DURATION.match(text):
        return None
    return sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(text))


def expand(value: str, lookup: dict[str, str]) -> str:
    """``os.Expand`` over the job's variables: ``$NAME`` and ``${NAME}`` (unknown ones are empty), ``$$`` is ``$``."""
    return _VAR_REF.sub(lambda m: "$" if m.group(3) else lookup.get(m.group(1) or m.group(2), ""), value)


class _TraceText(io.TextIOBase):
    """Lets a ``RunnerLog`` (the artifact helpers' log) write into the job log."""

    def __init__(self, trace: JobTrace) -> None:
        self.trace = trace

    def write(self, text: str) -> int:
        self.trace.write_text(text)
        return len(text)


class Build:
    """One job from ``POST /jobs/request`` to its final ``PUT /jobs/:id``."""

    def __init__(
        self,
        payload: dict[str, Any],
        runner: RunnerEntry,
        client: JobsClient,
        *,
        builds_dir: Path,
        system_id: str,
        concurrent_id: int,
        project_concurrent_id: int,
        log: RunnerLog,
    ) -> None:
        self.payload, self.runner, self.client, self.log = payload, runner, client, log
        self.id = int(payload["id"])
        self.token = str(payload["token"])
        self.system_id = system_id
        self.concurrent_id, self.project_concurrent_id = concurrent_id, project_concurrent_id
        self.job_info: dict[str, Any] = payload.get("job_info") or {}
        self.git_info: dict[str, Any] = payload.get("git_info") or {}
        self.features: dict[str, Any] = payload.get("features") or {}
        self.builds_dir = builds_dir
        self.project_dir = builds_dir / runner.short_token / str(project_concurrent_id) / self._project_slug()
        self.tmp_dir = Path(str(self.project_dir) + ".tmp")
        timeout = int((payload.get("runner_info") or {}).get("timeout") or 0)
        self.timeout = timeout if timeout > 0 else DEFAULT_TIMEOUT
        self.variables = self._all_variables()
        self.trace = JobTrace(
            client,
            runner,
            self.id,
            self.token,
            Masker(
                [v.value for v in self.variables if v.masked],
                list(self.features.get("token_mask_prefixes") or []),
            ),
        )
        self._artifacts: ArtifactsClient | None = None
        self.interrupted = asyncio.Event()  # the runner is shutting down now

    # --- what the job sees ------------------------------------------------------------------------

    def _project_slug(self) -> str:
        """``ProjectSlug``: the repository URL's path without ``.git``, else ``project-<id>``."""
        try:
            parts = urlsplit(str(self.git_info.get("repo_url") or ""))
            slug = parts.path.removesuffix(".git").strip("/")
            if parts.netloc and slug and ".." not in slug.split("/"):
                return slug
        except ValueError:
            pass
        return f"project-{self.job_info.get('project_id', 0)}"

    def _all_variables(self) -> list[Variable]:
        """``GetAllVariables``: the runner's, the build's defaults, the job's, then the runner version's;
        values expanded against the whole list (the last definition of a name wins)."""
        raw: list[Variable] = [Variable("CI_RUNNER_SHORT_TOKEN", self.runner.short_token)]
        for entry in self.runner.environment:
            key, sep, value = entry.partition("=")
            if sep:
                raw.append(Variable(key, value))
        raw += [
            Variable("CI_BUILDS_DIR", str(self.builds_dir)),
            Variable("CI_PROJECT_DIR", str(self.project_dir)),
            Variable("CI_CONCURRENT_ID", str(self.concurrent_id)),
            Variable("CI_CONCURRENT_PROJECT_ID", str(self.project_concurrent_id)),
            Variable("CI_SERVER", "yes"),
            Variable("CI_JOB_STATUS", "running"),
            Variable("CI_JOB_TIMEOUT", str(self.timeout)),
        ]
        for item in self.payload.get("variables") or []:
            raw.append(
                Variable(
                    str(item.get("key", "")),
                    str(item.get("value") if item.get("value") is not None else ""),
                    public=bool(item.get("public", True)),
                    masked=bool(item.get("masked", False)),
                    file=bool(item.get("file", False)),
                    raw=bool(item.get("raw", False)),
                )
            )
        raw += [
            Variable("CI_SHARED_ENVIRONMENT", "true"),
            Variable("CI_RUNNER_VERSION", self.client.profile.version),
            Variable("CI_RUNNER_REVISION", REVISION),
            Variable("CI_RUNNER_EXECUTABLE_ARCH", f"linux/{architecture()}"),
            Variable("RUNNER_TEMP_PROJECT_DIR", str(self.tmp_dir)),
        ]
        lookup = {v.key: v.value for v in raw}
        return [
            v if v.raw else Variable(v.key, expand(v.value, lookup), v.public, v.masked, v.file, v.raw) for v in raw
        ]

    def variable(self, key: str, default: str = "") -> str:
        for var in reversed(self.variables):
            if var.key == key:
                return var.value
        return default

    def _with_status(self, status: str) -> list[Variable]:
        """``CI_JOB_STATUS`` overwritten for after_script."""
        return [Variable(v.key, status) if v.key == "CI_JOB_STATUS" else v for v in self.variables]

    # --- the job log ------------------------------------------------------------------------------

    def println(self, text: str) -> None:
        """``buildlogger.Println``."""
        self.trace.write_text(f"{CLEAR}{text}{RESET}\n")

    def notice(self, text: str) -> None:
        """What the shell's ``Noticef`` echoes."""
        self.trace.write_text(f"{BOLD_GREEN}{text}{RESET}\n")

    def warning(self, text: str) -> None:
        self.trace.write_text(f"{YELLOW}WARNING: {text}{RESET}\n")

    def soft_error(self, text: str) -> None:
        self.trace.write_text(f"{BOLD_RED}ERROR: {text}{RESET}\n")

    async def section(self, name: str, description: str, body) -> None:  # noqa: ANN001 - a coroutine function
        """``helpers.BuildSection``: raw ``section_start``/``section_end`` markers around the stage."""
        self.trace.write_text(f"section_start:{int(time.time())}:{name}\r{CLEAR}")
        self.println(f"{BOLD_CYAN}{description}{RESET}")
        try:
            await body()
        finally:
            self.trace.flush()
            self.trace.write_text(f"section_end:{int(time.time())}:{name}\r{CLEAR}")

    # --- the run ----------------------------------------------------------------------------------

    async def run(self) -> JobOutcome:
        started = time.monotonic()
        if version_tuple(self.client.profile.version) >= (18, 5):  # two-phase commit: acknowledge the job first
            ack = await self.client.update_job(self.runner, self.id, self.token, "running")
            if ack.state is UpdateState.ABORT:
                return JobOutcome(self.id, "aborted")
        self.trace.start()
        self.println(f"Running with {NAME} {self.client.profile.version} ({REVISION})")
        self.println(f"  on {self.runner.name} {self.runner.short_token}, system ID: {self.system_id}")
        error: BaseException | None = None
        work = asyncio.create_task(self._execute())
        stop = asyncio.create_task(self._wait_for_stop())
        try:
            done, _ = await asyncio.wait({work, stop}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED)
            if work in done:
                error = work.exception()
            else:
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
                if self.interrupted.is_set():
                    error = SystemFailure("aborted: interrupt")
                elif stop in done:
                    error = BuildError("canceled", "job_canceled")
                else:
                    error = BuildError(
                        f"execution took longer than {go_duration(self.timeout)} seconds", "job_execution_timeout"
                    )
        finally:
            stop.cancel()
            await self._cleanup_dirs()
            if self._artifacts is not None:
                await self._artifacts.aclose()
        outcome = await self._finish(error, time.monotonic() - started)
        return outcome

    async def _wait_for_stop(self) -> None:
        events = (self.trace.aborted, self.trace.cancel_requested, self.interrupted)
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _failure_reason(self, reason: str) -> str:
        supported = list(self.features.get("failure_reasons") or []) + list(ALWAYS_SUPPORTED_REASONS)
        return reason if reason in supported else "unknown_failure"

    async def _finish(self, error: BaseException | None, duration: float) -> JobOutcome:
        fields = {"duration_s": round(duration, 3), "job": self.id, "project": self.job_info.get("project_id")}
        fields["runner"] = self.runner.short_token
        if error is None:
            self.trace.write_text(f"{BOLD_GREEN}Job succeeded{RESET}\n")
            self.log.info("Job succeeded", **fields)
            state = await self.trace.finish("success")
            return JobOutcome(self.id, "success" if state is UpdateState.SUCCEEDED else "aborted")
        if isinstance(error, BuildError):
            message, reason, code = f"Job failed: {error}", error.failure_reason, error.exit_code
            self.soft_error(message)
        else:
            message, reason, code = f"Job failed (system failure): {error}", "runner_system_failure", 0
            self.trace.write_text(f"{BOLD_RED}ERROR: {message}{RESET}\n")
        reason = self._failure_reason(reason)
        self.log.warning(message, exit_code=code, failure_reason=reason, **{"job-status": "failed"}, **fields)
        state = await self.trace.finish("failed", reason, code)
        return JobOutcome(self.id, "failed" if state is UpdateState.SUCCEEDED else "aborted", reason, code, message)

    async def _execute(self) -> None:
        """``executeScript``: a failed preparation skips the scripts but not the failure uploads."""
        await self.section("prepare_executor", 'Preparing the "shell" executor', self._prepare_executor)
        error: BuildError | None = None
        try:
            await self.section("prepare_script", "Preparing environment", self._prepare_script)
            await self.section("get_sources", "Getting source from Git repository", self._get_sources)
            if self._dependencies():
                await self.section("download_artifacts", "Downloading artifacts", self._download_artifacts)
        except BuildError as exc:
            error = exc
        if error is None:
            error = await self._user_scripts()
        upload_error = await self._upload_artifacts(error is None)
        self._remove_file_variables()
        if error is not None:
            raise error
        if upload_error is not None:
            raise upload_error

    # --- stages -----------------------------------------------------------------------------------

    async def _prepare_executor(self) -> None:
        self.println(f"Using Shell ({self.runner.shell_name}) executor...")

    async def _prepare_script(self) -> None:
        self.trace.write_text(f"Running on {socket.gethostname()}...\n")

    def git_strategy(self) -> str:
        default = "fetch" if self.payload.get("allow_git_fetch", True) else "clone"
        return self.variable("GIT_STRATEGY") or default

    async def _get_sources(self) -> None:
        strategy = self.git_strategy()
        if strategy not in ("fetch", "clone", "none", "empty"):
            raise SystemFailure("unknown GIT_STRATEGY")
        if strategy != "fetch":
            await asyncio.to_thread(shutil.rmtree, self.project_dir, True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self._write_file_variables()
        if strategy in ("none", "empty"):
            self.notice(
                "Skipping Git repository setup"
                if strategy == "none"
                else "Skipping Git repository setup and creating an empty build directory"
            )
            self.project_dir.mkdir(parents=True, exist_ok=True)
            self.notice("Skipping Git checkout")
            self.notice("Skipping Git submodules setup")
            return
        script = BashScript()
        script.exports(self.variables, self.tmp_dir)
        self._write_fetch(script, strategy)
        await self._run(script, self.builds_dir)

    def _write_fetch(self, w: BashScript, strategy: str) -> None:
        """``writeRefspecFetchCmd`` and ``writeCheckoutCmd``: init, remote, fetch the refspecs, check out the sha."""
        depth = int(self.variable("GIT_DEPTH") or self.git_info.get("depth") or 0)
        project, template = str(self.project_dir), str(self.tmp_dir / "git-template")
        url = str(self.git_info.get("repo_url") or "")
        if strategy == "clone":
            w.command("rm", "-r", "-f", project)
        w.notice(f"Fetching changes with git depth set to {depth}..." if depth > 0 else "Fetching changes...")
        w.command("mkdir", "-p", template)
        w.command("git", "config", "-f", f"{template}/config", "init.defaultBranch", "none")
        w.command("git", "config", "-f", f"{template}/config", "fetch.recurseSubmodules", "false")
        for name in ("index.lock", "shallow.lock", "HEAD.lock", "hooks/post-checkout", "config.lock"):
            w.command("rm", "-f", f"{project}/.git/{name}")
        w.command("git", "init", project, "--template", template)
        w.cd(project)
        w.line(f"if git remote add origin {shlex.quote(url)} >/dev/null 2>&1; then")
        w.notice("Created fresh repository.")
        w.line("else")
        w.command("git", "remote", "set-url", "origin", url)
        w.line("fi")
        agent = f"http.userAgent={NAME} {self.client.profile.version} linux/{architecture()}"
        fetch = ["git", "-c", agent, "fetch", "origin", *[str(r) for r in self.git_info.get("refspecs") or []]]
        if depth > 0:
            fetch += ["--depth", str(depth)]
        w.command(*fetch, *(self.variable("GIT_FETCH_EXTRA_FLAGS") or "--prune --quiet").split())
        sha, ref = str(self.git_info.get("sha") or ""), str(self.git_info.get("ref") or "")
        if self.variable("GIT_CHECKOUT", "true") != "false":
            w.notice(f"Checking out {sha[:8]} as detached HEAD (ref is {ref})...")
            w.command("git", "checkout", "-f", "-q", sha)
            clean = (self.variable("GIT_CLEAN_FLAGS") or "-ffdx").split()
            if clean != ["none"]:
                w.command("git", "clean", *clean)
        else:
            w.notice("Skipping Git checkout")
        w.notice("Skipping Git submodules setup")

    def _dependencies(self) -> list[dict[str, Any]]:
        return [d for d in self.payload.get("dependencies") or [] if (d.get("artifacts_file") or {}).get("filename")]

    def artifacts_client(self) -> ArtifactsClient:
        if self._artifacts is None:
            self._artifacts = ArtifactsClient(
                self.runner.url,
                runner_version=self.client.profile,
                log=RunnerLog(_TraceText(self.trace), color=True),
                progress="off",
            )
        return self._artifacts

    async def _download_artifacts(self) -> None:
        direct = self.variable("FF_USE_DIRECT_DOWNLOAD", "true").lower() not in ("false", "0")
        client = self.artifacts_client()
        for dep in self._dependencies():
            self.notice(f"Downloading artifacts for {dep.get('name')} ({dep.get('id')})...")
            try:
                await client.download(
                    int(dep["id"]),
                    str(dep.get("token") or self.token),
                    target_dir=self.project_dir,
                    direct_download=direct,
                )
            except (ArtifactsError, ArchiveError) as exc:
                client.log.fatal(str(exc))
                raise BuildError("exit status 1", exit_code=1) from None

    async def _user_scripts(self) -> BuildError | None:
        """``executeUserScripts``: each step but after_script, then after_script (its failure only warns)."""
        error: BuildError | None = None
        for step in self.payload.get("steps") or []:
            if step.get("name") == "after_script":
                continue
            stage = f"step_{str(step.get('name') or 'script').lower()}"
            limit = float(step.get("timeout") or 0) or None
            try:
                await self.section(
                    stage,
                    f'Executing "{stage}" stage of the job script',
                    lambda step=step, stage=stage, limit=limit: self._script_stage(step, stage, limit),
                )
            except BuildError as exc:
                error = exc
                break
        after = next((s for s in self.payload.get("steps") or [] if s.get("name") == "after_script"), None)
        if after and after.get("script"):
            status = (
                "success" if error is None else ("canceled" if error.failure_reason == "job_canceled" else "failed")
            )
            try:
                await self.section("after_script", "Running after_script", lambda: self._after_script(after, status))
            except BuildError as exc:
                self.warning(f"after_script failed, but job will continue unaffected: {exc}")
        return error

    async def _script_stage(self, step: dict[str, Any], stage: str, limit: float | None) -> None:
        script = BashScript()
        script.exports(self.variables, self.tmp_dir)
        script.cd(self.project_dir)
        script.user_commands([str(c) for c in step.get("script") or []])
        try:
            await asyncio.wait_for(self._run(script, self.project_dir), limit)
        except TimeoutError:
            self.warning(
                f"{stage} could not run to completion because the timeout was exceeded. "
                f"For more control over job and script timeouts see: {TIMEOUT_DOCS}"
            )
            raise BuildError(
                f"execution took longer than {go_duration(self.timeout)} seconds", "job_execution_timeout"
            ) from None

    async def _after_script(self, step: dict[str, Any], status: str) -> None:
        script = BashScript()
        script.exports(self._with_status(status), self.tmp_dir)
        script.cd(self.project_dir)
        script.notice("Running after script...")
        script.user_commands([str(c) for c in step.get("script") or []])
        timeout = parse_go_duration(self.variable("RUNNER_AFTER_SCRIPT_TIMEOUT")) or AFTER_SCRIPT_TIMEOUT
        try:
            await asyncio.wait_for(self._run(script, self.project_dir), timeout)
        except TimeoutError:
            self.warning(
                f"after_script could not run to completion because the timeout was exceeded. "
                f"For more control over job and script timeouts see: {TIMEOUT_DOCS}"
            )
            raise BuildError("context deadline exceeded") from None

    async def _run(self, script: BashScript, cwd: Path) -> None:
        await asyncio.to_thread(cwd.mkdir, parents=True, exist_ok=True)
        result = await run_script(
            script.finish(self.runner.shell_name), shell=self.runner.shell_name, cwd=cwd, trace=self.trace
        )
        if not result.ok:
            raise BuildError(result.error, exit_code=result.exit_code or 0)

    async def _upload_artifacts(self, succeeded: bool) -> BuildError | None:
        """``writeUploadArtifacts``: the entries whose ``when`` fits, in order; the first failure ends the stage."""
        wanted = [a for a in self.payload.get("artifacts") or [] if _applies(a, succeeded) and _archivable(a)]
        if not wanted:
            return None
        name = "upload_artifacts_on_success" if succeeded else "upload_artifacts_on_failure"
        title = "Uploading artifacts for successful job" if succeeded else "Uploading artifacts for failed job"
        try:
            await self.section(name, title, lambda: self._upload(wanted))
        except BuildError as exc:
            return exc
        return None

    async def _upload(self, artifacts: list[dict[str, Any]]) -> None:
        client = self.artifacts_client()
        for artifact in artifacts:
            self.notice("Uploading artifacts...")
            try:
                await client.upload(
                    self.id,
                    self.token,
                    [str(p) for p in artifact.get("paths") or []],
                    exclude=[str(p) for p in artifact.get("exclude") or []],
                    untracked=bool(artifact.get("untracked")),
                    workdir=self.project_dir,
                    name=artifact.get("name") or "artifacts",
                    expire_in=artifact.get("expire_in") or None,
                    artifact_format=artifact.get("artifact_format") or None,
                    artifact_type=artifact.get("artifact_type") or None,
                )
            except (ArtifactsError, ArchiveError) as exc:
                client.log.fatal(str(exc))
                raise BuildError("exit status 1", exit_code=1) from None

    # --- files ------------------------------------------------------------------------------------

    def _write_file_variables(self) -> None:
        for var in self.variables:
            if var.file:
                path = self.tmp_dir / var.key
                path.write_text(var.value)
                path.chmod(0o600)

    def _remove_file_variables(self) -> None:
        for var in self.variables:
            if var.file:
                (self.tmp_dir / var.key).unlink(missing_ok=True)

    async def _cleanup_dirs(self) -> None:
        await asyncio.to_thread(shutil.rmtree, self.tmp_dir, True)


def _applies(artifact: dict[str, Any], succeeded: bool) -> bool:
    when = artifact.get("when") or "on_success"
    return when == "always" or when == ("on_success" if succeeded else "on_failure")


def _archivable(artifact: dict[str, Any]) -> bool:
    return bool(artifact.get("paths") or artifact.get("exclude") or artifact.get("untracked"))
