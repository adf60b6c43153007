"""Workhorse throughput and memory on loopback, compared in the same run with direct and nginx.

    python benchmarks/workhorse_bench.py [--size-mib 1024] [--rounds 3] [--out docs/benchmarks.md]

Downloads: one 1 GiB object fetched directly from moto, through Workhorse send-url, and through
nginx proxy_pass (default, and tuned with ``proxy_buffering off; proxy_buffer_size 1m``).
Uploads: the same bytes as a chunked multipart through Workhorse (presigned PUT and its own
S3 client) versus a direct streaming PUT. Workhorse runs in its own process so its peak RSS
(from /proc) can be read per transfer. moto runs in this process and is collected between
transfers, as reference/performance.md advises. Rounds are interleaved; ratios are medians.
"""

# Setup (processes, files) is blocking on purpose: it happens before anything is timed.
# ruff: noqa: ASYNC220, ASYNC240

import argparse
import asyncio
import base64
import gc
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import boto3
import uvicorn
from moto.server import ThreadedMotoServer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.workhorse.stub_rails import JOB_TOKEN, StubRails  # noqa: E402

MIB = 1024 * 1024
IDLE_SECONDS = 3  # how long Workhorse idles after concurrent uploads before its RSS is read
UPLOAD_MODES = {"presigned": "presigned_put", "s3": "s3_client_v2", "local": "local_tempfile"}
BUCKET = "artifacts"
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections {worker_connections}; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    server {{ listen 127.0.0.1:{default_port}; location / {{ proxy_pass http://{upstream}; }} }}
    server {{ listen 127.0.0.1:{tuned_port};
        location / {{ proxy_pass http://{upstream}; proxy_buffering off; proxy_buffer_size 1m;
            proxy_buffers 4 1m; proxy_busy_buffers_size 2m; }} }}
{extra}
}}
"""


def start_nginx(
    tmp: Path, upstream: str, worker_connections: int = 64, extra: str = ""
) -> tuple[subprocess.Popen[bytes], int, int]:
    """Debian's nginx on loopback in front of ``upstream`` (host:port): its default ``proxy_pass``
    and the tuned one (``proxy_buffering off; proxy_buffer_size 1m``), and ``extra`` (more of the
    ``http`` block). Returns the process (not yet listening: ``wait_port``), the default port and the
    tuned port. ``tmp`` must be readable by nginx's workers (0o755)."""
    default_port, tuned_port = free_port(), free_port()
    conf = NGINX_CONF.format(
        tmp=tmp,
        default_port=default_port,
        tuned_port=tuned_port,
        upstream=upstream,
        worker_connections=worker_connections,
        extra=extra,
    )
    (tmp / "nginx.conf").write_text(conf)
    return subprocess.Popen(["nginx", "-c", str(tmp / "nginx.conf"), "-p", str(tmp)]), default_port, tuned_port


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def proc_status(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of /proc/<pid>/status in bytes: VmRSS (resident now) or VmHWM (peak resident)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return 0


class RssSampler:
    """Peak VmRSS of a process, sampled every 20 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def rss(self) -> int:
        return proc_status(self.pid)

    def __enter__(self) -> "RssSampler":
        self.base = self.peak = self.rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class CpuMeter:
    """CPU seconds Workhorse and this process (moto, boto3, the client) spent during a transfer."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def _now(self) -> tuple[float, float]:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        workhorse = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return workhorse, sum(os.times()[:2])

    def __enter__(self) -> "CpuMeter":
        self._start = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._now()
        self.workhorse, self.own = end[0] - self._start[0], end[1] - self._start[1]


async def timed_get(session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    size = 0
    async with session.get(url, headers=headers) as response:
        response.raise_for_status()
        async for chunk in response.content.iter_any():
            size += len(chunk)
    elapsed = time.perf_counter() - started
    return size / MIB / elapsed


def body_blocks(size: int, prefix: bytes = b"", suffix: bytes = b"") -> Callable[[], AsyncIterator[bytes]]:
    block = os.urandom(MIB)

    async def gen() -> AsyncIterator[bytes]:
        if prefix:
            yield prefix
        for _ in range(size // MIB):
            yield block
        if suffix:
            yield suffix

    return gen


async def timed(coro: Awaitable[None], size: int) -> float:
    started = time.perf_counter()
    await coro
    return size / MIB / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> str:
    size = args.size_mib * MIB
    tmp = Path(tempfile.mkdtemp(prefix="whbench"))
    tmp.chmod(0o755)  # nginx workers (not root) spool proxied bodies under it
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port())
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket=BUCKET)
    block = os.urandom(MIB)
    s3.upload_fileobj(_Repeat(block, size // MIB), BUCKET, "download.bin")
    gc.collect()
    presigned = s3.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "download.bin"}, ExpiresIn=7200
    )

    key = os.urandom(32)
    (tmp / "secret").write_text(base64.b64encode(key).decode())
    rails = StubRails(key=key, s3=s3, bucket=BUCKET, s3_endpoint=endpoint, temp_path=str(tmp / "uploads"))
    rails.download = ("send-url", presigned, {})
    rails_port = free_port()
    rails_server = uvicorn.Server(uvicorn.Config(rails.app(), host="127.0.0.1", port=rails_port, log_level="error"))
    threading.Thread(target=rails_server.run, daemon=True).start()

    wh_port = free_port()
    wh_env = {
        **os.environ,
        "MOCKCOORD_WORKHORSE_LISTEN_PORT": str(wh_port),
        "MOCKCOORD_WORKHORSE_RAILS_URL": f"http://127.0.0.1:{rails_port}",
        "MOCKCOORD_WORKHORSE_SECRET_FILE": str(tmp / "secret"),
        "MOCKCOORD_WORKHORSE_LOG_FILE": str(tmp / "workhorse.log"),
        "MOCKCOORD_WORKHORSE_S3_ACCESS_KEY_ID": "testing",
        "MOCKCOORD_WORKHORSE_S3_SECRET_ACCESS_KEY": "testing",
    }
    command = [sys.executable, "-m", "workhorse"]
    if args.py_spy:  # profile Workhorse; RSS figures are then py-spy's, not Workhorse's
        command = ["py-spy", "record", "-r", "200", "-f", "raw", "-o", str(args.py_spy), "--", *command]
    workhorse = subprocess.Popen(command, env=wh_env, cwd=Path(__file__).resolve().parent.parent)
    # Downloads compare with nginx; an upload-only run (--rounds 0) needs none.
    nginx, default_port, tuned_port = start_nginx(tmp, f"{host}:{port}") if args.rounds else (None, 0, 0)
    path_qs = presigned.removeprefix(endpoint)
    results: dict[str, list[float]] = {}
    rss: dict[str, int] = {}
    cpu: dict[str, list[tuple[float, float]]] = {}
    concurrent: tuple[float, float, int, int, int, int] | None = None
    try:
        for p in (wh_port, rails_port, *((default_port, tuned_port) if nginx else ())):
            wait_port(p)
        startup_rss = proc_status(workhorse.pid)
        async with aiohttp.ClientSession(
            read_bufsize=MIB, auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None)
        ) as session:
            sampler = RssSampler(workhorse.pid)
            for _ in range(args.rounds):
                for name, url, via_wh in (
                    ("direct GET", presigned, False),
                    ("Workhorse send-url", f"http://127.0.0.1:{wh_port}/api/v4/jobs/1/artifacts", True),
                    ("nginx default", f"http://127.0.0.1:{default_port}{path_qs}", False),
                    ("nginx tuned", f"http://127.0.0.1:{tuned_port}{path_qs}", False),
                ):
                    gc.collect()
                    print(f"{name} ...", file=sys.stderr, flush=True)
                    with sampler if via_wh else _Null() as s:
                        results.setdefault(name, []).append(await timed_get(session, url, {"JOB-TOKEN": JOB_TOKEN}))
                    if via_wh:
                        rss[name] = max(rss.get(name, 0), s.peak - s.base)
            boundary = "benchboundary"
            head = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="artifacts.zip"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            tail = f"\r\n--{boundary}--\r\n".encode()
            upload_url = f"http://127.0.0.1:{wh_port}/api/v4/jobs/1/artifacts?artifact_format=gzip"
            headers = {"JOB-TOKEN": JOB_TOKEN, "Content-Type": f"multipart/form-data; boundary={boundary}"}
            put_url = s3.generate_presigned_url(
                "put_object", Params={"Bucket": BUCKET, "Key": "direct.bin"}, ExpiresIn=7200
            )

            async def upload(name: str, transfer: Awaitable[None]) -> None:
                _clear(s3)
                gc.collect()
                print(f"{name} ...", file=sys.stderr, flush=True)
                with sampler as s, CpuMeter(workhorse.pid) as c:
                    results.setdefault(name, []).append(await timed(transfer, size))
                rss[name] = max(rss.get(name, 0), s.peak - s.base)
                cpu.setdefault(name, []).append((c.workhorse * MIB / size, c.own * MIB / size))

            for _ in range(args.upload_rounds):
                await upload("direct PUT", _check(session.put(put_url, data=body_blocks(size)())))
                await upload(
                    "direct multipart (boto3)",
                    asyncio.to_thread(s3.upload_fileobj, _Repeat(block, size // MIB), BUCKET, "direct-mp.bin"),
                )
                for mode, client_mode in UPLOAD_MODES.items():
                    if mode in args.uploads:
                        rails.mode = mode
                        post = session.post(upload_url, data=body_blocks(size, head, tail)(), headers=headers)
                        await upload(f"Workhorse upload ({client_mode})", _check(post))
                _clear(s3)
            if args.concurrency:
                rails.mode = "s3"
                await _check(session.post(upload_url, data=body_blocks(MIB, head, tail)(), headers=headers))
                await asyncio.sleep(IDLE_SECONDS)
                warm_rss = proc_status(workhorse.pid)
                posts = [
                    _check(session.post(upload_url, data=body_blocks(size, head, tail)(), headers=headers))
                    for _ in range(args.concurrency)
                ]
                print(f"{args.concurrency} concurrent uploads ...", file=sys.stderr, flush=True)
                with CpuMeter(workhorse.pid) as c:
                    rate = await timed(asyncio.gather(*posts), size * args.concurrency)
                peak = proc_status(workhorse.pid, "VmHWM")
                await asyncio.sleep(IDLE_SECONDS)
                gib = size * args.concurrency / 1024 / MIB
                concurrent = (rate, c.workhorse / gib, startup_rss, warm_rss, peak, proc_status(workhorse.pid))
                _clear(s3)
    finally:
        if nginx:
            nginx.terminate()
            nginx.wait(10)
        workhorse.send_signal(2)
        workhorse.wait(10)
        rails_server.should_exit = True
        moto.stop()
        if sys.exc_info()[0] is not None:
            print((tmp / "workhorse.log").read_text()[-3000:], file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
    return report(results, rss, cpu, concurrent, args)


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


class _Repeat:
    """A file-like object repeating one block, so the 1 GiB source never sits in memory."""

    def __init__(self, block: bytes, count: int) -> None:
        self.block, self.left, self.pos = block, count, 0

    def read(self, n: int = -1) -> bytes:
        out = bytearray()
        while self.left and (n < 0 or len(out) < n):
            take = self.block[self.pos : self.pos + (n - len(out) if n >= 0 else len(self.block))]
            out += take
            self.pos += len(take)
            if self.pos == len(self.block):
                self.pos, self.left = 0, self.left - 1
        return bytes(out)


async def _check(request) -> None:  # noqa: ANN001 - aiohttp's request context manager
    async with request as response:
        body = await response.read()
        if response.status >= 300:
            raise RuntimeError(f"{response.status}: {body[:200]!r}")


def _clear(s3) -> None:  # noqa: ANN001
    for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        if obj["Key"] != "download.bin":
            s3.delete_object(Bucket=BUCKET, Key=obj["Key"])


def report(
    results: dict[str, list[float]],
    rss: dict[str, int],
    cpu: dict[str, list[tuple[float, float]]],
    concurrent: tuple[float, float, int, int, int, int] | None,
    args: argparse.Namespace,
) -> str:
    med = {name: statistics.median(v) for name, v in results.items()}
    lines = [
        f"### Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {args.size_mib} MiB, "
        f"{args.rounds} download / {args.upload_rounds} upload rounds, loopback, {os.cpu_count()} CPUs",
        "",
        "| transfer | MiB/s min / median / max | ratio (median) | Workhorse peak RSS growth "
        "| CPU s/GiB: Workhorse / moto + client |",
        "|---|---|---|---|---|",
    ]
    for name, values in results.items():
        upload = "upload" in name or "PUT" in name or "multipart" in name
        base = med.get("direct PUT" if upload else "direct GET", med[name])
        growth = f"{rss[name] / MIB:.0f} MiB" if name in rss else ""
        spent = ""
        if name in cpu:
            spent = " / ".join(f"{statistics.median(c[i] for c in cpu[name]) * 1024:.1f}" for i in (0, 1))
        lines.append(
            f"| {name} | {min(values):.0f} / {med[name]:.0f} / {max(values):.0f} | {med[name] / base:.2f} "
            f"| {growth} | {spent} |"
        )
    lines.append("")
    for name, base in (
        ("Workhorse upload (s3_client_v2)", "direct multipart (boto3)"),
        ("Workhorse upload (presigned_put)", "direct PUT"),
    ):
        if name in results:  # ratios within each round: the machine's drift cancels out
            ratios = sorted(a / b for a, b in zip(results[name], results[base], strict=True))
            spread = " / ".join(f"{r:.2f}" for r in (ratios[0], statistics.median(ratios), ratios[-1]))
            lines.append(f"- {name} / {base}, per round min / median / max: {spread}")
    if concurrent:
        rate, spent, startup, warm, peak, idle = concurrent
        lines.append(
            f"- {args.concurrency} concurrent {args.size_mib} MiB uploads (s3_client_v2): {rate:.0f} MiB/s in all, "
            f"Workhorse CPU {spent:.1f} s/GiB; "
            f"Workhorse RSS {startup / MIB:.0f} MiB at start-up, {warm / MIB:.0f} MiB after one upload, "
            f"peak (VmHWM) {peak / MIB:.0f} MiB = {(peak - startup) / MIB / args.concurrency:.1f} MiB per upload, "
            f"{idle / MIB:.0f} MiB idle {IDLE_SECONDS} s after ({idle / startup:.2f}x start-up)"
        )
    if "Workhorse send-url" in med:  # --rounds 0 measures uploads only
        wh = med["Workhorse send-url"]
        lines.append(
            f"- Workhorse send-url / nginx default: {wh / med['nginx default']:.2f}; "
            f"/ nginx tuned: {wh / med['nginx tuned']:.2f}"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--upload-rounds", type=int, default=2)
    parser.add_argument(
        "--uploads", type=lambda v: v.split(","), default=list(UPLOAD_MODES), help="Workhorse upload modes to run"
    )
    parser.add_argument("--concurrency", type=int, default=0, help="then this many --size-mib uploads at once")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--py-spy", type=Path, help="write py-spy collapsed stacks of Workhorse here")
    arguments = parser.parse_args()
    text = asyncio.run(main(arguments))
    print(text)
    if arguments.out:
        with arguments.out.open("a") as out:
            out.write("\n" + text)
