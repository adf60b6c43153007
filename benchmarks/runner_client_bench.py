"""runner_client throughput and memory through the real stack (Workhorse + Rails + moto S3).

    python benchmarks/runner_client_bench.py [--size-mib 1024] [--storage s3|local]

One file of random bytes is uploaded with ``artifacts-uploader`` (zip, ``--compression-level
fastest``), then downloaded with ``artifacts-downloader`` both ways (19.x direct flow: 302 to
object storage; and proxied through Workhorse). The client runs in its own process, so its
peak RSS growth (VmHWM minus the RSS after start-up, sampled from /proc) is its own. moto
runs in this process and is garbage-collected between transfers. Loopback only.
"""

# Setup is blocking on purpose: it happens before anything is timed.
# ruff: noqa: ASYNC220, ASYNC221, ASYNC230, ASYNC240

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mockctl.embedded_s3 import EmbeddedS3
from mockctl.ports import free_port  # noqa: E402
from mockctl.rails import create_app  # noqa: E402
from mockctl.workhorse import create_app as create_workhorse  # noqa: E402
from tests.conftest import ADMIN_TOKEN, make_settings, serve_app  # noqa: E402
from workhorse.config import WorkhorseSettings  # noqa: E402

MIB = 1 << 20


def rss_kib(pid: int, key: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def run_client(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, str]:
    """Seconds, peak RSS growth (bytes) after the interpreter and imports are loaded, stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner_client", *args, "--progress", "off"],
        cwd=cwd,
        env={**os.environ, **env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        stderr=subprocess.PIPE,
        text=True,
    )
    base, peak, start = 0, 0, time.monotonic()
    while proc.poll() is None:
        try:
            rss = rss_kib(proc.pid)
        except (FileNotFoundError, ProcessLookupError):
            break
        if not base and time.monotonic() - start > 0.3:  # after imports, before the transfer is under way
            base = rss
        peak = max(peak, rss)
        time.sleep(0.02)
    stderr = proc.stderr.read() if proc.stderr else ""
    proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(stderr)
    return time.monotonic() - start, (peak - base) * 1024, stderr


async def main(args: argparse.Namespace) -> None:
    s3 = EmbeddedS3().start()
    tmp = Path(tempfile.mkdtemp(prefix="rc-bench-"))
    settings = make_settings(tmp, f"sqlite+aiosqlite:///{tmp / 'db.sqlite3'}", args.storage, s3)
    rails_port, wh_port = free_port(), free_port()
    rails_app = create_app(settings)
    rails, rails_task = await serve_app(rails_app, rails_port)
    conn = settings.object_store.connection
    wh_settings = WorkhorseSettings(
        listen_port=wh_port,
        rails_url=f"http://127.0.0.1:{rails_port}",
        secret_file=settings.secret_file,
        s3_access_key_id=conn.aws_access_key_id,
        s3_secret_access_key=conn.aws_secret_access_key,
        log_file=tmp / "workhorse.log",
    )
    workhorse, wh_task = await serve_app(create_workhorse(wh_settings), wh_port)
    url = f"http://127.0.0.1:{wh_port}"
    import httpx

    scenario = {
        "users": [{"username": "alice"}],
        "groups": [{"path": "bench", "members": [{"user": "alice", "access_level": "developer"}]}],
        "projects": [
            {
                "path": "bench/app",
                "max_artifacts_size": 4096,
                "pipelines": [
                    {
                        "user": "alice",
                        "status": "running",
                        "jobs": [
                            {"name": "build", "stage": "build", "status": "running"},
                            {"name": "deploy", "stage": "deploy", "status": "running"},
                        ],
                    }
                ],
            }
        ],
    }
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rails_port}") as admin:
        res = await admin.post("/-/mock/seed", json=scenario, headers={"PRIVATE-TOKEN": ADMIN_TOKEN})
        assert res.status_code == 201, res.text
        seeded = res.json()
    build, deploy = (next(j for j in seeded["jobs"] if j["name"] == n) for n in ("build", "deploy"))
    work = tmp / "work"
    work.mkdir()
    with open(work / "blob.bin", "wb") as f:
        for _ in range(args.size_mib):
            f.write(os.urandom(MIB))
    size = args.size_mib * MIB
    env = {"CI_SERVER_URL": url}
    results = []

    def record(name: str, seconds: float, growth: int) -> None:
        results.append((name, size / seconds / MIB, growth / MIB))
        print(f"{name:<40} {size / seconds / MIB:8.1f} MiB/s  RSS growth {growth / MIB:6.1f} MiB", flush=True)

    up = [
        "artifacts-uploader",
        "--id",
        str(build["id"]),
        "--token",
        build["token"],
        "--path",
        "blob.bin",
        "--artifact-type",
        "archive",
        "--artifact-format",
        "zip",
        "--compression-level",
        "fastest",
    ]
    seconds, growth, _ = await asyncio.to_thread(run_client, up, work, env)
    record("upload (zip, fastest, chunked)", seconds, growth)
    gc.collect()
    for name, extra in (
        ("download direct (302, then object storage)", {}),
        ("download proxied (Workhorse send-url)", {"FF_USE_DIRECT_DOWNLOAD": "false"}),
        ("download parallel ranges (16 x 16 MiB)", {"FF_USE_PARALLEL_ARTIFACT_TRANSFER": "true"}),
    ):
        dest = tmp / f"dest-{len(results)}"
        dest.mkdir()
        down = ["artifacts-downloader", "--id", str(build["id"]), "--token", deploy["token"], "--target-dir", str(dest)]
        seconds, growth, _ = await asyncio.to_thread(run_client, down, work, {**env, **extra})
        assert (dest / "blob.bin").stat().st_size == size
        record(name, seconds, growth)
        (dest / "blob.bin").unlink()
        gc.collect()
    workhorse.should_exit = rails.should_exit = True
    await wh_task
    await rails_task
    s3.stop()
    print(f"\n{args.size_mib} MiB, storage {args.storage}, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--storage", choices=["s3", "local"], default="s3")
    threading.stack_size(0)
    asyncio.run(main(parser.parse_args()))
