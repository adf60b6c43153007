"""``runner register`` and ``runner run``: gitlab-runner's commands for the shell executor.

``app`` is the Typer sub-app; ``mockcoord runner ...`` and ``python -m runner_client runner ...``
both mount it. Exit codes: 0 on success, 1 after ``PANIC``/``FATAL`` (as gitlab-runner).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from runner_client.log import RunnerLog
from runner_client.runner.config import Config, ConfigError, RunnerEntry, now_utc_seconds
from runner_client.runner.multi import MultiRunner
from runner_client.runner.network import REVISION, JobsClient, architecture
from runner_client.tokens import shorten_token, token_problem

app = typer.Typer(no_args_is_help=True, add_completion=False, help="A gitlab-runner work-alike (shell executor).")

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", envvar="CONFIG_FILE", help="Config file (default: ./config.toml)")
]
RunnerVersion = Annotated[
    str,
    typer.Option(
        "--runner-version", envvar="MOCKCOORD_RUNNER_VERSION", help="Behave like gitlab-runner 17.x or 19.x (17|19)"
    ),
]
RESERVED = (
    "Runner configuration other than name and executor configuration is reserved (specifically --locked, "
    "--access-level, --run-untagged, --maximum-timeout, --paused, --tag-list, and --maintenance-note) "
    "and cannot be specified when registering with a runner authentication token. "
    "This configuration is specified on the GitLab server. "
    "Please try again without specifying any of those arguments. "
    "For more information, see https://docs.gitlab.com/ci/runners/new_creation_workflow/"
    "#changes-to-the-gitlab-runner-register-command-syntax"
)
DEPRECATED = (
    "Support for registration tokens and runner parameters in the 'register' command has been deprecated in "
    "GitLab Runner 15.6 and will be replaced with support for authentication tokens. "
    "For more information, see https://docs.gitlab.com/ci/runners/new_creation_workflow/"
)


def _platform(log: RunnerLog, version: str) -> None:
    log.info(
        "Runtime platform", arch=architecture(), os=sys.platform, pid=os.getpid(), revision=REVISION, version=version
    )


def _fail(log: RunnerLog, message: str) -> typer.Exit:
    log.panic(message)
    return typer.Exit(1)


def register(
    url: Annotated[str, typer.Option("--url", "-u", envvar="CI_SERVER_URL", help="GitLab instance URL")] = "",
    registration_token: Annotated[
        str,
        typer.Option("--registration-token", "-r", envvar="REGISTRATION_TOKEN", help="Registration token (deprecated)"),
    ] = "",
    token: Annotated[
        str, typer.Option("--token", "-t", envvar="CI_SERVER_TOKEN", help="Runner authentication token (glrt-...)")
    ] = "",
    name: Annotated[
        str, typer.Option("--name", "--description", envvar="RUNNER_NAME", help="Runner name (default: the hostname)")
    ] = "",
    tag_list: Annotated[str, typer.Option("--tag-list", envvar="RUNNER_TAG_LIST", help="Tag list")] = "",
    run_untagged: Annotated[
        bool, typer.Option("--run-untagged", help="Run untagged jobs (the default when the tag list is empty)")
    ] = False,
    locked: Annotated[bool, typer.Option("--locked/--no-locked", help="Lock the runner to its project")] = True,
    access_level: Annotated[str, typer.Option("--access-level", help="not_protected or ref_protected")] = "",
    maximum_timeout: Annotated[int, typer.Option("--maximum-timeout", help="Maximum job timeout, seconds")] = 0,
    paused: Annotated[bool, typer.Option("--paused", help="Register the runner paused")] = False,
    maintenance_note: Annotated[str, typer.Option("--maintenance-note", help="Maintenance note")] = "",
    executor: Annotated[str, typer.Option("--executor", help="Only shell")] = "shell",
    shell: Annotated[str, typer.Option("--shell", help="bash (default) or sh")] = "",
    builds_dir: Annotated[str, typer.Option("--builds-dir", help="Where builds are kept")] = "",
    config: ConfigOpt = Path("config.toml"),
    non_interactive: Annotated[
        bool, typer.Option("--non-interactive", "-n", help="Accepted for compatibility; registration never asks")
    ] = False,
    runner_version: RunnerVersion = "19",
) -> None:
    """register a new runner"""
    log = RunnerLog()
    asyncio.run(
        _register(
            log,
            url=url,
            registration_token=registration_token,
            token=token,
            name=name or _hostname(),
            parameters={
                "description": name or _hostname(),
                "maintenance_note": maintenance_note,
                "tag_list": tag_list,
                "run_untagged": run_untagged or not tag_list,
                "locked": locked,
                "access_level": access_level,
                "maximum_timeout": maximum_timeout,
                "paused": paused,
            },
            reserved_given=bool(
                tag_list or run_untagged or not locked or access_level or maximum_timeout or paused or maintenance_note
            ),
            executor=executor,
            shell=shell,
            builds_dir=builds_dir,
            config_path=config,
            runner_version=runner_version,
        )
    )


def _hostname() -> str:
    return os.uname().nodename


async def _register(
    log: RunnerLog,
    *,
    url: str,
    registration_token: str,
    token: str,
    name: str,
    parameters: dict,
    reserved_given: bool,
    executor: str,
    shell: str,
    builds_dir: str,
    config_path: Path,
    runner_version: str,
) -> None:
    client = JobsClient(runner_version=runner_version, log=log)
    try:
        _platform(log, client.profile.version)
        if not url:
            raise _fail(log, "The url needs to be entered")
        if executor != "shell":
            raise _fail(log, "Invalid executor specified")
        if parameters["access_level"] not in ("", "not_protected", "ref_protected"):
            raise _fail(
                log, "Given access-level is not valid. Refer to gitlab-runner register -h for the correct options."
            )
        try:
            cfg = Config.load(config_path, missing_ok=True)
        except ConfigError as exc:
            raise _fail(log, str(exc)) from None
        system_id = cfg.system_id()
        flag = "--token" if token else "--registration-token"
        token = token or registration_token
        if not token:
            raise _fail(log, "The registration-token needs to be entered")
        if problem := token_problem(flag, token):
            raise _fail(log, problem)
        entry = RunnerEntry(name=name, url=url, token=token, executor=executor, shell=shell, builds_dir=builds_dir)
        if token.startswith("glrt-"):
            if reserved_given:
                if registration_token == token:
                    log.warning(
                        "You have specified an authentication token in the legacy parameter --registration-token. "
                        "This has triggered the 'legacy-compatible registration process' which has resulted in the "
                        "following command line parameters being ignored: --locked, --access-level, --run-untagged, "
                        "--maximum-timeout, --paused, --tag-list, and --maintenance-note."
                    )
                else:
                    log.fatal(RESERVED)
                    raise typer.Exit(1)
            result = await client.verify(url, token, system_id)
            if result is None or not result.get("id"):
                raise _fail(log, "Failed to verify the runner.")
        else:
            log.warning(DEPRECATED)
            parameters = {k: v for k, v in parameters.items() if v not in ("", 0) or isinstance(v, bool)}
            result = await client.register(url, token, parameters)
            if result is None:
                raise _fail(log, "Failed to register the runner.")
            entry.token = str(result.get("token") or "")
        entry.id = int(result.get("id") or 0)
        entry.token_obtained_at = now_utc_seconds()
        cfg.runners.append(entry)
        cfg.save()
        log.info(
            "Runner registered successfully. "
            "Feel free to start it, but if it's running already the config should be automatically reloaded!"
        )
        log.info(f'Configuration (with the authentication token) was saved in "{config_path}"')
    finally:
        await client.aclose()


def run(
    config: ConfigOpt = Path("config.toml"),
    once: Annotated[bool, typer.Option("--once", help="Take one job, run it, exit")] = False,
    max_jobs: Annotated[
        int, typer.Option("--max-jobs", "--max-builds", help="Exit after this many jobs (0: never)")
    ] = 0,
    wait_timeout: Annotated[
        float, typer.Option("--wait-timeout", help="Exit when no job came for this many seconds (0: wait forever)")
    ] = 0,
    builds_dir: Annotated[Path | None, typer.Option("--builds-dir", help="Override every runner's builds_dir")] = None,
    runner_version: RunnerVersion = "19",
) -> None:
    """run jobs: poll the coordinator, run each job with the shell executor"""
    log = RunnerLog()
    if once and max_jobs not in (0, 1):
        log.fatal("--once and --max-jobs contradict each other")
        raise typer.Exit(1)
    try:
        cfg = Config.load(config)
    except ConfigError as exc:
        log.fatal(str(exc))
        raise typer.Exit(1) from None
    bad = (token_problem(f"{config}: runners[{i}].token", r.token) for i, r in enumerate(cfg.runners))
    if problem := next((p for p in bad if p), None):
        log.fatal(problem)
        raise typer.Exit(1)
    unsupported = [r.name or shorten_token(r.token) for r in cfg.runners if r.executor != "shell"]
    if unsupported:
        log.fatal("only the shell executor is supported; not by:", ", ".join(unsupported))
        raise typer.Exit(1)
    resolved = builds_dir.resolve() if builds_dir else None
    code = asyncio.run(_run(log, cfg, 1 if once else max_jobs, wait_timeout, resolved, runner_version))
    raise typer.Exit(code)


async def _run(
    log: RunnerLog, cfg: Config, max_jobs: int, wait_timeout: float, builds_dir: Path | None, runner_version: str
) -> int:
    client = JobsClient(runner_version=runner_version, log=log)
    multi = MultiRunner(
        cfg,
        client,
        log,
        builds_dir=builds_dir,
        max_jobs=max_jobs,
        wait_timeout=wait_timeout,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, multi.stop)
    try:
        _platform(log, client.profile.version)
        return await multi.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await client.aclose()


app.command("register")(register)
app.command("run")(run)
