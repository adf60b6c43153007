"""``mockcoord serve``, ``rails`` and ``workhorse``: the coordinator's processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mockctl.cli.common import (
    BucketOpt,
    DataDirOpt,
    DbOpt,
    GitlabVersionOpt,
    HostOpt,
    PathStyleOpt,
    RedisOpt,
    S3EndpointOpt,
    S3PortOpt,
    S3RegionOpt,
    StorageOpt,
    build_settings,
    check_storage,
    console,
    refuse_unsafe_bind,
    setting_default,
)

if TYPE_CHECKING:
    from app.config import Settings
    from app.state import AppState
    from mockctl.seed.demo import DemoInfo
    from mockctl.seed.scenario import Scenario


def processes_opt(flag: str) -> Any:
    return typer.Option(
        flag,
        min=1,
        help="Rails processes on the Rails port; over 1 needs PostgreSQL (MOCKCOORD_RAILS_PROCESSES).",
        show_default=setting_default("rails_processes"),
    )


RailsProcessesOpt = Annotated[int | None, processes_opt("--rails-processes")]


def print_banner(state: AppState, base_url: str, demo: DemoInfo | None, started: float) -> None:
    from mockctl.instrument import instrument

    settings = state.settings
    console.print(f"[bold green]mockcoord is ready[/bold green] in {time.monotonic() - started:.2f}s")
    console.print(f"  coordinator   {base_url}   (Workhorse; Rails behind it on 127.0.0.1:{settings.rails_port})")
    console.print(
        f"  processes     {plural(settings.workhorse_processes, 'Workhorse process')}, "
        f"{plural(settings.rails_processes, 'Rails process')}"
    )
    embedded = " (embedded, in memory: each start begins empty)" if instrument(state).embedded_s3 else ""
    storage = (
        f"S3 {settings.object_store.connection.endpoint} bucket {settings.object_store.artifacts_bucket}{embedded}"
        if settings.object_store.enabled
        else f"local {settings.artifacts_path}"
    )
    console.print(f"  storage       {storage}")
    console.print(f"  database      {settings.resolved_database_url}")
    console.print(f"  admin token   {settings.admin_token}   (PRIVATE-TOKEN for /-/mock/*)")
    console.print(f"  logs          {settings.data_dir.resolve() / 'log' / 'workhorse.log'}")
    exports = {"MOCKCOORD_URL": base_url, "MOCKCOORD_ADMIN_TOKEN": settings.admin_token}
    # Where `mockcoord admin`, `rake` and `dbconsole` find this instance's data (the database URL
    # itself is not exported: a password would travel, and other instances would take it up).
    exports["MOCKCOORD_DATA_DIR"] = str(settings.data_dir.resolve())
    if (s3 := instrument(state).embedded_s3) is not None:
        exports["MOCKCOORD_S3_PORT"] = str(s3.port)
    if demo is not None:
        exports = {
            "CI_SERVER_URL": base_url,
            "CI_JOB_TOKEN": demo.test_job_token,
            "CI_JOB_ID": demo.test_job_id,
        } | exports
    # The README's commands read these: pasted in another shell, they reach this instance.
    console.print("\nIn another shell:", markup=False)
    console.print(
        "  export " + " ".join(f"{name}={shlex.quote(str(value))}" for name, value in exports.items()), markup=False
    )
    if demo is None:
        return
    url = f"{base_url}/api/v4/jobs/{demo.build_job_id}/artifacts"
    console.print(
        f"\nDemo: job {demo.build_job_id} ({demo.project}, build) has an archive; "
        f"job {demo.test_job_id} (test) is running with token {demo.test_job_token}"
    )
    console.print("  direct download (302 to object storage):")
    console.print(f"    curl -i -H 'JOB-TOKEN: {demo.test_job_token}' '{url}?direct_download=true'")
    console.print("  proxied download (Workhorse send-url):")
    console.print(
        f"    curl -sS -o artifacts.zip -H 'JOB-TOKEN: {demo.test_job_token}' '{url}' && unzip -l artifacts.zip",
    )


def plural(count: int, what: str) -> str:
    return f"{count} {what}{'es' if count != 1 else ''}"


def say(message: str) -> None:
    """What serve tells of its child processes' exits and restarts."""
    console.print(message, style="yellow", markup=False)


def serve(
    host: HostOpt = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            help="Front-door (Workhorse) port (MOCKCOORD_WORKHORSE_PORT).",
            show_default=setting_default("workhorse_port"),
        ),
    ] = None,
    rails_port: Annotated[
        int | None,
        typer.Option(help="Rails port (MOCKCOORD_RAILS_PORT).", show_default=setting_default("rails_port")),
    ] = None,
    s3_port: S3PortOpt = None,
    workhorse_processes: Annotated[
        int | None,
        typer.Option(
            "--workhorse-processes",
            min=1,
            help="Workhorse processes on the front-door port (MOCKCOORD_WORKHORSE_PROCESSES).",
            show_default=setting_default("workhorse_processes"),
        ),
    ] = None,
    rails_processes: RailsProcessesOpt = None,
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
    redis_url: RedisOpt = None,
    storage: StorageOpt = None,
    s3_endpoint: S3EndpointOpt = None,
    s3_region: S3RegionOpt = None,
    bucket: BucketOpt = None,
    path_style: PathStyleOpt = None,
    proxy_download: Annotated[bool | None, typer.Option("--proxy-download/--no-proxy-download")] = None,
    admin_token: Annotated[str | None, typer.Option(help="Admin PRIVATE-TOKEN (MOCKCOORD_ADMIN_TOKEN).")] = None,
    scenario: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Scenario file (YAML or JSON) to load.")
    ] = None,
    demo: Annotated[bool, typer.Option("--demo/--no-demo", help="Load the demo scenario.")] = True,
    cron: Annotated[
        bool | None,
        typer.Option(
            "--cron/--no-cron",
            help="Run GitLab's cron schedule (housekeeping) in the Rails process (MOCKCOORD_CRON).",
            show_default="--cron",
        ),
    ] = None,
    gitlab_version: GitlabVersionOpt = None,
    log_level: Annotated[str | None, typer.Option(help="uvicorn log level.")] = None,
) -> None:
    """Start object storage, Rails and Workhorse, load the demo scenario, print how to use it."""
    check_storage(storage)
    settings = build_settings(
        redis_url=redis_url,
        cron=cron,
        gitlab_version=gitlab_version,
        host=host,
        workhorse_port=port,
        rails_port=rails_port,
        s3_port=s3_port,
        workhorse_processes=workhorse_processes,
        rails_processes=rails_processes,
        data_dir=data_dir,
        database_url=database_url,
        storage=storage,
        endpoint=s3_endpoint,
        region=s3_region,
        bucket=bucket,
        path_style=path_style,
        proxy_download=proxy_download,
        admin_token=admin_token,
        log_level=log_level,
    )
    refuse_unsafe_bind(settings)
    loaded = _read_scenario(scenario) if scenario is not None else None
    check_processes(settings, "--rails-processes")
    check_database(settings)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings, loaded, demo))


def check_processes(settings: Settings, option: str) -> None:
    """Several Rails processes on SQLite: one line and exit 2 before anything starts."""
    from sqlalchemy.engine import make_url

    if settings.rails_processes > 1 and make_url(settings.resolved_database_url).get_backend_name() == "sqlite":
        console.print(
            f"{option} {settings.rails_processes} needs PostgreSQL (--database-url postgresql+asyncpg://...): "
            "SQLite locks its whole file for each write, so processes writing at once fail with 'database is "
            "locked', and the state Rails processes share (leases, cron fire times, the mock clock) lives there",
            style="red",
            markup=False,
        )
        raise typer.Exit(2)


def check_database(settings: Settings) -> None:
    """A wrong or unreachable database is one line naming the URL before anything starts
    (Rails' startup would end in uvicorn printing the driver's traceback)."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.db import Database

    async def connect() -> None:
        database = Database(settings.resolved_database_url)
        try:
            async with database.engine.connect():
                pass
        finally:
            await database.engine.dispose()

    try:
        asyncio.run(connect())
    except (SQLAlchemyError, OSError, ValueError) as exc:
        problem = str(exc).splitlines()[0]
        console.print(f"--database-url {settings.resolved_database_url}: {problem}", style="red", markup=False)
        raise typer.Exit(2) from None


def _read_scenario(path: Path) -> tuple[Path, Scenario]:
    """Checked before anything starts, so a broken file is one line naming it and the field."""
    from pydantic import ValidationError

    from mockctl.seed.scenario import Scenario, validation_message
    from mockctl.seed.scenario_file import ScenarioFileError, read_scenario_file

    try:
        return path, Scenario.model_validate(read_scenario_file(path) or {})
    except ScenarioFileError as exc:
        message = str(exc)
    except ValidationError as exc:
        message = f"{path}: {validation_message(exc)}"
    console.print(f"--scenario {message}", style="red", markup=False)
    raise typer.Exit(2)


async def _serve(settings: Settings, scenario: tuple[Path, Scenario] | None, demo: bool) -> None:
    from mockctl.seed.apply import SeedError, apply_scenario
    from mockctl.seed.demo import prepare_demo
    from mockctl.stack import running_stack

    started = time.monotonic()
    # uvicorn re-raises SIGTERM after its graceful shutdown; as KeyboardInterrupt it lets
    # the stack stop Workhorse instead of orphaning it.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        async with running_stack(settings, say=say, cron=settings.cron) as stack:
            info = await prepare_demo(stack.state) if demo and scenario is None else None
            if scenario is not None:
                path, parsed = scenario
                try:
                    console.print_json(json.dumps(asdict(await apply_scenario(stack.state, parsed))))
                except SeedError as exc:
                    raise RuntimeError(f"--scenario {path}: {exc}") from None
            print_banner(stack.state, stack.url, info, started)
            sys.stdout.flush()
            await stack.wait()
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def rails(
    host: HostOpt = None,
    port: Annotated[
        int | None,
        typer.Option("--port", help="Port (MOCKCOORD_RAILS_PORT).", show_default=setting_default("rails_port")),
    ] = None,
    processes: Annotated[int | None, processes_opt("--processes")] = None,
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
    redis_url: RedisOpt = None,
    storage: StorageOpt = None,
    s3_endpoint: S3EndpointOpt = None,
    s3_region: S3RegionOpt = None,
    bucket: BucketOpt = None,
    path_style: PathStyleOpt = None,
    gitlab_version: GitlabVersionOpt = None,
) -> None:
    """Start the Rails layer alone (several can share one PostgreSQL and one bucket).

    Puma's part only: no cron schedule; run `mockcoord worker` beside it."""
    check_storage(storage)
    settings = build_settings(
        host=host,
        rails_port=port,
        rails_processes=processes,
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        storage=storage,
        endpoint=s3_endpoint,
        region=s3_region,
        bucket=bucket,
        path_style=path_style,
        gitlab_version=gitlab_version,
    )
    refuse_unsafe_bind(settings)
    check_processes(settings, "--processes")
    if settings.rails_processes > 1 and settings.embedded_s3:
        console.print(
            "--processes needs a bucket every process reaches: --s3-endpoint URL, or --storage local "
            "(the embedded S3 keeps its objects in one process's memory)",
            style="red",
            markup=False,
        )
        raise typer.Exit(2)
    check_database(settings)
    _run_rails(settings)


async def _prepare(settings: Settings) -> None:
    """Tables and the administrator made once, before the workers start (GitLab's ``db:migrate``
    before Puma's workers): workers starting side by side on an empty database would race to
    create them."""
    from app.main import start, stop
    from mockctl.instrument import RailsInstrument

    await stop(await start(settings, RailsInstrument(settings)))


def _run_rails(settings: Settings) -> None:
    """One process, or uvicorn's own workers on one socket (each builds the app from the settings
    handed over in its environment; uvicorn restarts a worker that dies)."""
    import os

    import uvicorn

    from mockctl import rails_process, shared_faults
    from mockctl.rails import create_app
    from mockctl.tokens import mask_access_log

    mask_access_log()
    where = {
        "host": settings.host,
        "port": settings.rails_port,
        "log_level": settings.log_level,
        "server_header": False,
    }
    if settings.rails_processes == 1:
        uvicorn.run(create_app(settings), **where)
        return
    if (faults := shared_faults.rails_faults_file(settings)) is not None:
        shared_faults.forget(faults)
    asyncio.run(_prepare(settings))
    os.environ.update(rails_process.handed_over(settings))
    uvicorn.run(f"{rails_process.__name__}:create_app", factory=True, workers=settings.rails_processes, **where)


def workhorse(
    rails_url: Annotated[str, typer.Option(help="Where Rails listens.")] = "http://127.0.0.1:3001",
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    secret_file: Annotated[
        Path,
        typer.Option(exists=True, dir_okay=False, help="GitLab's .gitlab_workhorse_secret, shared with Rails."),
    ] = Path(".mockcoord/.gitlab_workhorse_secret"),
    client_max_body_size: Annotated[int, typer.Option(help="NGINX-style body limit in bytes; 0 = off.")] = 0,
    admin_token: Annotated[
        str | None,
        typer.Option(help="The admin token Rails behind it uses (MOCKCOORD_ADMIN_TOKEN); checked, not sent."),
    ] = None,
    processes: Annotated[int, typer.Option(min=1, help="Workhorse processes on the port.")] = 1,
) -> None:
    """Start Workhorse alone, in front of a Rails started elsewhere.

    Workhorse proxies ``/-/mock/*`` to Rails, so binding beyond loopback is refused, as for
    ``serve`` and ``rails``, unless the admin token in force is not the default one.
    """
    from mockctl.workhorse import run, run_processes
    from workhorse.config import WorkhorseSettings

    refuse_unsafe_bind(build_settings(host=host, admin_token=admin_token))
    settings = WorkhorseSettings(
        listen_host=host,
        listen_port=port,
        rails_url=rails_url,
        secret_file=secret_file,
        client_max_body_size=client_max_body_size,
    )
    if processes == 1:
        run(settings)
    else:
        run_processes(settings, processes)


def worker(
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
    redis_url: RedisOpt = None,
    storage: StorageOpt = None,
    s3_endpoint: S3EndpointOpt = None,
    s3_region: S3RegionOpt = None,
    bucket: BucketOpt = None,
    path_style: PathStyleOpt = None,
    gitlab_version: GitlabVersionOpt = None,
) -> None:
    """Run GitLab's cron schedule alone (Sidekiq's part), beside a Rails.

    Give it the database and bucket that Rails uses; start any number, on any machine. Each run
    is one JSON line on stdout (GitLab's Sidekiq log). SIGTERM or Ctrl-C stops it: running jobs
    get MOCKCOORD_CRON_SHUTDOWN_TIMEOUT seconds (25) to finish."""
    check_storage(storage)
    settings = build_settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        storage=storage,
        endpoint=s3_endpoint,
        region=s3_region,
        bucket=bucket,
        path_style=path_style,
        gitlab_version=gitlab_version,
    )
    if settings.embedded_s3:
        console.print(
            "mockcoord worker needs the bucket Rails uses: --s3-endpoint URL (serve's embedded S3 is "
            f"http://127.0.0.1:{settings.s3_port}) or --storage local with Rails' --data-dir",
            style="red",
            markup=False,
        )
        raise typer.Exit(2)
    check_database(settings)
    try:
        asyncio.run(_work(settings))
    except RuntimeError as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from None


async def _work(settings: Settings) -> None:
    from app.workers.scheduler import schedule
    from mockctl.sidekiq import log_jobs_to, run_worker, say_on_stderr

    try:
        schedule(settings)  # an override naming no cron job: one line, before anything opens
    except ValueError as exc:
        raise RuntimeError(f"setting {exc}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log_jobs_to(sys.stdout)
    await run_worker(settings, stop, say_on_stderr)
