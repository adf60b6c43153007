"""Keeps ``mockcoord serve``'s child processes up, one supervisor each: a front door that died
silently would leave Rails ready and every runner refused, and a dead further Rails process
would leave its share of the CPU unused. Each exit is said on the console; a Workhorse's shows
in Rails' ``/-/readiness`` (``workhorse_check``) until a restarted Workhorse answers again."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

from mockctl.children import exit_reason, stop

Process = asyncio.subprocess.Process

BACKOFF_FIRST = 0.5  # seconds before the first restart, doubled for each quick exit in a row
BACKOFF_MAX = 8.0
STABLE_AFTER = 30.0  # a process that served this long starts the count again
GIVE_UP_AFTER = 5  # quick exits in a row (failed restarts among them)


def say_on_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Supervisor:
    def __init__(
        self,
        launch: Callable[[], Awaitable[Process]],
        ready: Callable[[Process], Awaitable[None]],
        say: Callable[[str], None] = say_on_stderr,
        name: str = "Workhorse",
        log: str = "log/workhorse.log",
    ) -> None:
        """``launch`` starts the process, ``ready`` waits until it serves; both raise
        RuntimeError with the reason otherwise. ``log``: where to look when it is given up."""
        self.name, self.log = name, log
        self._launch = launch
        self._ready = ready
        self._say = say
        self.proc: Process | None = None
        self.down: str | None = None  # why the process is not serving, while it is not
        self._since = 0.0
        self.task: asyncio.Task[None] | None = None

    async def launch(self) -> Process:
        """Start the process; a first Workhorse before Rails is up (the two start side by side)."""
        self.proc, self._since = await self._launch(), asyncio.get_running_loop().time()
        return self.proc

    async def supervise(self) -> None:
        """Once Rails is up: until the first process serves (RuntimeError if it does not, as
        nothing was up yet), then keep it up."""
        assert self.proc is not None
        await self._until_ready(self.proc)
        self.task = asyncio.create_task(self._supervise())

    def check(self) -> dict[str, str]:
        """A ``/-/readiness`` entry."""
        return {"status": "ok"} if self.down is None else {"status": "failed", "message": self.down}

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        if self.proc is not None:
            await stop(self.proc)

    async def _until_ready(self, proc: Process) -> None:
        try:
            await self._ready(proc)
        except BaseException:
            await stop(proc)
            raise

    async def _supervise(self) -> None:
        """Until given up (RuntimeError) or cancelled by ``stop``."""
        quick_exits = 0
        while True:
            assert self.proc is not None
            what = f"{self.name} (pid {self.proc.pid}) {exit_reason(await self.proc.wait())}"
            lived = asyncio.get_running_loop().time() - self._since
            quick_exits = quick_exits + 1 if lived < STABLE_AFTER else 1
            while True:
                self.down = what
                if quick_exits >= GIVE_UP_AFTER:
                    raise RuntimeError(
                        f"{what}: {quick_exits} exits in a row within {STABLE_AFTER:g}s of starting, "
                        f"giving up (see {self.log})"
                    )
                delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (quick_exits - 1))
                self._say(f"{what}; restarting it in {delay:g}s")
                self.down = f"{what}; restarting"
                await asyncio.sleep(delay)
                try:
                    await self._until_ready(await self.launch())
                    break
                except RuntimeError as exc:
                    what = f"restarting {self.name} failed: {exc}"
                    quick_exits += 1
            self.down = None
            self._say(f"{self.name} is back (pid {self.proc.pid})")
