"""``mockcoord flows``: GitLab's artifact download flows drawn from real traffic."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mockctl.cli.common import DEFAULT_ADMIN_TOKEN, console

if TYPE_CHECKING:
    from mockctl.flow_reproduce import Kind

app = typer.Typer(no_args_is_help=True, help="Draw GitLab's artifact download and upload flows from real traffic.")


@app.command("reproduce")
def flows_reproduce(
    kind: Annotated[str, typer.Argument(help="direct, proxy, denied or upload")],
    url: Annotated[str | None, typer.Option(help="A running coordinator; unset: start one in-process.")] = None,
    admin_token: Annotated[str, typer.Option(envvar="MOCKCOORD_ADMIN_TOKEN")] = DEFAULT_ADMIN_TOKEN,
    storage: Annotated[str, typer.Option(help="For the in-process coordinator: 's3' or 'local'.")] = "s3",
) -> None:
    """Run one download (or upload) the way a runner does and print its Mermaid sequence diagram."""
    import httpx

    from mockctl.flow_reproduce import KINDS

    if kind not in KINDS:
        raise typer.BadParameter(f"kind must be one of {', '.join(KINDS)}")
    try:
        print(asyncio.run(_reproduce(kind, url, admin_token, storage)), end="")
    except (httpx.HTTPError, RuntimeError) as exc:
        where = f"{url}: " if url and isinstance(exc, httpx.TransportError) else ""
        console.print(f"{where}{exc}", style="red", markup=False)
        raise typer.Exit(1) from None


async def _reproduce(kind: Kind, url: str | None, admin_token: str, storage: str) -> str:
    from app.config import Settings
    from mockctl.flow_reproduce import reproduce
    from mockctl.ports import free_port
    from mockctl.stack import running_stack

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
