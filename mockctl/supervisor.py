"""Keeps ``mockcoord serve``'s Workhorse up: a front door that died silently would leave Rails
ready and every runner refused. Each exit is said on the console and shows in Rails'
``/-/readiness`` (``workhorse_check``) until a restarted Workhorse answers again."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

from mockctl.front_door import exit_reason, stop_workhorse

Process = asyncio.subprocess.Process

BACKOFF_FIRST = 0.5  # seconds before the first restart, doubled for each quick exit in a row
BACKOFF_MAX = 8.0
STABLE_AFTER = 30.0  # a Workhorse that served this long starts the count again
GIVE_UP_AFTER = 5  # quick exits in a row (failed restarts among them)


def say_on_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class WorkhorseSupervisor:
    def __init__(
        self,
        launch: Callable[[], Awaitable[Process]],
        ready: Callable[[Process], Awaitable[None]],
        say: Callable[[str], None] = say_on_stderr,
    ) -> None:
        """``launch`` starts a Workhorse, ``ready`` waits until it serves through Rails; both
        raise RuntimeError with the reason otherwise."""
        self._launch = launch
        self._ready = ready
        self._say = say
        self.proc: Process | None = None
        self.down: str | None = None  # why Workhorse is not serving, while it is not
        self._since = 0.0
        self.task: asyncio.Task[None] | None = None

    async def launch(self) -> Process:
        """Start a Workhorse; the first one before Rails is up (the two start side by side)."""
        self.proc, self._since = await self._launch(), asyncio.get_running_loop().time()
        return self.proc

    async def supervise(self) -> None:
        """Once Rails is up: until the first Workhorse serves (RuntimeError if it does not,
        as nothing was up yet), then keep it up."""
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
            await stop_workhorse(self.proc)

    async def _until_ready(self, proc: Process) -> None:
        try:
            await self._ready(proc)
        except BaseException:
            await stop_workhorse(proc)
            raise

    async def _supervise(self) -> None:
        """Until given up (RuntimeError) or cancelled by ``stop``."""
        quick_exits = 0
        while True:
            assert self.proc is not None
            what = f"Workhorse (pid {self.proc.pid}) {exit_reason(await self.proc.wait())}"
            lived = asyncio.get_running_loop().time() - self._since
            quick_exits = quick_exits + 1 if lived < STABLE_AFTER else 1
            while True:
                self.down = what
                if quick_exits >= GIVE_UP_AFTER:
                    raise RuntimeError(
                        f"{what}: {quick_exits} exits in a row within {STABLE_AFTER:g}s of starting, "
                        "giving up (see log/workhorse.log)"
                    )
                delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (quick_exits - 1))
                self._say(f"{what}; restarting it in {delay:g}s")
                self.down = f"{what}; restarting"
                await asyncio.sleep(delay)
                try:
                    await self._until_ready(await self.launch())
                    break
                except RuntimeError as exc:
                    what = f"restarting Workhorse failed: {exc}"
                    quick_exits += 1
            self.down = None
            self._say(f"Workhorse is back (pid {self.proc.pid})")
