"""Job hand-out under concurrent runners, side by side in one run (ratios).

Ten runners poll ``POST /api/v4/jobs/request`` until the queue is empty (each 201 claims one
job with a conditional UPDATE, then builds GitLab's payload); the baseline is the same ten
runners calling ``POST /api/v4/runners/verify`` (the same runner-token lookup, no claim, no
payload). Reported: requests per second of each and the ratio, and a check that no job was
handed out twice. SQLite, and PostgreSQL when reachable at ``MOCKCOORD_CI_POSTGRES_URL``.

Loopback only, bounded: ``--jobs`` jobs, ``--seconds`` for the baseline.
Usage: ``python benchmarks/job_handout_bench.py [--jobs 300] [--seconds 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from pathlib import Path

import httpx

from app.config import Settings
from mockctl.ports import free_port
from mockctl.stack import running_stack

ADMIN = "glpat-bench-admin-token"
RUNNERS = 10
PG_URL = os.environ.get("MOCKCOORD_CI_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def scenario(jobs: int) -> dict:
    return {
        "users": [{"username": "dev"}],
        "projects": [
            {
                "path": "dev/app",
                "pipelines": [
                    {
                        "user": "dev",
                        "status": "running",
                        "jobs": [{"name": f"job {i}", "status": "pending", "script": ["true"]} for i in range(jobs)],
                    }
                ],
            }
        ],
        "runners": [{"token": f"glrt-bench-runner-{i:04d}"} for i in range(RUNNERS)],
    }


async def verify_rate(url: str, seconds: float) -> float:
    deadline = time.perf_counter() + seconds
    count = 0

    async def runner(token: str) -> None:
        nonlocal count
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            while time.perf_counter() < deadline:
                res = await client.post("/api/v4/runners/verify", json={"token": token})
                assert res.status_code == 200, res.text
                count += 1

    started = time.perf_counter()
    await asyncio.gather(*(runner(f"glrt-bench-runner-{i:04d}") for i in range(RUNNERS)))
    return count / (time.perf_counter() - started)


async def handout_rate(url: str) -> tuple[float, int, int]:
    handed: list[int] = []
    requests = 0

    async def runner(token: str) -> None:
        nonlocal requests
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            while True:
                res = await client.post("/api/v4/jobs/request", json={"token": token, "info": {}})
                requests += 1
                if res.status_code == 204:
                    return
                assert res.status_code == 201, res.text
                handed.append(res.json()["id"])

    started = time.perf_counter()
    await asyncio.gather(*(runner(f"glrt-bench-runner-{i:04d}") for i in range(RUNNERS)))
    elapsed = time.perf_counter() - started
    return len(handed) / elapsed, len(handed), len(handed) - len(set(handed))


async def measure(database_url: str | None, jobs: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="mockcoord-bench-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=database_url,
            admin_token=ADMIN,
            workhorse_port=free_port(),
            rails_port=free_port(),
            s3_port=free_port(),
        )
        async with running_stack(settings) as stack:
            rails = f"http://127.0.0.1:{settings.rails_port}"
            async with httpx.AsyncClient(base_url=stack.url, headers={"PRIVATE-TOKEN": ADMIN}, timeout=60) as admin:
                (await admin.post("/-/mock/reset")).raise_for_status()
                (await admin.post("/-/mock/seed", json=scenario(jobs))).raise_for_status()
            verify = await verify_rate(rails, seconds)
            handout, handed, twice = await handout_rate(rails)
    assert handed == jobs and twice == 0, (handed, twice)
    return {"verify": verify, "handout": handout}


def postgres_reachable() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
        return True
    except OSError:
        return False


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{RUNNERS} runners, {args.jobs} pending jobs")
    print(f"{'database':<12}{'verify/s':>10}{'handed/s':>10}{'ratio':>8}")
    backends = [("SQLite", None)] + ([("PostgreSQL", PG_URL)] if postgres_reachable() else [])
    for name, url in backends:
        result = await measure(url, args.jobs, args.seconds)
        ratio = result["handout"] / result["verify"]
        print(f"{name:<12}{result['verify']:>10.0f}{result['handout']:>10.0f}{ratio:>8.2f}")


if __name__ == "__main__":
    asyncio.run(main())
