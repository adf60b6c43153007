"""The raw figures of one mode's run, from the records Locust wrote: counts, failures by kind,
bytes verified, throughput, latency percentiles, retries, and per-second series."""

from __future__ import annotations

import math
from collections import Counter
from statistics import quantiles
from typing import Any

MIB = 1 << 20
HISTOGRAM_BINS = 30


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50 / p95 / p99 (inclusive method: defined from one value up)."""
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    if len(values) == 1:
        return {"p50": values[0], "p95": values[0], "p99": values[0]}
    cuts = quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98]}


def histogram(values: list[float]) -> dict[str, list[float]]:
    """Equal bins from the fastest to the slowest response: ``edges`` (ms) and ``counts``."""
    if not values:
        return {"edges": [], "counts": []}
    low, high = min(values), max(values)
    width = (high - low) / HISTOGRAM_BINS or 1.0
    counts = [0] * HISTOGRAM_BINS
    for value in values:
        counts[min(int((value - low) / width), HISTOGRAM_BINS - 1)] += 1
    return {"edges": [low + i * width for i in range(HISTOGRAM_BINS + 1)], "counts": counts}


def _series(requests: list[dict[str, Any]], users: list[dict[str, Any]], t0: float, wall: float) -> dict[str, Any]:
    """Per second from ``t0``: MiB/s (each verified transfer's bytes spread over its own time, as
    they crossed the wire; the last, partial second over its own length), latency percentiles of
    the requests ending that second, users."""
    seconds = max(int(math.ceil(wall)), 1)
    spread = [0.0] * seconds
    ending: list[list[float]] = [[] for _ in range(seconds)]
    for r in requests:
        start, end = r["start"] - t0, r["start"] - t0 + r["rt"] / 1000
        ending[min(int(end), seconds - 1)].append(r["rt"])
        if r["kind"] is not None or r["len"] == 0:
            continue
        rate = r["len"] / max(end - start, 1e-9)
        for second in range(int(start), min(int(math.ceil(end)), seconds)):
            overlap = min(end, second + 1) - max(start, second)
            spread[second] += rate * max(overlap, 0.0)
    count = [0] * seconds
    for line in users:
        second = int(line["t"] - t0)
        if 0 <= second < seconds:
            count[second] = line["users"]
    spread[-1] /= max(wall - (seconds - 1), 0.1)
    cuts = [percentiles(values) for values in ending]
    return {
        "t": list(range(seconds)),
        "mib_s": [b / MIB for b in spread],
        "p50_ms": [c["p50"] for c in cuts],
        "p95_ms": [c["p95"] for c in cuts],
        "p99_ms": [c["p99"] for c in cuts],
        "requests": [len(values) for values in ending],
        "users": count,
    }


def retry_figures(requests: list[dict[str, Any]]) -> dict[str, Any]:
    """What the runner's retries cost: how many, on how many requests, the time spent waiting
    before them, and the mean time of a retried request against one that was not."""
    retried = [r for r in requests if r["retries"]]
    clean = [r["rt"] for r in requests if not r["retries"]]
    return {
        "retries": sum(r["retries"] for r in requests),
        "requests_retried": len(retried),
        "seconds_waiting": sum(r["waited"] for r in requests),
        "seconds_in_retried_requests": sum(r["rt"] for r in retried) / 1000,
        "mean_ms_retried": sum(r["rt"] for r in retried) / len(retried) if retried else None,
        "mean_ms_not_retried": sum(clean) / len(clean) if clean else None,
    }


def mode_figures(lines: list[dict[str, Any]]) -> dict[str, Any]:
    requests = [line for line in lines if "name" in line]
    users = [line for line in lines if "users" in line]
    ok = [r for r in requests if r["kind"] is None]
    t0 = min((r["start"] for r in requests), default=0.0)
    t1 = max((r["start"] + r["rt"] / 1000 for r in requests), default=t0)
    wall = t1 - t0
    verified = sum(r["len"] for r in ok)
    times = [r["rt"] for r in requests]
    return {
        "requests": len(requests),
        "failures": len(requests) - len(ok),
        "failures_by_kind": dict(Counter(r["kind"] for r in requests if r["kind"] is not None)),
        "failure_examples": {r["kind"]: r["error"] for r in requests if r["kind"] is not None},
        "bytes_verified": verified,
        "seconds": wall,
        "throughput_mib_s": verified / MIB / wall if wall > 0 else 0.0,
        "requests_per_s": len(requests) / wall if wall > 0 else 0.0,
        "latency_ms": percentiles(times) | {"mean": sum(times) / len(times) if times else None},
        "histogram_ms": histogram(times),
        "retries": retry_figures(requests),
        "series": _series(requests, users, t0, wall),
    }


def compare_figures(direct: dict[str, Any], proxy: dict[str, Any]) -> dict[str, Any]:
    """Proxy against direct, same users and objects: below 1, proxying is slower."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    return {
        "throughput_ratio_proxy_to_direct": ratio(proxy["throughput_mib_s"], direct["throughput_mib_s"]),
        "p50_ratio_proxy_to_direct": ratio(proxy["latency_ms"]["p50"], direct["latency_ms"]["p50"]),
        "p99_ratio_proxy_to_direct": ratio(proxy["latency_ms"]["p99"], direct["latency_ms"]["p99"]),
    }
