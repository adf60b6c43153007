"""``mockcoord loadtest``: runner-like load on a coordinator, and the report of it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mockctl.cli.common import console


def loadtest(
    mode: Annotated[
        str, typer.Option(help="direct (302 to object storage), proxy (Workhorse send-url), upload, or compare.")
    ] = "compare",
    users: Annotated[int, typer.Option(help="Concurrent runner-like users.")] = 2,
    spawn_rate: Annotated[float, typer.Option(help="Users started per second.")] = 10.0,
    duration: Annotated[str, typer.Option(help="Length of each mode's run: 30s, 2m, or seconds.")] = "30s",
    artifact_size: Annotated[str, typer.Option(help="Bytes of each artifact: 10MiB, 1GiB, ...")] = "10MiB",
    objects: Annotated[int, typer.Option(help="Artifacts seeded for the downloads (users take them in turn).")] = 1,
    locust_workers: Annotated[
        int, typer.Option(help="0: one Locust process; N: Locust's master and N workers on this machine.")
    ] = 0,
    out: Annotated[Path, typer.Option(help="Where report.json, report.html and the run's logs go.")] = Path(
        "loadtest-report"
    ),
    fault: Annotated[
        str | None,
        typer.Option(help="A fault rule in force during the run, as /-/mock/faults takes it: JSON, or a file of it."),
    ] = None,
    url: Annotated[str | None, typer.Option(help="A running coordinator; unset: start one on free ports.")] = None,
    admin_token: Annotated[
        str | None, typer.Option(envvar="MOCKCOORD_ADMIN_TOKEN", help="Its admin PRIVATE-TOKEN (with --url).")
    ] = None,
    seed_only: Annotated[
        bool, typer.Option("--seed-only", help="Seed, write plan.json to --out, and stop (for Locust by hand).")
    ] = False,
    from_records: Annotated[
        list[Path] | None,
        typer.Option(
            "--from-records",
            help="Run nothing: write the report of a Locust run made by hand, from the records file(s) "
            "its master wrote (--mockcoord-records). Repeatable.",
        ),
    ] = None,
) -> None:
    """Load a coordinator with runner-like Locust users; write report.json and report.html."""
    from mockctl.loadtest.options import LoadOptions, OptionError, parse_duration, parse_fault, parse_size
    from mockctl.loadtest.run import report_from_records, run_load
    from mockctl.loadtest.stack import TargetError

    try:
        if from_records:
            if seed_only or url:
                raise OptionError("--from-records runs nothing: it cannot go with --url or --seed-only")
            report = report_from_records(from_records, out)
        else:
            options = LoadOptions(
                mode=mode,
                users=users,
                spawn_rate=spawn_rate,
                duration=parse_duration(duration),
                artifact_size=parse_size(artifact_size),
                objects=objects,
                locust_workers=locust_workers,
                out=out,
                fault=parse_fault(fault),
                url=url,
                admin_token=admin_token if url else None,
            )
            report = run_load(options, console, seed_only)
    except (OptionError, TargetError) as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(2) from None
    except RuntimeError as exc:
        console.print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from None
    if report is None:
        console.print(f"plan: {out / 'plan.json'} (give it to Locust as --mockcoord-plan)", markup=False)
        return
    for name, m in report["modes"].items():
        lat = m["latency_ms"]
        console.print(
            f"{name}: {m['requests']} requests, {m['failures']} failed, {m['throughput_mib_s']:.1f} MiB/s, "
            f"p50 {lat['p50'] or 0:.0f} ms p99 {lat['p99'] or 0:.0f} ms, {m['retries']['retries']} retries",
            markup=False,
        )
    if report["compare"]:
        ratio = report["compare"]["throughput_ratio_proxy_to_direct"]
        console.print(f"proxy/direct throughput: {ratio:.2f}" if ratio else "proxy/direct: no throughput to compare")
    console.print(f"report: {out / 'report.html'} and {out / 'report.json'}", markup=False)
