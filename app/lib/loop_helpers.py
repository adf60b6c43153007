"""``Gitlab::LoopHelpers#loop_until``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable


async def loop_until(block: Callable[[], Awaitable[object]], *, seconds: float, limit: int) -> bool:
    """Runs ``block`` up to ``limit`` times; stops early only when it returns something falsy
    (GitLab's services end theirs with ``count += n``, an Integer, so an empty batch does not
    stop a run) or when ``seconds`` have passed after a pass. ``True`` when it ran out
    of passes or time, as GitLab's does."""
    deadline = time.monotonic() + seconds
    for _ in range(limit):
        if not await block():
            return False
        if time.monotonic() > deadline:
            return True
    return True
