"""Does the gevent-to-asyncio bridge of the Locust users cap throughput?

    python benchmarks/locust_bridge_bench.py [--size-mib 10] [--users 4] [--seconds 8] [--rounds 3]

The same proxied downloads (runner client's ``fetch_archive`` into a digest sink, every byte
hashed) driven two ways against one coordinator started for the purpose: plain asyncio tasks on
uvloop in an un-patched process, and ``ProxyDownloadUser`` under Locust (gevent, the asyncio loop in a
native thread). Rounds are interleaved; the figure is verified MiB/s, and the ratio Locust/plain.
"""

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mockctl.loadtest.figures import mode_figures  # noqa: E402
from mockctl.loadtest.locust_run import LocustRun  # noqa: E402
from mockctl.loadtest.seed import seed_run  # noqa: E402
from mockctl.loadtest.stack import local_stack  # noqa: E402
from runner_client.load.operations import Tally, download, open_client  # noqa: E402
from runner_client.load.plan import Plan  # noqa: E402

MIB = 1 << 20


async def plain(plan: Plan, users: int, seconds: float) -> float:
    """MiB/s of ``users`` tasks downloading in a loop for ``seconds``."""
    clients = [await open_client(plan) for _ in range(users)]
    done = 0
    deadline = time.monotonic() + seconds
    started = time.monotonic()

    async def user(client: object) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            size = (await download(client, plan, plan.objects[0], False, Tally())).size  # type: ignore[arg-type]
            done += size  # after the await: ``done += await ...`` would read ``done`` before it

    await asyncio.gather(*(user(c) for c in clients))
    elapsed = time.monotonic() - started
    for client in clients:
        await client.aclose()
    return done / MIB / elapsed


def under_locust(plan: Plan, users: int, seconds: float, work: Path) -> float:
    run = LocustRun("proxy", users, 100, seconds, 0, plan, work / "records.jsonl", work / "locust.log")
    run.run(lambda _: None)
    lines = [json.loads(line) for line in run.records.read_text().splitlines()]
    return mode_figures(lines)["throughput_mib_s"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=10)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bridge-bench-"))
    with local_stack(work / "stack") as target:
        plan = asyncio.run(seed_run(target.url, target.admin_token, 1, args.size_mib * MIB, False, lambda _: None))
        ratios = []
        for round_ in range(args.rounds):
            a = uvloop.run(plain(plan, args.users, args.seconds))
            b = under_locust(plan, args.users, args.seconds, work)
            ratios.append(b / a)
            print(f"round {round_ + 1}: plain asyncio {a:.1f} MiB/s, Locust users {b:.1f} MiB/s, ratio {b / a:.2f}")
        print(f"median ratio Locust/plain: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
