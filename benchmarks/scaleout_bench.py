"""The download decision with 1 and 2 Rails processes, side by side in one run (a ratio).

``GET /api/v4/jobs/:id/artifacts?direct_download=true`` answered 302 by ``mockcoord rails
--processes M`` directly (no Workhorse), on PostgreSQL, without GitLab's existence HEAD
(``MOCKCOORD_CHECK_OBJECT_EXISTS=false``: with it, moto's own CPU sets the pace; see
docs/benchmarks.md). Load: wrk in its own process, 2 threads, 10 connections. Rounds interleave
1 and 2 processes. Besides requests per second, each round's CPU seconds per thousand requests of
the Rails processes, wrk, the PostgreSQL backends serving the database and moto, read from ``/proc``: on a two-core
machine they all share the cores, and that decides how far a second Rails process can go.

Needs wrk (``apt-get install wrk``) and PostgreSQL at ``MOCKCOORD_CI_POSTGRES_URL``.
Usage: ``python benchmarks/scaleout_bench.py [--rounds 3] [--seconds 8]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
from coordinator_bench import PG_URL, fmt, mockcoord_rails, process, wait_http, wrk
from sqlalchemy.engine import make_url

from mockctl.ports import free_port

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def tree(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(p for c in children for p in tree(int(c)))]


def backends(database_url: str) -> list[int]:
    """PostgreSQL's processes serving this database (the server may serve others too)."""
    url = make_url(database_url)

    async def pids() -> list[int]:
        conn = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
        try:
            rows = await conn.fetch("select pid from pg_stat_activity where datname = $1", url.database)
            return [row["pid"] for row in rows if row["pid"] != conn.get_server_pid()]
        finally:
            await conn.close()

    return asyncio.run(pids())


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    seconds = {}
    for pid in pids:
        with contextlib.suppress(OSError):  # a process that ended meanwhile
            seconds[pid] = cpu_seconds(pid)
    return seconds


def measure(
    url: str, headers: dict[str, str], seconds: int, groups: dict[str, Callable[[], list[int]]]
) -> tuple[float, dict[str, float]]:
    """Requests per second, and CPU seconds per 1,000 requests of each group of processes (listed
    again afterwards: the connection pools open PostgreSQL backends under load)."""
    before = {name: cpu_by_pid(pids()) for name, pids in groups.items()}
    children = os.times()
    started = time.monotonic()
    rate = wrk(url, seconds, headers)
    elapsed = time.monotonic() - started
    after = os.times()
    requests = rate * seconds / 1000
    cpu = {}
    for name, pids in groups.items():
        now = cpu_by_pid(pids())
        cpu[name] = sum(used - before[name].get(pid, 0.0) for pid, used in now.items()) / requests
    wrk_cpu = after.children_user + after.children_system - children.children_user - children.children_system
    cpu["wrk"] = wrk_cpu / requests
    cpu["busy cores"] = sum(v * requests for v in cpu.values()) / elapsed
    return rate, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    print(f"machine: {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"load average before: {os.getloadavg()}")
    rates: dict[int, list[float]] = {1: [], 2: []}
    cpus: dict[int, list[dict]] = {1: [], 2: []}
    s3_port = free_port()
    with (
        tempfile.TemporaryDirectory() as tmp,
        process([sys.executable, "-m", "moto.server", "-p", str(s3_port)]) as moto,
    ):
        s3 = f"http://127.0.0.1:{s3_port}"
        wait_http(s3)
        for r in range(args.rounds):
            for processes in (1, 2):
                with mockcoord_rails(Path(tmp) / f"d{r}-{processes}", s3, PG_URL, False, processes) as (url, h, proc):
                    groups: dict[str, Callable[[], list[int]]] = {
                        "Rails": lambda: tree(proc.pid),  # with workers: uvicorn's supervisor, the workers
                        "PostgreSQL": lambda: backends(PG_URL),
                        "moto": lambda: [moto.pid],
                    }
                    rate, cpu = measure(url, h, args.seconds, groups)
                rates[processes].append(rate)
                cpus[processes].append(cpu)
                shown = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
                print(f"  round {r + 1}, {processes} Rails: {rate:,.0f} req/s; CPU s per 1k requests: {shown}")
    print(f"load average after: {os.getloadavg()}")
    ratio = statistics.median(rates[2]) / statistics.median(rates[1])
    print(f"\n2 Rails processes / 1: {ratio:.2f}x (medians)\n")
    print("| Rails processes | req/s min / median / max | CPU s / 1k requests: Rails / wrk / PG / moto | cores busy |")
    print("|---|---|---|---|")
    for processes in (1, 2):
        med = {k: statistics.median(c[k] for c in cpus[processes]) for k in cpus[processes][0]}
        split = " / ".join(f"{med[k]:.2f}" for k in ("Rails", "wrk", "PostgreSQL", "moto"))
        print(f"| {processes} | {fmt(rates[processes])} | {split} | {med['busy cores']:.2f} |")


if __name__ == "__main__":
    main()
