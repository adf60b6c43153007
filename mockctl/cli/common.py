"""What every ``mockcoord`` command group shares: the console, option types, settings from
flags, the loopback guard and calls to a running coordinator's control plane.

Kept light: ``mockcoord --help`` imports this and nothing heavier (application modules are
imported inside the commands that need them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from app.config import DEFAULT_ADMIN_TOKEN, Settings

console = Console(highlight=False, soft_wrap=True)


def setting_default(name: str) -> str:
    """What ``--help`` shows for a flag left unset: the setting's own default (``MOCKCOORD_*``
    variables still win over it, so the flag's Python default stays None)."""
    return str(Settings.model_fields[name].default)


HostOpt = Annotated[
    str | None, typer.Option("--host", help="Address to bind (MOCKCOORD_HOST).", show_default=setting_default("host"))
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (MOCKCOORD_DATA_DIR).", show_default=setting_default("data_dir")),
]
DbOpt = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy async URL (MOCKCOORD_DATABASE_URL).")]
RedisOpt = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        help="redis://host:port/db for exclusive leases, cron fire times and the shared clock "
        "(MOCKCOORD_REDIS_URL); unset: the database.",
    ),
]
StorageOpt = Annotated[str | None, typer.Option("--storage", help="'s3' (object storage) or 'local' (disk).")]
S3EndpointOpt = Annotated[str | None, typer.Option("--s3-endpoint", help="External S3 endpoint; unset: embedded moto.")]
S3RegionOpt = Annotated[str | None, typer.Option("--s3-region", help="Object storage region.")]
BucketOpt = Annotated[str | None, typer.Option("--bucket", help="Artifacts bucket ('bucket' or 'bucket/prefix').")]
PathStyleOpt = Annotated[bool | None, typer.Option("--path-style/--virtual-host-style")]
GitlabVersionOpt = Annotated[
    str | None,
    typer.Option(
        "--gitlab-version",
        help="GitLab release whose housekeeping to imitate: '15.2', '16.1', ... (MOCKCOORD_GITLAB_VERSION).",
        show_default=setting_default("gitlab_version"),
    ),
]


def check_storage(storage: str | None) -> None:
    if storage not in (None, "s3", "local"):
        raise typer.BadParameter("--storage must be 's3' or 'local'")


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
    from pydantic import ValidationError

    try:
        return Settings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:  # a flag's or a MOCKCOORD_* variable's value: one line naming it
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        console.print(f"setting {where}: {first['msg']}", style="red", markup=False)
        raise typer.Exit(2) from None


def refuse_unsafe_bind(settings: Settings) -> None:
    if not settings.binds_only_loopback() and settings.admin_token == DEFAULT_ADMIN_TOKEN:
        console.print(
            f"[red]Refusing to bind {settings.host} with the default admin token.[/red] "
            "Set MOCKCOORD_ADMIN_TOKEN or --admin-token."
        )
        raise typer.Exit(2)


UrlOpt = Annotated[str, typer.Option("--url", envvar="MOCKCOORD_URL", help="Coordinator base URL.")]
TokenOpt = Annotated[str, typer.Option("--admin-token", envvar="MOCKCOORD_ADMIN_TOKEN", help="Admin token.")]


def admin_call(method: str, url: str, token: str, path: str, body: Any = None, timeout: float | None = 120) -> Any:
    import httpx

    try:
        res = httpx.request(
            method, url.rstrip("/") + path, json=body, headers={"PRIVATE-TOKEN": token}, timeout=timeout
        )
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot reach {url}: {exc}[/red]")
        raise typer.Exit(1) from None
    if res.status_code >= 400:
        console.print(f"[red]{res.status_code}[/red] {res.text}")
        raise typer.Exit(1)
    return res.json()
