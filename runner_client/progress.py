"""Transfer progress: a Rich bar (bytes, rate) on a terminal, otherwise gitlab-runner's meter
line (``Uploading artifacts 1.05 GB (312.4 MB/s)``) when the transfer ends."""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn


class Meter(Protocol):
    def update(self, n: int) -> None: ...

    def close(self) -> None: ...


def _scale(n: int) -> tuple[float, str]:
    """The meter's decimal units (commands/helpers/meter/formatters.go)."""
    if n < 1000:
        return float(n), ""
    div, exp, rest = 1000, 0, n // 1000
    while rest >= 1000:
        div, exp, rest = div * 1000, exp + 1, rest // 1000
    return n / div, "KMGTPE"[exp]


def format_bytes(n: int) -> str:
    value, prefix = _scale(n)
    return f"{int(value)} B" if not prefix else f"{value:.2f} {prefix}B"


def format_rate(n: int, seconds: float) -> str:
    value, prefix = _scale(int(n / max(seconds, 1e-9)))
    return f"{int(value)} B/s" if not prefix else f"{value:.1f} {prefix}B/s"


class PlainMeter:
    def __init__(self, label: str, stream: TextIO) -> None:
        self.label, self.stream, self.written, self.start = label, stream, 0, time.monotonic()

    def update(self, n: int) -> None:
        self.written += n

    def close(self) -> None:
        rate = format_rate(self.written, time.monotonic() - self.start)
        self.stream.write(f"{self.label} {format_bytes(self.written)} ({rate})\n")
        self.stream.flush()


class RichMeter:
    def __init__(self, label: str, stream: TextIO) -> None:
        self.progress = Progress(
            TextColumn(label),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=Console(file=stream),
            transient=False,
        )
        self.task = self.progress.add_task(label, total=None)
        self.progress.start()

    def update(self, n: int) -> None:
        self.progress.update(self.task, advance=n)

    def close(self) -> None:
        self.progress.stop()


class NoMeter:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def make_meter(label: str, mode: str = "auto", stream: TextIO | None = None) -> Meter:
    """``mode``: ``auto`` (Rich on a terminal, plain otherwise), ``rich``, ``plain`` or ``off``."""
    stream = stream if stream is not None else sys.stdout
    if mode == "off":
        return NoMeter()
    if mode == "rich" or (mode == "auto" and stream.isatty()):
        return RichMeter(label, stream)
    return PlainMeter(label, stream)
