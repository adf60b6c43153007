"""Artifact housekeeping at scale, against GitLab's own pace (issue 13, "Scale and performance").

1. ``rows``: expired unlocked artifacts moved to ``ci_deleted_objects`` per second by
   ``ExpireBuildArtifactsWorker`` (``DestroyAllExpiredService`` + ``DestroyBatchService``): with the
   limits lifted (10,000 a batch, as many passes as the rows need, so no idle tail) and with
   GitLab's (100 a batch, 500 passes: one run's 50,000 rows). SQLite and PostgreSQL. GitLab's pace
   is 100 x 500 = 50,000 a run every seven minutes, about 120 a second.
2. ``objects``: objects removed from an S3 endpoint per second by
   ``Ci::ScheduleDeleteObjectsCronWorker`` (20 ``Ci::DeleteObjectsWorker`` jobs, each claiming a
   batch and removing it with one ``DeleteObjects`` request) against the store's own bulk-delete
   rate: boto3 ``delete_objects`` of the same keys, 1,000 a request. moto runs as its own process;
   rounds interleaved; the ratio is taken round by round.
3. ``rehearse``: ``mockcoord housekeeping rehearse --artifacts N --days D`` as a child process, per
   size given: wall time and the child's peak RSS (memory should not grow with the table).

The population is the rehearsal's own (``mockctl.rehearsal.population``: set-based SQL). PostgreSQL
at ``MOCKCOORD_CI_POSTGRES_URL`` (default 127.0.0.1:5432, database ``test``; its tables are
dropped). Loopback only, every loop bounded.
Usage: ``python benchmarks/housekeeping_bench.py [--parts rows,objects,rehearse] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx
from sqlalchemy import func, select

from app import clock
from app.config import Settings
from app.db import Database
from app.instrumentation import Instrument
from app.main import start, stop
from app.models import DeletedObject
from app.state import AppState
from app.workers.cron import CRON_WORKERS
from mockctl.ports import free_port
from mockctl.rehearsal.objects import write_objects
from mockctl.rehearsal.options import RehearsalOptions
from mockctl.rehearsal.population import populate

PG_URL = os.environ.get("MOCKCOORD_CI_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
EXPIRE = CRON_WORKERS["expire_build_artifacts_worker"]
DELETE = CRON_WORKERS["ci_schedule_delete_objects_worker"]
KEYS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench-secret"}


def lifted(rows: int) -> dict[str, Any]:
    return {
        "expire_batch_size": 10_000,
        "expire_loop_limit": max(1, math.ceil(rows / 10_000)),
        "loop_timeout_seconds": 3600,
        "lease_timeout_seconds": 3900,
    }


async def fresh_state(url: str, data: Path, limits: dict[str, Any], endpoint: str | None = None) -> AppState:
    db = Database(url)
    await db.drop_all()
    await db.dispose()
    object_store: dict[str, Any] = {"enabled": False}
    if endpoint:
        object_store = {
            "enabled": True,
            "connection": {"endpoint": endpoint, **KEYS},
            "objects": {"artifacts": {"bucket": "bench"}},
        }
    settings = Settings(data_dir=data, database_url=url, redis_url=None, object_store=object_store, housekeeping=limits)
    return await start(settings, Instrument())


async def populated(state: AppState, rows: int) -> None:
    opts = RehearsalOptions(artifacts=rows, expired_share=1.0, refs=1, projects=10)
    await populate(state.db, opts, clock.now().replace(microsecond=0), state.store.remote)


async def moved(state: AppState) -> int:
    async with state.db.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(DeletedObject))).scalar_one())


async def rows_round(url: str, rows: int, limits: dict[str, Any]) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        state = await fresh_state(url, Path(tmp), limits)
        try:
            await populated(state, rows)
            began = time.perf_counter()
            await EXPIRE(state).perform()
            seconds = time.perf_counter() - began
            n = await moved(state)
        finally:
            await stop(state)
    return n / seconds, n


def bench_rows(rounds: int, rows: int, urls: dict[str, str]) -> None:
    print(f"\n## rows moved to ci_deleted_objects per second ({rows:,} expired unlocked rows a round)")
    print("| database | limits | rows a run | rows/s min / median / max |")
    print("|---|---|---|---|")
    for name, url in urls.items():
        for label, limits in (("lifted (10,000 a batch)", lifted(rows)), ("GitLab's (100 x 500)", {})):
            rates = []
            for _ in range(rounds):
                rate, n = asyncio.run(rows_round(url, rows, limits))
                rates.append(rate)
            print(f"| {name} | {label} | {n:,} | {fmt(rates)} |")


@contextmanager
def moto_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def bulk_delete(client: Any, keys: list[str]) -> float:
    """The store's own rate: boto3 ``delete_objects``, 1,000 keys a request, one after another."""
    began = time.perf_counter()
    for first in range(0, len(keys), 1000):
        chunk = keys[first : first + 1000]
        client.delete_objects(Bucket="bench", Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
    return len(keys) / (time.perf_counter() - began)


def count_objects(client: Any) -> int:
    return sum(page.get("KeyCount", 0) for page in client.get_paginator("list_objects_v2").paginate(Bucket="bench"))


async def objects_round(url: str, endpoint: str, count: int, batch: int, client: Any) -> tuple[float, float]:
    limits = {**lifted(count), "delete_objects_batch_size": batch}
    with tempfile.TemporaryDirectory() as tmp:
        state = await fresh_state(url, Path(tmp), limits, endpoint)
        try:
            await populated(state, count)
            keys = await write_objects(state.db, state.store, 0, count)
            assert count_objects(client) == count
            await EXPIRE(state).perform()  # every expired row to ci_deleted_objects, ready now
            queued = await moved(state)  # the latest pipeline of each project stays (keep-latest)
            began = time.perf_counter()
            result = await DELETE(state).perform()
            worker_rate = result["removed_count"] / (time.perf_counter() - began)
            assert result["removed_count"] == queued and count_objects(client) == count - queued, result
            for first in range(0, len(keys), 500):  # the same keys back, for the store's own delete
                await asyncio.gather(*(state.store.put_bytes(k, b"rehearsal\n") for k in keys[first : first + 500]))
        finally:
            await stop(state)
    store_rate = await asyncio.to_thread(bulk_delete, client, keys)
    assert count_objects(client) == 0
    return worker_rate, store_rate


def bench_objects(rounds: int, count: int, url: str) -> None:
    print(f"\n## objects removed from S3 (moto, own process) per second ({count:,} objects a round)")
    print(
        "| DeleteObjects batch | worker objects/s (median) | boto3 delete_objects/s (median) | ratio min/median/max |"
    )
    print("|---|---|---|---|")
    with moto_server() as endpoint:
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **KEYS)
        client.create_bucket(Bucket="bench")
        for batch in (100, 1000):
            worker, store, ratios = [], [], []
            for _ in range(rounds):
                w, s = asyncio.run(objects_round(url, endpoint, count, batch, client))
                worker.append(w)
                store.append(s)
                ratios.append(w / s)
            label = f"{batch} (GitLab's)" if batch == 100 else f"{batch} (lifted)"
            print(
                f"| {label} | {statistics.median(worker):,.0f} | {statistics.median(store):,.0f} | "
                f"{min(ratios):.2f} / {statistics.median(ratios):.2f} / {max(ratios):.2f} |"
            )


def bench_rehearse(sizes: list[int], days: float, url: str) -> None:
    print(f"\n## mockcoord housekeeping rehearse --days {days:g} (PostgreSQL)")
    print("| --artifacts | wall time | peak RSS | forecast |")
    print("|---|---|---|---|")
    for size in sizes:
        with tempfile.TemporaryDirectory() as out:
            args = [sys.executable, "-m", "app", "housekeeping", "rehearse", "--artifacts", str(size)]
            args += ["--days", str(days), "--database-url", url, "--replace", "--out", out]
            began = time.perf_counter()
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            assert proc.stdout is not None
            output = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - began
            if status:
                raise RuntimeError(f"rehearse failed:\n{output[-3000:]}")
            forecast = Path(out, "forecast.txt").read_text().strip()
            print(f"| {size:,} | {wall / 60:.1f} min | {usage.ru_maxrss / 1024:.0f} MiB | {forecast} |")


def fmt(values: list[float]) -> str:
    return " / ".join(f"{v:,.0f}" for v in (min(values), statistics.median(values), max(values)))


def pg_reachable() -> bool:
    async def ping() -> None:
        db = Database(PG_URL)
        try:
            await db.ping()
        finally:
            await db.dispose()

    try:
        asyncio.run(ping())
        return True
    except Exception:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="rows,objects", help="comma-separated: rows, objects, rehearse")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--rehearse-sizes", default="200000,2000000")
    parser.add_argument("--days", type=float, default=3)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    print(f"# {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, {time.strftime('%F')}")
    with tempfile.TemporaryDirectory() as tmp:
        urls = {"SQLite": f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"}
        if not args.no_postgres and pg_reachable():
            urls["PostgreSQL"] = PG_URL
        if "rows" in parts:
            bench_rows(args.rounds, args.rows, urls)
        if "objects" in parts:
            bench_objects(args.rounds, args.objects, urls.get("PostgreSQL", urls["SQLite"]))
        if "rehearse" in parts:
            if "PostgreSQL" not in urls:
                raise SystemExit(f"rehearse needs PostgreSQL at {PG_URL}")
            bench_rehearse([int(s) for s in args.rehearse_sizes.split(",")], args.days, urls["PostgreSQL"])


if __name__ == "__main__":
    main()
