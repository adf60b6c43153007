"""Proxy against direct downloads under Locust, with nginx ``proxy_pass`` as the yardstick, in one run.

    python benchmarks/loadtest_bench.py [--sizes 10MiB,1GiB] [--users 1,10,50] [--big-users 1,10]
        [--duration 20] [--objects 2] [--out DIR]

Issue #15 ("Figures"): the throughput ratio proxy / direct, p50 / p99 latency, errors and
Workhorse's peak RSS at each concurrency and artifact size, and at the same concurrency, on the
same objects in the same object store, nginx in front of that store with its default
``proxy_pass`` and tuned (``proxy_buffering off; proxy_buffer_size 1m``, as workhorse_bench), and
nginx doing Workhorse's job: each download authorized by the same Rails request (``auth_request``),
then streamed as tuned.

It reuses ``mockcoord loadtest`` rather than a load loop of its own: the stack it starts
(``local_stack``: moto, Rails, Workhorse, each its own process), its seeding, and one
``run_mode`` per cell (a headless Locust run, every byte hashed and checked, the processes
sampled with psutil). direct and proxy are the runner users (``DirectDownloadUser``,
``ProxyDownloadUser``); the runner cannot talk to nginx (it asks the coordinator, not a store), so
the nginx cells are ``UrlDownloadUser``: the same Locust user, bridge and runner HTTP client
(httpx) with a plain GET of the object's presigned URL (and the job token), aimed at nginx's port. nginx is started
with workhorse_bench's ``start_nginx``. The five configurations run back to back at each
concurrency (their order rotated per level) so the machine's drift hits them alike; ratios are
taken within a level. A 10 MiB cell runs ``--duration`` seconds; a 1 GiB cell runs
``BIG_RUN_TIME`` seconds and then lets every transfer under way finish (Locust's stop timeout,
computed from the users, the size and a floor rate), so at 50 users each user completes one.
"""

# The stack and nginx start before anything is timed; blocking calls there are fine.
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import psutil
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from workhorse_bench import start_nginx, wait_port  # noqa: E402

from mockctl.loadtest.options import LoadOptions, parse_size  # noqa: E402
from mockctl.loadtest.run import run_mode, seed  # noqa: E402
from mockctl.loadtest.sampler import INTERVAL  # noqa: E402
from mockctl.loadtest.stack import Target, local_stack  # noqa: E402
from mockctl.ports import free_port  # noqa: E402
from runner_client.load.plan import Plan  # noqa: E402

MIB, GIB = 1 << 20, 1 << 30
CONFIGS = ("direct", "proxy", "nginx default", "nginx tuned", "nginx authorizing")
# What Workhorse's proxy does, done by nginx: each download authorized by the same Rails request
# (auth_request, the job token passed on; Rails answers it as it answers Workhorse), then the store
# streamed as tuned. Rails' connections are kept alive, as Workhorse keeps them.
AUTHORIZING = r"""
    map $request_uri $authorizing_job {{ "~^/auth/(?<job>\d+)/" $job; default 0; }}
    upstream rails {{ server {rails}; keepalive 64; }}
    server {{ listen 127.0.0.1:{port};
        location /auth/ {{
            auth_request /_authorize;
            rewrite ^/auth/\d+(/.*)$ $1 break;
            proxy_pass http://{store}; proxy_buffering off; proxy_buffer_size 1m;
            proxy_buffers 4 1m; proxy_busy_buffers_size 2m; }}
        location = /_authorize {{ internal;
            proxy_pass http://rails/api/v4/jobs/$authorizing_job/artifacts;
            proxy_pass_request_body off; proxy_set_header Content-Length "";
            proxy_http_version 1.1; proxy_set_header Connection ""; }} }}
"""
BIG = 256 * MIB  # from this size on a cell is one request per user, let finish
BIG_RUN_TIME = 15.0  # seconds of a big cell's run; transfers under way then finish
FLOOR_MIB_S = 100.0  # the slowest aggregate rate a big cell's stop timeout allows for
SETTLE = 3.0  # seconds between cells (the object store collects every 5 s)


def timing(size: int, users: int, duration: float) -> tuple[float, float]:
    """A cell's Locust run time and stop timeout (seconds)."""
    if size < BIG:
        return duration, 30.0
    return BIG_RUN_TIME, math.ceil(users * size / MIB / FLOOR_MIB_S) + 30.0


def presigned_urls(plan: Plan) -> list[str]:
    """Each object's presigned store URL, as Rails' 302 for ``direct_download=true`` gives it."""
    urls = []
    with httpx.Client(timeout=30) as http:
        for obj in plan.objects:
            res = http.get(
                f"{plan.url}/api/v4/jobs/{obj.job_id}/artifacts?direct_download=true",
                headers={"JOB-TOKEN": plan.reader_token},
            )
            if res.status_code != 302:
                raise RuntimeError(f"job {obj.job_id}: expected a 302, got {res.status_code}")
            urls.append(res.headers["Location"])
    return urls


def cpu_seconds(processes: dict[str, Any], name: str) -> float:
    """CPU seconds of one sampled process over the cell (``cpu`` is % of a core every INTERVAL)."""
    return sum(processes.get(name, {}).get("cpu", [])) / 100 * INTERVAL


def run_size(size: int, users_levels: list[int], args: argparse.Namespace, console: Console) -> list[dict[str, Any]]:
    """One stack and one nginx for ``size``; at each level the five configurations in turn."""
    work = args.out / f"{size // MIB}MiB"
    seed_options = LoadOptions(
        mode="compare",
        users=1,
        spawn_rate=1,
        duration=1,
        artifact_size=size,
        objects=args.objects,
        locust_workers=0,
        out=work,
    )
    cells: list[dict[str, Any]] = []
    with local_stack(work / "stack") as target:
        plan = seed(seed_options, target, console)
        console.print(f"seeded {len(plan.objects)} x {size // MIB} MiB")
        tmp = Path(tempfile.mkdtemp(prefix="ltbench-nginx"))
        tmp.chmod(0o755)  # nginx's workers (not root) spool under it
        store_host, authorizing_port = target.object_store.removeprefix("http://"), free_port()
        rails_host = target.rails.removeprefix("http://")
        authorizing = AUTHORIZING.format(rails=rails_host, port=authorizing_port, store=store_host)
        nginx, default_port, tuned_port = start_nginx(
            tmp, store_host, worker_connections=4 * max(users_levels) + 64, extra=authorizing
        )
        try:
            for port in (default_port, tuned_port, authorizing_port):
                wait_port(port)
            workers = psutil.Process(nginx.pid).children()
            sampled = Target(target.url, target.admin_token, target.processes | {"nginx": workers[0].pid})
            urls = presigned_urls(plan)

            def fronted(port: int, auth: bool = False) -> Plan:
                """The plan with each presigned URL sent to nginx's ``port`` (under ``/auth/<job>``)."""
                fronts = [f"http://127.0.0.1:{port}" + (f"/auth/{obj.job_id}" if auth else "") for obj in plan.objects]
                moved = [url.replace(target.object_store, front) for url, front in zip(urls, fronts, strict=True)]
                return replace(plan, urls=moved)

            plans = {
                "direct": plan,
                "proxy": plan,
                "nginx default": fronted(default_port),
                "nginx tuned": fronted(tuned_port),
                "nginx authorizing": fronted(authorizing_port, auth=True),
            }
            for level, users in enumerate(users_levels):
                run_time, stop_timeout = timing(size, users, args.duration)
                order = CONFIGS[level % len(CONFIGS) :] + CONFIGS[: level % len(CONFIGS)]
                for config in order:
                    mode = config if config in ("direct", "proxy") else "url"
                    options = replace(
                        seed_options,
                        mode="direct",
                        users=users,
                        spawn_rate=users,
                        duration=run_time,
                        out=work / f"{users}u-{config.replace(' ', '-')}",
                    )
                    options.out.mkdir(parents=True, exist_ok=True)
                    started = time.time()
                    figures = run_mode(mode, options, plans[config], sampled, console, stop_timeout)
                    gib = figures["bytes_verified"] / GIB
                    processes = figures["processes"]
                    cell = {
                        "size": size,
                        "users": users,
                        "config": config,
                        "run_time": run_time,
                        "stop_timeout": stop_timeout,
                        "wall": time.time() - started,
                        "requests": figures["requests"],
                        "failures": figures["failures"],
                        "failures_by_kind": figures["failures_by_kind"],
                        "mib_s": figures["throughput_mib_s"],
                        "p50_ms": figures["latency_ms"]["p50"],
                        "p99_ms": figures["latency_ms"]["p99"],
                        "gib": gib,
                        "workhorse_peak_rss": processes.get("workhorse", {}).get("peak_rss", 0),
                        "cpu_s": {name: cpu_seconds(processes, name) for name in processes},
                    }
                    (options.out / "figures.json").write_text(json.dumps(figures | {"cell": cell}, indent=1))
                    cells.append(cell)
                    console.print(
                        f"{size // MIB} MiB, {users} users, {config}: {cell['mib_s']:.0f} MiB/s, "
                        f"{cell['requests']} requests, {cell['failures']} failed"
                    )
                    time.sleep(SETTLE)
        finally:
            nginx.terminate()
            nginx.wait(15)
            shutil.rmtree(tmp, ignore_errors=True)
    return cells


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def _size(size: int) -> str:
    return f"{size // GIB} GiB" if size >= GIB else f"{size // MIB} MiB"


def table(cells: list[dict[str, Any]]) -> str:
    """Ratios first, then the figures of each configuration (direct / proxy / nginx default /
    tuned / authorizing)."""
    five = "d / p / nd / nt / na"
    rows = [
        "| size | users | proxy/direct | proxy/nginx default | proxy/nginx tuned | proxy/nginx authorizing "
        f"| MiB/s {five} | p50 s {five} | p99 s {five} | requests (errors) {five} "
        "| Workhorse peak RSS (proxy cell) "
        "| CPU s/GiB: Workhorse + Rails (proxy) / nginx default / nginx tuned / nginx + Rails (authorizing) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(c["size"], c["users"]) for c in cells})
    for size, users in keys:
        by = {c["config"]: c for c in cells if (c["size"], c["users"]) == (size, users)}
        configs = d, p, nd, nt, na = tuple(by[k] for k in CONFIGS)

        def per_gib(cell: dict[str, Any], *names: str) -> str:
            shares = [f"{cell['cpu_s'].get(name, 0) / cell['gib']:.2f}" if cell["gib"] else "-" for name in names]
            return " + ".join(shares)

        def each(fmt: str, key: str, configs: tuple[dict[str, Any], ...] = configs, scale: float = 1) -> str:
            return " / ".join(fmt.format((c[key] or 0) * scale) for c in configs)

        counts = " / ".join(f"{c['requests']} ({c['failures']})" for c in configs)
        ratios = " | ".join(_ratio(p["mib_s"], c["mib_s"]) for c in (d, nd, nt, na))
        cpu = [per_gib(p, "workhorse", "rails"), per_gib(nd, "nginx"), per_gib(nt, "nginx")]
        cpu.append(per_gib(na, "nginx", "rails"))
        rows.append(
            f"| {_size(size)} | {users} | {ratios} | {each('{:.0f}', 'mib_s')} "
            f"| {each('{:.2f}', 'p50_ms', scale=1e-3)} | {each('{:.2f}', 'p99_ms', scale=1e-3)} | {counts} "
            f"| {p['workhorse_peak_rss'] / MIB:.0f} MiB | {' / '.join(cpu)} |"
        )
    return "\n".join(rows) + "\n"


def aims(cells: list[dict[str, Any]]) -> str:
    """Met / not met, per the issue: proxy >= nginx default and >= 0.9 nginx tuned at every
    level; Workhorse peak RSS flat as users grow; no errors."""
    lines = []
    keys = sorted({(c["size"], c["users"]) for c in cells})
    mib = {(c["size"], c["users"], c["config"]): c["mib_s"] for c in cells}
    worst_default = min(mib[(s, u, "proxy")] / mib[(s, u, "nginx default")] for s, u in keys)
    worst_tuned = min(mib[(s, u, "proxy")] / mib[(s, u, "nginx tuned")] for s, u in keys)
    met = {True: "met", False: "NOT met"}
    lines.append(f"- proxy >= nginx default at every level: {met[worst_default >= 1]} (lowest {worst_default:.2f})")
    lines.append(f"- proxy >= 0.9 x nginx tuned at every level: {met[worst_tuned >= 0.9]} (lowest {worst_tuned:.2f})")
    authorizing = [mib[(s, u, "proxy")] / mib[(s, u, "nginx authorizing")] for s, u in keys]
    lines.append(
        f"- (context, no aim) proxy / nginx authorizing through the same Rails: {min(authorizing):.2f} to "
        f"{max(authorizing):.2f}"
    )
    for size in sorted({s for s, _ in keys}):
        rss = {c["users"]: c["workhorse_peak_rss"] / MIB for c in cells if c["size"] == size and c["config"] == "proxy"}
        levels = sorted(rss)
        growth = rss[levels[-1]] / rss[levels[0]] if rss[levels[0]] else 0
        shown = ", ".join(f"{u} users {rss[u]:.0f} MiB" for u in levels)
        verdict = "met" if growth <= 1.25 else "NOT met"
        lines.append(f"- Workhorse peak RSS flat ({_size(size)}, proxy cells): {verdict} ({shown}; {growth:.2f}x)")
    errors = sum(c["failures"] for c in cells)
    lines.append(f"- errors: {errors} {'(met: 0)' if not errors else '(NOT met)'}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10MiB,1GiB", help="artifact sizes, comma-separated")
    parser.add_argument("--users", default="1,10,50", help="concurrency levels, comma-separated")
    parser.add_argument(
        "--big-users", default=None, help="concurrency levels for sizes from 256 MiB (default: --users)"
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of a small-artifact cell")
    parser.add_argument("--objects", type=int, default=2, help="artifacts seeded per size (users take them in turn)")
    parser.add_argument("--out", type=Path, default=None, help="where each cell's figures go (default: a temp dir)")
    args = parser.parse_args()
    args.out = args.out or Path(tempfile.mkdtemp(prefix="loadtest-bench-"))
    console = Console(stderr=True)
    load_before = os.getloadavg()
    started = time.time()
    cells: list[dict[str, Any]] = []
    for size in (parse_size(s) for s in args.sizes.split(",")):
        levels = args.big_users if size >= BIG and args.big_users else args.users
        cells += run_size(size, [int(u) for u in levels.split(",")], args, console)
    load_after = os.getloadavg()
    (args.out / "cells.json").write_text(json.dumps(cells, indent=1))
    head = (
        f"### Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}: {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, {(time.time() - started) / 60:.1f} min; load average "
        f"{' '.join(f'{x:.2f}' for x in load_before)} before, {' '.join(f'{x:.2f}' for x in load_after)} after\n"
    )
    total_wh = sum(c["cpu_s"].get("workhorse", 0) for c in cells if c["config"] == "proxy")
    total_gib = sum(c["gib"] for c in cells if c["config"] == "proxy")
    medians = statistics.median([c["wall"] for c in cells])
    print(head)
    print(table(cells))
    print(aims(cells))
    print(f"- Workhorse CPU over all proxy cells: {total_wh / total_gib:.2f} s/GiB; median cell {medians:.0f} s")
    print(f"- cells' figures: {args.out}")


if __name__ == "__main__":
    main()
