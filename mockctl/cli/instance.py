"""``mockcoord seed`` and ``reset``: load a scenario into, or empty, a running coordinator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mockctl.cli.common import DEFAULT_ADMIN_TOKEN, TokenOpt, UrlOpt, admin_call, console


def seed(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Scenario (YAML or JSON).")],
    url: UrlOpt = "http://127.0.0.1:3000",
    admin_token: TokenOpt = DEFAULT_ADMIN_TOKEN,
) -> None:
    """Load a scenario into a running coordinator (atomic: all or nothing)."""
    from mockctl.seed.scenario_file import ScenarioFileError, read_scenario_file

    try:
        data = read_scenario_file(file)
    except ScenarioFileError as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None
    console.print_json(json.dumps(admin_call("POST", url, admin_token, "/-/mock/seed", data)))


def reset(url: UrlOpt = "http://127.0.0.1:3000", admin_token: TokenOpt = DEFAULT_ADMIN_TOKEN) -> None:
    """Empty a running coordinator: database and storage."""
    console.print_json(json.dumps(admin_call("POST", url, admin_token, "/-/mock/reset")))
