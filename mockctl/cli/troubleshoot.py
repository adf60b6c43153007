"""``mockcoord troubleshoot``: the cases of GitLab's job-artifacts troubleshooting page."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from mockctl.cli.common import console


def troubleshoot(
    scenario: Annotated[
        str | None,
        typer.Argument(help="A scenario file, or the name of one in scenarios/ (500-missing-region); none: list them."),
    ] = None,
    fixed: Annotated[bool, typer.Option("--fixed", help="Apply the page's fix and check the upload succeeds.")] = False,
) -> None:
    """Reproduce a case of GitLab's job-artifacts troubleshooting page on a private coordinator."""
    import httpx
    import yaml

    from mockctl import troubleshooting

    if scenario is None:
        for path in troubleshooting.available():
            case = troubleshooting.load(path)
            console.print(f"{path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}  {case.title}")
        return
    path = troubleshooting.find(scenario)
    if path is None:
        console.print(
            f"{scenario}: no such file, nor a scenario of `mockcoord troubleshoot`", style="red", markup=False
        )
        raise typer.Exit(2)
    try:
        case = troubleshooting.load(path)
    except (ValueError, yaml.YAMLError) as exc:
        console.print(f"{path}: {exc}", style="red", markup=False)
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
