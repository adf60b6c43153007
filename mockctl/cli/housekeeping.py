"""``mockcoord housekeeping``: GitLab's housekeeping workers run now, and the administrator
page's "expedite artifact removal", against a running coordinator (``/-/mock/housekeeping``);
``rehearse`` (``mockctl/cli/rehearse.py``) builds a backlog of its own and runs them over
simulated time."""

from __future__ import annotations

import json
import time
from enum import StrEnum
from typing import Annotated, Any

import typer

from mockctl.cli import rehearse
from mockctl.cli.common import DEFAULT_ADMIN_TOKEN, TokenOpt, UrlOpt, admin_call, console

app = typer.Typer(
    no_args_is_help=True, help="Run GitLab's artifact housekeeping now, expedite removal, or rehearse a backlog."
)
app.command("rehearse")(rehearse.rehearse)

ROWS = (
    ("artifacts", "artifacts"),
    ("artifacts_bytes", "artifact bytes"),
    ("expired_artifacts", "expired artifacts"),
    ("deleted_objects", "deleted objects queued"),
    ("deleted_objects_ready", "deleted objects ready"),
)


class Worker(StrEnum):
    expire = "expire"
    unknown = "unknown"
    delete_objects = "delete_objects"
    all = "all"


def before_after(before: dict[str, Any], after: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    table.add_column("")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    for key, label in ROWS:
        table.add_row(label, f"{before[key]:,}", f"{after[key]:,}")
    console.print(table)


@app.command("run")
def run(
    worker: Annotated[Worker, typer.Argument(help="unknown, expire, delete_objects, or all (in that order).")],
    url: UrlOpt = "http://127.0.0.1:3000",
    admin_token: TokenOpt = DEFAULT_ADMIN_TOKEN,
    output: Annotated[str, typer.Option(help="'json' (the API's answer) or 'table'.")] = "json",
) -> None:
    """Run a housekeeping cron worker now and show what it did.

    expire: ExpireBuildArtifactsWorker; unknown: Ci::UpdateLockedUnknownArtifactsWorker;
    delete_objects: Ci::ScheduleDeleteObjectsCronWorker. Exit 1 when a run failed (another run
    holding its lease, for one)."""
    if output not in ("json", "table"):
        raise typer.BadParameter("--output must be 'json' or 'table'")
    # A run lasts up to GitLab's five minutes a worker: no client timeout.
    done = admin_call("POST", url, admin_token, "/-/mock/housekeeping/run", {"worker": worker.value}, timeout=None)
    if output == "json":
        console.print_json(json.dumps(done))
    else:
        for r in done["runs"]:
            style = "green" if r["job_status"] == "done" else "red"
            result = ", ".join(f"{k} {v}" for k, v in r["result"].items()) or r.get("error_message") or "nothing"
            console.print(f"[{style}]{r['job_class']}[/{style}] {r['job_status']} in {r['duration_s']:.2f}s: {result}")
        before_after(done["before"], done["after"])
    if any(r["job_status"] != "done" for r in done["runs"]):
        raise typer.Exit(1)


@app.command("expedite")
def expedite(url: UrlOpt = "http://127.0.0.1:3000", admin_token: TokenOpt = DEFAULT_ADMIN_TOKEN) -> None:
    """Remove every deleted object now, as the admin page's console snippet does.

    Every pick_up_at set to now, then Ci::DeleteObjectsService until none is ready. A progress
    bar on a terminal, a line a second otherwise; counts before and after."""
    import httpx

    try:
        with httpx.stream(
            "POST",
            url.rstrip("/") + "/-/mock/housekeeping/expedite",
            headers={"PRIVATE-TOKEN": admin_token, "Accept": "application/x-ndjson"},
            timeout=httpx.Timeout(60, read=None),
        ) as res:
            if res.status_code >= 400:
                console.print(f"[red]{res.status_code}[/red] {res.read().decode(errors='replace')}")
                raise typer.Exit(1)
            done = _follow(json.loads(line) for line in res.iter_lines() if line)
    except httpx.HTTPError as exc:
        console.print(f"[red]cannot reach {url}: {exc}[/red]")
        raise typer.Exit(1) from None
    if done is None:
        console.print("[red]the coordinator stopped answering before the end[/red]")
        raise typer.Exit(1)
    failed = f", {done['failed']:,} failed (retried in 10 minutes)" if done["failed"] else ""
    console.print(f"removed {done['removed']:,} objects in {done['batches']:,} batches{failed}")
    before_after(done["before"], done["after"])


def _follow(steps: Any) -> dict[str, Any] | None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress: Progress | None = None
    task = None
    handled = 0
    last_line = 0.0
    try:
        for step in steps:
            if step["event"] == "start":
                total = step["made_ready"]
                console.print(f"{total:,} deleted objects made ready (pick_up_at = now)")
                if console.is_terminal:
                    progress = Progress(
                        TextColumn("removing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
                    )
                    progress.start()
                    task = progress.add_task("removing", total=total)
            elif step["event"] == "batch":
                handled += step["removed"] + step["failed"]
                if progress is not None and task is not None:
                    progress.update(task, completed=handled)
                elif time.monotonic() - last_line >= 1:
                    last_line = time.monotonic()
                    console.print(f"removed {handled:,}, {step['ready']:,} still ready", markup=False)
            elif step["event"] == "done":
                return step
    finally:
        if progress is not None:
            progress.stop()
    return None
