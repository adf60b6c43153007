"""``mockcoord housekeeping``: GitLab's artifact housekeeping from the administrator's side."""

from __future__ import annotations

import typer

from mockctl.cli import rehearse

app = typer.Typer(no_args_is_help=True, help="Artifact housekeeping: rehearse a backlog before GitLab drains it.")
app.command("rehearse")(rehearse.rehearse)
