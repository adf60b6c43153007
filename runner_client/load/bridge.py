"""Locust's users are greenlets; the runner client is asyncio. One uvloop loop runs in a native
thread per Locust process, and each greenlet waits for its coroutine there without blocking the
gevent hub, so every user's transfer overlaps every other's.

Why uvloop in a thread started with the original ``_thread``: Locust monkey-patches ``socket``,
``selectors`` and ``threading`` when it is imported. A plain asyncio loop would take gevent's
selector and sockets (and, in a patched thread, a greenlet instead of a thread); uvloop's
sockets and poller are libuv's, which gevent does not touch. Nothing on the load path calls
``asyncio.to_thread`` (whose pool threads would be greenlets here): the digest sink and the
generated upload body run on the loop itself. docs/load-testing.md has the measurement.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import gevent.event
import gevent.monkey
import uvloop

T = TypeVar("T")


class LoopThread:
    def __init__(self) -> None:
        self.loop = uvloop.new_event_loop()
        start_new_thread = gevent.monkey.get_original("_thread", "start_new_thread")
        start_new_thread(self.loop.run_forever, ())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop; this greenlet sleeps until it ends. The loop's thread wakes
        this hub through an async watcher (libev's thread-safe ``ev_async_send``), which also
        keeps the hub alive meanwhile: with every greenlet waiting here and no timer pending, an
        ``AsyncResult`` alone would end in ``LoopExit``. A greenlet killed meanwhile (Locust
        stopping its users) cancels the coroutine."""
        outcome: list[asyncio.Task[T]] = []
        watcher = gevent.get_hub().loop.async_()
        ended = gevent.event.Event()
        watcher.start(ended.set)

        def start() -> None:
            task = self.loop.create_task(coro)
            outcome.append(task)
            task.add_done_callback(lambda _: watcher.send())

        self.loop.call_soon_threadsafe(start)
        try:
            ended.wait()
        except BaseException:
            self.loop.call_soon_threadsafe(lambda: outcome and outcome[0].cancel())
            raise
        finally:
            watcher.close()
        return outcome[0].result()


_shared: LoopThread | None = None


def shared_loop() -> LoopThread:
    """The process's loop, started on first use (in each Locust worker process of its own)."""
    global _shared
    if _shared is None:
        _shared = LoopThread()
    return _shared
