"""The orphan-object rake tasks at scale, beside bare boto3 in the same run.

    python benchmarks/rake_orphans_bench.py [--objects 100000] [--live 0.2] [--delete 10000] [--rounds 2]

moto's S3 (the embedded store, ``mockctl.embedded_s3``, behind its signature gate) runs as its own
process and is filled through moto's backend, not over HTTP (100,000 PUTs would take minutes and
measure nothing). The database is a SQLite file with ``--live`` of the objects named by artifact
rows. Then, rounds interleaved:

- listing: ``mockcoord rake gitlab:cleanup:list_orphan_job_artifact_final_objects`` as its own
  process against a bare paginated ``list_objects`` loop with boto3 (the same ListObjects call,
  200 keys a page, as GitLab's fog paginator) — keys per second, the task's own time (its first
  and last log lines) and the process's wall time, start-up included;
- deleting: ``delete_orphan_job_artifact_final_objects`` on a list of ``--delete`` orphans against
  bare boto3 ``delete_objects`` of as many other orphans, 1,000 keys a request;
- memory: each task's peak RSS (``VmHWM``, sampled every 0.1 s), at the full size and at a fifth of it.
"""

# Setup is blocking on purpose: it happens before anything is timed.
# ruff: noqa: ASYNC220, ASYNC221, ASYNC230, ASYNC240

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from mockctl.ports import free_port  # noqa: E402

BUCKET = "artifacts"
KEYS = {"aws_access_key_id": "mockcoord", "aws_secret_access_key": "mockcoord-secret"}


def final_key(project: int) -> str:
    h = hashlib.sha256(str(project).encode()).hexdigest()
    r = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    return f"{h[:2]}/{h[2:4]}/{h}/@final/{r[:2]}/{r[2:4]}/{r[4:]}"


def serve_s3(port: int, keys_file: str) -> None:
    """The ``--serve-s3`` child: the embedded S3 on ``port``, filled with the listed keys."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    from mockctl.embedded_s3 import EmbeddedS3

    server = EmbeddedS3("127.0.0.1", port).start()
    client(server.endpoint).create_bucket(Bucket=BUCKET)
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for key in Path(keys_file).read_text().split():
        backend.put_object(BUCKET, key, b"x" * 100)
    print("ready", flush=True)
    sys.stdin.read()  # until the parent closes it
    server.stop()


def client(endpoint: str):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        **KEYS,
    )


def make_database(path: Path, live: list[str]) -> None:
    import asyncio

    from app.db import Database

    async def create() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.create_all()
        await db.dispose()

    asyncio.run(create())
    now = datetime.now().isoformat(" ")
    with sqlite3.connect(path) as conn:  # foreign keys off: the rows need no jobs to be found by path
        conn.executemany(
            "INSERT INTO p_ci_job_artifacts (project_id, job_id, partition_id, file_type, created_at, updated_at,"
            " file_store, locked, accessibility, size, file_final_path) VALUES (1, ?, 100, 1, ?, ?, 2, 1, 0, 100, ?)",
            [(i + 1, now, now, key) for i, key in enumerate(live)],
        )


def bare_listing(endpoint: str, page_size: int) -> tuple[float, int]:
    s3, marker, count = client(endpoint), "", 0
    started = time.perf_counter()
    while True:
        res = s3.list_objects(Bucket=BUCKET, Marker=marker, MaxKeys=page_size)
        contents = res.get("Contents", [])
        count += len(contents)
        if not res.get("IsTruncated"):
            break
        marker = contents[-1]["Key"]
    return time.perf_counter() - started, count


def bare_delete(endpoint: str, keys: list[str]) -> float:
    s3 = client(endpoint)
    started = time.perf_counter()
    for first in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys[first : first + 1000]]})
    return time.perf_counter() - started


def rake(endpoint: str, data: Path, words: list[str], cwd: Path) -> tuple[float, float, int, list[str]]:
    """Wall seconds, the task's own seconds (first to last log line), peak RSS in MiB, stdout lines."""
    cmd = [sys.executable, "-m", "app", "rake", *words, "--data-dir", str(data), "--s3-endpoint", endpoint]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKCOORD_")} | {"PYTHONPATH": str(ROOT)}
    out = cwd / "rake.log"
    started = time.perf_counter()
    peak = 0
    with open(out, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        while proc.poll() is None:  # VmHWM of the exec'd image (ru_maxrss would count the fork of this process)
            peak = max(peak, vm_hwm_kib(proc.pid))
            time.sleep(0.1)
    wall = time.perf_counter() - started
    lines = out.read_text().splitlines()
    assert proc.returncode == 0, "\n".join(lines[-10:])
    stamps = [datetime.fromisoformat(line.split("[", 1)[1].split(" #")[0]) for line in (lines[0], lines[-1])]
    return wall, (stamps[1] - stamps[0]).total_seconds(), peak // 1024, lines


def vm_hwm_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)


def fmt(values: list[float]) -> str:
    return " / ".join(f"{v:,.0f}" for v in (min(values), statistics.median(values), max(values)))


def measure(objects: int, live_fraction: float, delete: int, rounds: int) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="rake-bench-"))
    keys = sorted(final_key(i % 50) for i in range(objects))
    live = keys[:: max(1, round(1 / live_fraction))] if live_fraction else []
    orphans = sorted(set(keys) - set(live))
    (tmp / "keys.txt").write_text("\n".join(keys))
    data = tmp / "data"
    data.mkdir()
    make_database(data / "mockcoord.sqlite3", live)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve-s3", str(port), str(tmp / "keys.txt")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    endpoint = f"http://127.0.0.1:{port}"
    result: dict[str, object] = {"objects": objects, "live": len(live), "orphans": len(orphans)}
    try:
        bare200, bare1000, task_rates, wall_rates, rss = [], [], [], [], []
        for _ in range(rounds):
            seconds, count = bare_listing(endpoint, 200)
            assert count == objects
            bare200.append(count / seconds)
            wall, own, peak, lines = rake(
                endpoint, data, ["gitlab:cleanup:list_orphan_job_artifact_final_objects", "FORCE_RESTART=1"], tmp
            )
            assert sum("Found orphan object" in line for line in lines) == len(orphans)
            task_rates.append(objects / own)
            wall_rates.append(objects / wall)
            rss.append(peak)
            seconds, count = bare_listing(endpoint, 1000)
            bare1000.append(count / seconds)
        result["listing"] = {
            "bare_200": bare200,
            "bare_1000": bare1000,
            "task": task_rates,
            "task_wall": wall_rates,
            "rss_mib": rss,
        }
        if delete:
            listed = (tmp / "orphan_job_artifact_final_objects.csv").read_text().splitlines()
            assert len(listed) >= 2 * delete * rounds, "not enough orphans for the delete rounds"
            task_rates, wall_rates, bare_rates, rss = [], [], [], []
            for r in range(rounds):  # each round its own orphans: the task's, then bare boto3's
                mine = listed[2 * r * delete : (2 * r + 1) * delete]
                theirs = [row.split(",")[0] for row in listed[(2 * r + 1) * delete : (2 * r + 2) * delete]]
                (tmp / "to_delete.csv").write_text("\n".join(mine) + "\n")
                wall, own, peak, lines = rake(
                    endpoint,
                    data,
                    ["gitlab:cleanup:delete_orphan_job_artifact_final_objects", "FILENAME=to_delete.csv"],
                    tmp,
                )
                assert sum("Deleted object" in line for line in lines) == delete
                task_rates.append(delete / own)
                wall_rates.append(delete / wall)
                rss.append(peak)
                bare_rates.append(delete / bare_delete(endpoint, theirs))
            result["delete"] = {"task": task_rates, "task_wall": wall_rates, "bare": bare_rates, "rss_mib": rss}
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
    return result


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-s3":
        serve_s3(int(sys.argv[2]), sys.argv[3])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--live", type=float, default=0.2, help="fraction of the objects artifact rows name")
    parser.add_argument("--delete", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for objects, delete in ((args.objects // 5, 0), (args.objects, args.delete)):
        r = measure(objects, args.live, delete, args.rounds)
        listing = r["listing"]
        assert isinstance(listing, dict)
        ratio = statistics.median(listing["task"]) / statistics.median(listing["bare_200"])
        print(f"\n{objects:,} objects ({r['live']:,} live, {r['orphans']:,} orphans), {args.rounds} rounds")
        print(f"  listing keys/s min / median / max: bare boto3 200/page {fmt(listing['bare_200'])}")
        print(f"                                     bare boto3 1000/page {fmt(listing['bare_1000'])}")
        print(f"                                     rake task (own time) {fmt(listing['task'])}  ratio {ratio:.2f}")
        print(f"                                     rake process (wall) {fmt(listing['task_wall'])}")
        print(f"  listing peak RSS MiB: {fmt(listing['rss_mib'])}")
        if "delete" in r:
            d = r["delete"]
            assert isinstance(d, dict)
            ratio = statistics.median(d["task"]) / statistics.median(d["bare"])
            print(f"  delete {delete:,} a round, keys/s:  bare boto3 delete_objects {fmt(d['bare'])}")
            print(f"                                     rake task (own time) {fmt(d['task'])}  ratio {ratio:.2f}")
            print(f"                                     rake process (wall) {fmt(d['task_wall'])}")
            print(f"  delete peak RSS MiB: {fmt(d['rss_mib'])}")


if __name__ == "__main__":
    main()
