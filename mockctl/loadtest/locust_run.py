"""One Locust run as the ``locust`` command (one process, or a master and N workers on this
machine): Locust monkey-patches the process it runs in with gevent, and the orchestrator's
asyncio, psutil sampler and Rich console stay out of that. Its records file is what the report
is made from; Locust's own output goes to ``locust-<mode>.log``."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mockctl.ports import free_port
from runner_client.load.plan import Plan

USER_CLASSES = {
    "direct": "DirectDownloadUser",
    "proxy": "ProxyDownloadUser",
    "upload": "UploadUser",
    "url": "UrlDownloadUser",  # the plan's ``urls``: benchmarks/loadtest_bench.py's nginx fronts
}
STOP_TIMEOUT = 30  # transfers under way at the end finish and are counted


def locustfile() -> str:
    spec = importlib.util.find_spec("runner_client.locust_users")
    assert spec is not None and spec.origin is not None
    return spec.origin


@dataclass(frozen=True)
class LocustRun:
    mode: str
    users: int
    spawn_rate: float
    duration: float
    workers: int
    plan: Plan
    records: Path
    log: Path
    stop_timeout: float = STOP_TIMEOUT

    def commands(self) -> list[list[str]]:
        """The master (or lone process) first, then the workers."""
        locust = [sys.executable, "-m", "locust", "-f", locustfile(), "--loglevel", "WARNING"]
        main = [
            *locust,
            *("--headless", "--users", str(self.users), "--spawn-rate", str(self.spawn_rate)),
            *("--run-time", f"{self.duration:g}s", "--stop-timeout", f"{self.stop_timeout:g}", "--only-summary"),
            *("--host", self.plan.url, "--exit-code-on-error", "0"),
            *("--mockcoord-plan", self.plan.to_json(), "--mockcoord-records", str(self.records)),
        ]
        if not self.workers:
            return [[*main, USER_CLASSES[self.mode]]]
        port = free_port()
        master = [*main, "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
        master += ["--expect-workers", str(self.workers), USER_CLASSES[self.mode]]
        worker = [*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
        return [master] + [worker] * self.workers

    def run(self, tick: Callable[[float], None]) -> None:
        """Runs to the end; ``tick(seconds since start)`` twice a second. RuntimeError when Locust fails."""
        self.records.write_text("")
        with self.log.open("w") as log:
            procs = [subprocess.Popen(c, stdout=log, stderr=subprocess.STDOUT) for c in self.commands()]
            started = time.monotonic()
            try:
                while procs[0].poll() is None:
                    tick(time.monotonic() - started)
                    time.sleep(0.5)
                for proc in procs[1:]:
                    proc.wait(self.stop_timeout)
            finally:
                for proc in procs:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
        if procs[0].returncode != 0:
            tail = self.log.read_text().strip().splitlines()[-5:]
            raise RuntimeError(f"locust exited with {procs[0].returncode}: " + " | ".join(tail))
