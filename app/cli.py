"""The ``mockcoord`` command."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import uvicorn
import yaml
from rich.console import Console

from app import troubleshooting
from app.config import DEFAULT_ADMIN_TOKEN, Settings
from app.flow_reproduce import KINDS, Kind, reproduce
from app.main import create_app
from app.services.demo import DemoInfo, load_scenario_file, prepare_demo
from app.stack import running_stack
from app.state import AppState
from app.storage.embedded_s3 import free_port
from runner_client import cli as runner_cli

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="A GitLab job-artifact coordinator for tests.")
console = Console(highlight=False, soft_wrap=True)

HostOpt = Annotated[str | None, typer.Option("--host", help="Address to bind (MOCKCOORD_HOST).")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Data directory (MOCKCOORD_DATA_DIR).")]
DbOpt = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy async URL (MOCKCOORD_DATABASE_URL).")]


def build_settings(**flags: Any) -> Settings:
    """Flags override ``MOCKCOORD_*`` variables; flags left unset leave them alone."""
    storage = flags.pop("storage", None)
    connection = {k: flags.pop(k) for k in ("endpoint", "region", "path_style") if flags.get(k) is not None}
    for key in ("endpoint", "region", "path_style"):
        flags.pop(key, None)
    object_store: dict[str, Any] = {}
    if storage is not None:
        object_store["enabled"] = storage == "s3"
    if flags.get("proxy_download") is not None:
        object_store["proxy_download"] = flags.pop("proxy_download")
    flags.pop("proxy_download", None)
    bucket = flags.pop("bucket", None)
    if bucket:
        object_store["objects"] = {"artifacts": {"bucket": bucket}}
    if connection:
        object_store["connection"] = connection
    if object_store:
        flags["object_store"] = object_store
    return Settings(**{k: v for k, v in flags.items() if v is not None})


def refuse_unsafe_bind(settings: Settings) -> None:
    if not settings.binds_only_loopback() and settings.admin_token == DEFAULT_ADMIN_TOKEN:
        console.print(
            f"[red]Refusing to bind {settings.host} with the default admin token.[/red] "
            "Set MOCKCOORD_ADMIN_TOKEN or --admin-token."
        )
        raise typer.Exit(2)


def print_banner(state: AppState, base_url: str, demo: DemoInfo | None, started: float) -> None:
    settings = state.settings
    console.print(f"[bold green]mockcoord is ready[/bold green] in {time.monotonic() - started:.2f}s")
    console.print(f"  coordinator   {base_url}   (Workhorse; Rails behind it on 127.0.0.1:{settings.rails_port})")
    embedded = " (embedded, in memory: each start begins empty)" if state.embedded_s3 else ""
    storage = (
        f"S3 {settings.object_store.connection.endpoint} bucket {settings.object_store.artifacts_bucket}{embedded}"
        if settings.object_store.enabled
        else f"local {settings.artifacts_path}"
    )
    console.print(f"  storage       {storage}")
    console.print(f"  database      {settings.resolved_database_url}")
    console.print(f"  admin token   {settings.admin_token}   (PRIVATE-TOKEN for /-/mock/*)")
    console.print(f"  logs          {settings.data_dir.resolve() / 'log' / 'workhorse.log'}")
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


@cli.command()
def serve(
    host: HostOpt = None,
    port: Annotated[int | None, typer.Option("--port", help="Front-door port (MOCKCOORD_WORKHORSE_PORT).")] = None,
    rails_port: Annotated[int | None, typer.Option(help="Rails port (MOCKCOORD_RAILS_PORT).")] = None,
    s3_port: Annotated[int | None, typer.Option(help="Embedded S3 port (MOCKCOORD_S3_PORT).")] = None,
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
    storage: Annotated[str | None, typer.Option(help="'s3' (object storage) or 'local' (disk).")] = None,
    s3_endpoint: Annotated[str | None, typer.Option(help="External S3 endpoint; unset: embedded moto.")] = None,
    s3_region: Annotated[str | None, typer.Option(help="Object storage region.")] = None,
    bucket: Annotated[str | None, typer.Option(help="Artifacts bucket ('bucket' or 'bucket/prefix').")] = None,
    path_style: Annotated[bool | None, typer.Option("--path-style/--virtual-host-style")] = None,
    proxy_download: Annotated[bool | None, typer.Option("--proxy-download/--no-proxy-download")] = None,
    admin_token: Annotated[str | None, typer.Option(help="Admin PRIVATE-TOKEN (MOCKCOORD_ADMIN_TOKEN).")] = None,
    scenario: Annotated[Path | None, typer.Option(help="Scenario file (YAML or JSON) to load.")] = None,
    demo: Annotated[bool, typer.Option("--demo/--no-demo", help="Load the demo scenario.")] = True,
    log_level: Annotated[str | None, typer.Option(help="uvicorn log level.")] = None,
) -> None:
    """Start object storage, Rails and Workhorse, load the demo scenario, print how to use it."""
    if storage not in (None, "s3", "local"):
        raise typer.BadParameter("--storage must be 's3' or 'local'")
    settings = build_settings(
        host=host,
        workhorse_port=port,
        rails_port=rails_port,
        s3_port=s3_port,
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
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings, scenario, demo))


async def _serve(settings: Settings, scenario: Path | None, demo: bool) -> None:
    started = time.monotonic()
    # uvicorn re-raises SIGTERM after its graceful shutdown; as KeyboardInterrupt it lets
    # the stack stop Workhorse instead of orphaning it.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        async with running_stack(settings) as stack:
            info = await prepare_demo(stack.state) if demo and scenario is None else None
            if scenario is not None:
                console.print_json(json.dumps(await load_scenario_file(stack.state, scenario)))
            print_banner(stack.state, stack.url, info, started)
            sys.stdout.flush()
            await stack.wait()
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@cli.command()
def rails(
    host: HostOpt = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (MOCKCOORD_RAILS_PORT).")] = None,
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Start the Rails layer alone (several can share one PostgreSQL and one bucket)."""
    settings = build_settings(host=host, rails_port=port, data_dir=data_dir, database_url=database_url)
    refuse_unsafe_bind(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.rails_port,
        log_level=settings.log_level,
        server_header=False,
    )


@cli.command()
def workhorse(
    rails_url: Annotated[str, typer.Option(help="Where Rails listens.")] = "http://127.0.0.1:3001",
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    secret_file: Annotated[Path, typer.Option(help="GitLab's .gitlab_workhorse_secret, shared with Rails.")] = Path(
        ".mockcoord/.gitlab_workhorse_secret"
    ),
    client_max_body_size: Annotated[int, typer.Option(help="NGINX-style body limit in bytes; 0 = off.")] = 0,
) -> None:
    """Start Workhorse alone, in front of a Rails started elsewhere."""
    from mockctl.workhorse import run
    from workhorse.config import WorkhorseSettings

    run(
        WorkhorseSettings(
            listen_host=host,
            listen_port=port,
            rails_url=rails_url,
            secret_file=secret_file,
            client_max_body_size=client_max_body_size,
        )
    )


# gitlab-runner's artifact helpers, from the runner side of the wire (runner_client).
cli.command("artifacts-uploader")(runner_cli.artifacts_uploader)
cli.command("artifacts-downloader")(runner_cli.artifacts_downloader)
# The built-in runner: `mockcoord runner register|run` (runner_client.runner).
cli.add_typer(runner_cli.runner_app, name="runner", help="A gitlab-runner work-alike: register, run (shell executor).")

flows_cli = typer.Typer(no_args_is_help=True, help="Draw GitLab's artifact download flows from real traffic.")
cli.add_typer(flows_cli, name="flows")


@flows_cli.command("reproduce")
def flows_reproduce(
    kind: Annotated[str, typer.Argument(help="direct, proxy or denied")],
    url: Annotated[str | None, typer.Option(help="A running coordinator; unset: start one in-process.")] = None,
    admin_token: Annotated[str, typer.Option(envvar="MOCKCOORD_ADMIN_TOKEN")] = DEFAULT_ADMIN_TOKEN,
    storage: Annotated[str, typer.Option(help="For the in-process coordinator: 's3' or 'local'.")] = "s3",
) -> None:
    """Run one download the way a runner does and print its Mermaid sequence diagram."""
    if kind not in KINDS:
        raise typer.BadParameter(f"kind must be one of {', '.join(KINDS)}")
    try:
        print(asyncio.run(_reproduce(kind, url, admin_token, storage)), end="")
    except (httpx.HTTPError, RuntimeError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


async def _reproduce(kind: Kind, url: str | None, admin_token: str, storage: str) -> str:
    if url is not None:
        return await reproduce(url, admin_token, kind)
    with tempfile.TemporaryDirectory(prefix="mockcoord-flows-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            workhorse_port=free_port(),
            rails_port=free_port(),
            s3_port=free_port(),
            admin_token=admin_token,
            object_store={"enabled": storage == "s3"},
        )
        async with running_stack(settings) as stack:
            return await reproduce(stack.url, admin_token, kind)


@cli.command()
def troubleshoot(
    scenario: Annotated[
        Path | None, typer.Argument(exists=True, dir_okay=False, help="A file of scenarios/; none: list them.")
    ] = None,
    fixed: Annotated[bool, typer.Option("--fixed", help="Apply the page's fix and check the upload succeeds.")] = False,
) -> None:
    """Reproduce a case of GitLab's job-artifacts troubleshooting page on a private coordinator."""
    if scenario is None:
        for path in troubleshooting.available():
            case = troubleshooting.load(path)
            console.print(f"{path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}  {case.title}")
        return
    try:
        case = troubleshooting.load(scenario)
    except (ValueError, yaml.YAMLError) as exc:
        console.print(f"[red]{scenario}: {exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"[bold]{case.title}[/bold]  (GitLab's page: {case.section})")
    if fixed:
        console.print(f"Fix: {case.fix.description}")
    try:
        outcome = asyncio.run(troubleshooting.run(case, fixed=fixed))
    except (httpx.HTTPError, RuntimeError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    expected = case.fix.expect if fixed else case.symptom
    console.print("\n[bold]Runner (artifacts-uploader):[/bold]")
    for line in outcome.runner:
        console.print(line, markup=False)
    shown = [line for line in outcome.workhorse if '"level":"error"' in line]
    if shown:
        console.print("\n[bold]Workhorse log (errors):[/bold]")
        for line in shown:
            console.print(line, markup=False)
    problems = outcome.missing(expected)
    what = "the fix works" if fixed else "symptom reproduced"
    if problems:
        console.print(f"\n[red]✗ not as the page says:[/red] {'; '.join(problems)}")
        raise typer.Exit(1)
    console.print(f"\n[green]✓ {what}[/green]")


def anchor_repository_paths(data: Any, base: Path) -> None:
    """A relative ``projects[].repository.path`` is read from the scenario file's folder."""
    for project in (data.get("projects") if isinstance(data, dict) else None) or []:
        repository = project.get("repository") if isinstance(project, dict) else None
        if isinstance(repository, dict) and isinstance(repository.get("path"), str):
            repository["path"] = str((base / repository["path"]).resolve())


def _admin_call(method: str, url: str, token: str, path: str, body: Any = None) -> Any:
    try:
        res = httpx.request(method, url.rstrip("/") + path, json=body, headers={"PRIVATE-TOKEN": token}, timeout=120)
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot reach {url}: {exc}[/red]")
        raise typer.Exit(1) from None
    if res.status_code >= 400:
        console.print(f"[red]{res.status_code}[/red] {res.text}")
        raise typer.Exit(1)
    return res.json()


UrlOpt = Annotated[str, typer.Option("--url", envvar="MOCKCOORD_URL", help="Coordinator base URL.")]
TokenOpt = Annotated[str, typer.Option("--admin-token", envvar="MOCKCOORD_ADMIN_TOKEN", help="Admin token.")]


@cli.command()
def seed(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Scenario (YAML or JSON).")],
    url: UrlOpt = "http://127.0.0.1:3000",
    admin_token: TokenOpt = DEFAULT_ADMIN_TOKEN,
) -> None:
    """Load a scenario into a running coordinator (atomic: all or nothing)."""
    data = yaml.safe_load(file.read_text())
    anchor_repository_paths(data, file.parent)
    console.print_json(json.dumps(_admin_call("POST", url, admin_token, "/-/mock/seed", data)))


@cli.command()
def reset(url: UrlOpt = "http://127.0.0.1:3000", admin_token: TokenOpt = DEFAULT_ADMIN_TOKEN) -> None:
    """Empty a running coordinator: database and storage."""
    console.print_json(json.dumps(_admin_call("POST", url, admin_token, "/-/mock/reset")))


def main() -> None:
    sys.exit(cli())
