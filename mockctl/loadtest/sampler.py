"""CPU% and RSS of the coordinator's processes, sampled with psutil in a thread during a run."""

from __future__ import annotations

import threading
import time
from typing import Any

import psutil

INTERVAL = 0.5


class Sampler:
    """``start``/``stop`` around a run; ``series`` per process name: ``t`` (seconds since start),
    ``cpu`` (% of one core), ``rss`` (bytes). A process gone mid-run stops its series."""

    def __init__(self, processes: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in processes.items()}
        self.series: dict[str, dict[str, list[float]]] = {n: {"t": [], "cpu": [], "rss": []} for n in self.procs}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loadtest-sampler", daemon=True)
        self.started = 0.0

    def start(self) -> Sampler:
        for proc in self.procs.values():
            proc.cpu_percent(None)  # the first call only primes the counter
        self.started = time.time()
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        return {
            name: {**s, "peak_rss": max(s["rss"], default=0), "peak_cpu": max(s["cpu"], default=0.0)}
            for name, s in self.series.items()
        }

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL):
            now = time.time() - self.started
            for name, proc in list(self.procs.items()):
                try:
                    with proc.oneshot():
                        cpu, rss = proc.cpu_percent(None), proc.memory_info().rss
                except psutil.Error:
                    del self.procs[name]
                    continue
                self.series[name]["t"].append(round(now, 2))
                self.series[name]["cpu"].append(cpu)
                self.series[name]["rss"].append(rss)
