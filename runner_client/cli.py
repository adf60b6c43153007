"""``artifacts-uploader`` and ``artifacts-downloader`` with gitlab-runner's flags and variables.

``app`` runs both (``python -m runner_client ...``); ``artifacts_uploader`` and
``artifacts_downloader`` are plain Typer command callables to mount elsewhere.
Exit codes as gitlab-runner: 0 on success and on ``No files to upload``, 1 after ``FATAL``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated

import typer

from runner_client.archive import ArchiveError
from runner_client.cli_help import use_click_metavars
from runner_client.client import ArtifactsClient
from runner_client.log import RunnerLog
from runner_client.responses import ArtifactsError
from runner_client.runner.cli import app as runner_app
from runner_client.tokens import token_problem

use_click_metavars()
app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="gitlab-runner's artifact helpers and a built-in runner."
)

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` (``1s``, ``500ms``, ``1h30m``); a bare number is seconds."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text.lstrip("+"):
        raise typer.BadParameter(f"time: invalid duration {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


Url = Annotated[str, typer.Option("--url", envvar="CI_SERVER_URL", help="GitLab server URL")]
Token = Annotated[str, typer.Option("--token", envvar="CI_JOB_TOKEN", help="The job token")]
JobId = Annotated[int, typer.Option("--id", envvar="CI_JOB_ID", help="The job ID")]
RunnerVersion = Annotated[
    str,
    typer.Option(
        "--runner-version", envvar="MOCKCOORD_RUNNER_VERSION", help="Behave like gitlab-runner 17.x or 19.x (17|19)"
    ),
]
Progress = Annotated[
    str, typer.Option("--progress", help="auto (a bar on a terminal, else a line), rich, plain or off")
]
Verbose = Annotated[bool, typer.Option("--verbose", help="Detailed information")]


def _run(log: RunnerLog, work) -> None:  # noqa: ANN001 - a coroutine
    try:
        asyncio.run(work)
    except (ArtifactsError, ArchiveError) as exc:
        log.fatal(str(exc))
        raise typer.Exit(1) from None


def _check_token(log: RunnerLog, token: str) -> None:
    if problem := token_problem("--token (CI_JOB_TOKEN)", token):
        log.fatal(problem)
        raise typer.Exit(1)


def artifacts_uploader(
    url: Url = "",
    token: Token = "",
    job_id: JobId = 0,
    path: Annotated[list[str] | None, typer.Option("--path", help="Add paths to archive")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="Exclude paths from the archive")] = None,
    untracked: Annotated[bool, typer.Option("--untracked", help="Add git untracked files")] = False,
    verbose: Verbose = False,
    name: Annotated[str, typer.Option("--name", help="The name of the archive")] = "artifacts",
    expire_in: Annotated[str, typer.Option("--expire-in", help="When to expire artifacts")] = "",
    artifact_format: Annotated[
        str, typer.Option("--artifact-format", help="Format of generated artifacts (zip, gzip, raw, tarzstd)")
    ] = "",
    artifact_type: Annotated[str, typer.Option("--artifact-type", help="Type of generated artifacts")] = "",
    compression_level: Annotated[
        str,
        typer.Option(
            "--compression-level",
            envvar="ARTIFACT_COMPRESSION_LEVEL",
            help="Compression level (fastest, fast, default, slow, slowest)",
        ),
    ] = "",
    timeout: Annotated[str, typer.Option("--timeout", help="Overall request timeout")] = "1h",
    response_header_timeout: Annotated[
        str, typer.Option("--response-header-timeout", help="Time to wait for response headers")
    ] = "10m",
    runner_version: RunnerVersion = "19",
    progress: Progress = "auto",
) -> None:
    """Archive a job's files and upload them to the coordinator, as gitlab-runner's artifacts-uploader."""
    log = RunnerLog(verbose=verbose)
    if not url or not token:
        log.fatal("Missing runner credentials")
        raise typer.Exit(1)
    if job_id <= 0:
        log.fatal("Missing build ID")
        raise typer.Exit(1)
    _check_token(log, token)

    async def work() -> None:
        async with ArtifactsClient(
            url,
            runner_version=runner_version,
            log=log,
            progress=progress,
            timeout=go_duration(timeout),
            response_header_timeout=go_duration(response_header_timeout),
        ) as client:
            await client.upload(
                job_id,
                token,
                path or [],
                exclude=exclude,
                untracked=untracked,
                name=name,
                expire_in=expire_in or None,
                artifact_format=artifact_format or None,
                artifact_type=artifact_type or None,
                compression_level=compression_level or None,
            )

    _run(log, work())


def artifacts_downloader(
    url: Url = "",
    token: Token = "",
    job_id: JobId = 0,
    direct_download: Annotated[
        bool,
        typer.Option(
            "--direct-download/--no-direct-download",
            envvar="FF_USE_DIRECT_DOWNLOAD",
            help="Support direct download for data stored externally to GitLab",
        ),
    ] = True,
    staging_dir: Annotated[
        str,
        typer.Option(
            "--archiver-staging-dir", envvar="ARCHIVER_STAGING_DIR", help="Directory to stage artifact archives"
        ),
    ] = "",
    retry: Annotated[int, typer.Option("--retry", help="How many times to retry the download")] = 2,
    retry_time: Annotated[str, typer.Option("--retry-time", help="How long to wait between retries")] = "1s",
    parallel_transfer: Annotated[
        bool,
        typer.Option(
            "--parallel-transfer/--no-parallel-transfer",
            envvar="FF_USE_PARALLEL_ARTIFACT_TRANSFER",
            help="Fetch large redirected artifacts in 16 MiB ranges",
        ),
    ] = False,
    download_flow: Annotated[
        str | None,
        typer.Option("--download-flow", help="direct (19.x default) or classic (redirect-following, before 19.0)"),
    ] = None,
    target_dir: Annotated[
        str, typer.Option("--target-dir", help="Where to extract (default: the current directory)")
    ] = ".",
    verbose: Verbose = False,
    runner_version: RunnerVersion = "19",
    progress: Progress = "auto",
) -> None:
    """Download a job's artifacts archive and extract it here, as gitlab-runner's artifacts-downloader."""
    log = RunnerLog(verbose=verbose)
    if not url:
        log.warning("Missing URL (--url)")
    if not token:
        log.warning("Missing runner credentials (--token)")
    if job_id <= 0:
        log.warning("Missing build ID (--id)")
    if job_id <= 0 or not token or not url:
        log.fatal("Incomplete arguments")
        raise typer.Exit(1)
    _check_token(log, token)
    wait = go_duration(retry_time)

    async def work() -> None:
        async with ArtifactsClient(
            url,
            runner_version=runner_version,
            download_flow=download_flow,
            parallel_transfer=parallel_transfer,
            log=log,
            progress=progress,
        ) as client:
            await client.download(
                job_id,
                token,
                target_dir=target_dir,
                direct_download=direct_download,
                retry=retry,
                retry_time=wait,
                staging_dir=staging_dir or None,
            )

    _run(log, work())


app.command("artifacts-uploader")(artifacts_uploader)
app.command("artifacts-downloader")(artifacts_downloader)
app.add_typer(runner_app, name="runner", help="A gitlab-runner work-alike: register, run (shell executor).")
