"""Giving freed memory back to the OS, which glibc's malloc is slow to do on its own.

Uploads churn through megabyte-sized buffers on the event loop and in worker threads; glibc
keeps what they free in per-thread arenas, so a Workhorse that served fifty uploads at once
stayed at several times its start-up size when idle. Two arenas and a ``malloc_trim`` when the
last upload ends bring it back (measured: docs/benchmarks.md). A no-op off glibc.
"""

import asyncio
import contextlib
import ctypes
import ctypes.util
from collections.abc import AsyncIterator

M_ARENA_MAX = -8  # mallopt parameter (malloc.h)
ARENAS = 2

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_glibc = hasattr(_libc, "malloc_trim") and hasattr(_libc, "mallopt")
_busy = 0  # uploads in progress in this process (the heap is the process's, not an app's)


def limit_arenas() -> None:
    """Cap malloc arenas before threads start, so worker threads share freed memory."""
    if _glibc:
        _libc.mallopt(M_ARENA_MAX, ARENAS)


def trim() -> None:
    """Return free heap pages to the OS."""
    if _glibc:
        _libc.malloc_trim(0)


@contextlib.asynccontextmanager
async def trimmed_when_idle() -> AsyncIterator[None]:
    """Around an upload: when the last one in progress ends, trim the heap (in a thread: it walks it)."""
    global _busy
    _busy += 1
    try:
        yield
    finally:
        _busy -= 1
        if _busy == 0:
            await asyncio.to_thread(trim)
