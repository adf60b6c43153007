"""Coordinator-core benchmarks, side by side in one run (ratios, rounds interleaved).

1. The download decision: ``GET /api/v4/jobs/:id/artifacts?direct_download=true``
   answering 302 (mockcoord on SQLite and on PostgreSQL, with and without GitLab's
   object-existence HEAD) against a bare FastAPI route that presigns the same object
   with the same library (aioboto3) and answers 302. Load: wrk, 10 connections.
2. Time from ``mockcoord serve`` to ready (first ``/-/readiness`` 200, and the banner).
3. ``POST /-/mock/reset`` with a small scenario loaded.

Needs ``wrk`` (Debian: ``apt-get install wrk``) and, for the PostgreSQL rows, a server
at ``MOCKCOORD_CI_POSTGRES_URL`` (default 127.0.0.1:5432, database ``test``).
Loopback only; every loop is bounded. Usage: ``python benchmarks/coordinator_bench.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import httpx

from mockctl.ports import free_port

ADMIN = "glpat-bench-admin-token"
PG_URL = os.environ.get("MOCKCOORD_CI_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
BARE_APP = Path(__file__).with_name("bare_presign_app.py")
SCENARIO = {
    "users": [{"username": "dev"}],
    "projects": [
        {
            "path": "dev/app",
            "pipelines": [
                {
                    "user": "dev",
                    "status": "running",
                    "jobs": [
                        {
                            "name": "build",
                            "status": "success",
                            "artifacts": [{"file_type": "archive", "files": {"a.txt": "a"}}],
                        },
                        {"name": "test", "status": "running"},
                    ],
                }
            ],
        }
    ],
}


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def process(args: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        args, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wrk(url: str, seconds: int, headers: dict[str, str]) -> float:
    cmd = ["wrk", "-t2", "-c10", f"-d{seconds}s", "--latency"]
    for key, value in headers.items():
        cmd += ["-H", f"{key}: {value}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx or 3xx responses" in out:
        raise RuntimeError(f"errors under load:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def rails_env(tmp: Path, s3: str, db: str, check_exists: bool) -> dict[str, str]:
    return {
        "MOCKCOORD_DATA_DIR": str(tmp),
        "MOCKCOORD_DATABASE_URL": db,
        "MOCKCOORD_ADMIN_TOKEN": ADMIN,
        "MOCKCOORD_OBJECT_STORE__CONNECTION__ENDPOINT": s3,
        "MOCKCOORD_CHECK_OBJECT_EXISTS": "true" if check_exists else "false",
    }


@contextmanager
def mockcoord_rails(
    tmp: Path, s3: str, db: str, check_exists: bool, processes: int = 1
) -> Iterator[tuple[str, dict[str, str], subprocess.Popen[bytes]]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = rails_env(tmp, s3, db, check_exists)
    with process(
        [sys.executable, "-m", "app", "rails", "--port", str(port), "--processes", str(processes)], env
    ) as proc:
        wait_http(f"{base}/-/health")
        httpx.post(f"{base}/-/mock/reset", headers={"PRIVATE-TOKEN": ADMIN}).raise_for_status()
        seeded = httpx.post(f"{base}/-/mock/seed", json=SCENARIO, headers={"PRIVATE-TOKEN": ADMIN}).json()
        build = next(j for j in seeded["jobs"] if j["name"] == "build")
        test = next(j for j in seeded["jobs"] if j["name"] == "test")
        url = f"{base}/api/v4/jobs/{build['id']}/artifacts?direct_download=true"
        assert httpx.get(url, headers={"JOB-TOKEN": test["token"]}).status_code == 302
        yield url, {"JOB-TOKEN": test["token"]}, proc


@contextmanager
def bare_route(s3: str, bucket: str, key: str) -> Iterator[str]:
    port = free_port()
    env = {"BENCH_S3": s3, "BENCH_BUCKET": bucket, "BENCH_KEY": key}
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "bare_presign_app:app",
        "--app-dir",
        str(BARE_APP.parent),
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    with process(cmd, env):
        url = f"http://127.0.0.1:{port}/artifact"
        wait_http(url)
        yield url


def bench_decision(rounds: int, seconds: int, with_pg: bool) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    s3_port = free_port()
    with tempfile.TemporaryDirectory() as tmp, process([sys.executable, "-m", "moto.server", "-p", str(s3_port)]):
        s3 = f"http://127.0.0.1:{s3_port}"
        wait_http(s3)
        client = boto3.client(
            "s3", endpoint_url=s3, aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1"
        )
        client.create_bucket(Bucket="bare")
        client.put_object(Bucket="bare", Key="x/artifacts.zip", Body=b"zip")
        variants = [
            ("bare presign route", None, True),
            ("mockcoord SQLite", f"sqlite+aiosqlite:///{tmp}/b.sqlite3", True),
            ("mockcoord SQLite, no HEAD", f"sqlite+aiosqlite:///{tmp}/b.sqlite3", False),
        ]
        if with_pg:
            variants += [("mockcoord PostgreSQL", PG_URL, True), ("mockcoord PostgreSQL, no HEAD", PG_URL, False)]
        for r in range(rounds):
            for name, db, check in variants:
                if db is None:
                    with bare_route(s3, "bare", "x/artifacts.zip") as url:
                        rate = wrk(url, seconds, {})
                else:
                    with mockcoord_rails(Path(tmp) / f"d{r}", s3, db, check) as (url, headers, _proc):
                        rate = wrk(url, seconds, headers)
                results.setdefault(name, []).append(rate)
                print(f"  round {r + 1} {name}: {rate:,.0f} req/s", flush=True)
    return results


def bench_startup(runs: int) -> tuple[list[float], list[float]]:
    ready, banner = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            rails_port = free_port()
            cmd = [
                sys.executable,
                "-m",
                "app",
                "serve",
                "--data-dir",
                tmp,
                "--rails-port",
                str(rails_port),
                "--s3-port",
                str(free_port()),
                "--port",
                str(free_port()),
            ]
            started = time.monotonic()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                wait_http(f"http://127.0.0.1:{rails_port}/-/readiness")
                ready.append(time.monotonic() - started)
                assert proc.stdout is not None
                for line in proc.stdout:
                    if "proxied download" in line:
                        banner.append(time.monotonic() - started)
                        break
            finally:
                proc.terminate()
                proc.wait(timeout=10)
    return ready, banner


def bench_reset(db: str, runs: int) -> list[float]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        process([sys.executable, "-m", "moto.server", "-p", str(port := free_port())]),
    ):
        s3 = f"http://127.0.0.1:{port}"
        wait_http(s3)
        with mockcoord_rails(Path(tmp), s3, db, True) as (url, _headers, _proc):
            base = url.split("/api/")[0]
            times = []
            for _ in range(runs):  # the scenario is loaded: reset it, then load it again
                started = time.perf_counter()
                httpx.post(f"{base}/-/mock/reset", headers={"PRIVATE-TOKEN": ADMIN}).raise_for_status()
                times.append((time.perf_counter() - started) * 1000)
                httpx.post(f"{base}/-/mock/seed", json=SCENARIO, headers={"PRIVATE-TOKEN": ADMIN}).raise_for_status()
            return times


def fmt(values: list[float]) -> str:
    return f"{min(values):,.0f} / {statistics.median(values):,.0f} / {max(values):,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--parts", default="decision,startup,reset", help="comma-separated subset to run")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    parts = set(args.parts.split(","))
    print(f"machine: {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}")
    if "decision" in parts:
        print("download decision (302), wrk -t2 -c10:")
        rates = bench_decision(args.rounds, args.seconds, not args.no_postgres)
        bare = statistics.median(rates["bare presign route"])
        print("\n| server | req/s min / median / max | ratio to bare (median) |\n|---|---|---|")
        for name, values in rates.items():
            print(f"| {name} | {fmt(values)} | {statistics.median(values) / bare:.2f} |")
    if "startup" in parts:
        ready, banner = bench_startup(5)
        print(f"\nserve -> /-/readiness 200: {fmt([t * 1000 for t in ready])} ms (min / median / max)")
        print(f"serve -> demo banner printed: {fmt([t * 1000 for t in banner])} ms")
    if "reset" in parts:
        for name, db in (("SQLite", "sqlite+aiosqlite:///{tmp}"), ("PostgreSQL", PG_URL)):
            if name == "PostgreSQL" and args.no_postgres:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                times = bench_reset(db.format(tmp=f"{tmp}/r.sqlite3"), 20)
            print(f"POST /-/mock/reset with a small scenario loaded ({name}): {fmt(times)} ms")


if __name__ == "__main__":
    main()
