"""One job's log on its way to the coordinator (network/trace.go ``clientJobTrace``).

Output is masked, capped at the runner's ``output_limit``, and kept whole in memory; a
watcher sends what is new every update interval (``PATCH /jobs/:id/trace``, at most 1 MiB a
patch, resuming from the server's ``Range`` after a 416) and touches the job with a
``running`` update when nothing went out for a while. ``finish`` sends the rest and then the
final state with the log's CRC32 and size, retrying as gitlab-runner does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import Callable

from runner_client.runner.config import RunnerEntry
from runner_client.runner.masking import Masker
from runner_client.runner.network import (
    DEFAULT_UPDATE_INTERVAL,
    MAX_UPDATE_INTERVAL,
    JobsClient,
    PatchState,
    UpdateResult,
    UpdateState,
)
from runner_client.transport import Backoff, Sleep

PATCH_LIMIT = 1024 * 1024  # common.DefaultTracePatchLimit
MIN_FORCE_SEND = 30.0  # common.MinTraceForceSendInterval
MAX_FORCE_SEND = 30 * 60.0  # common.MaxTraceForceSendInterval
FORCE_SEND_MULTIPLIER = 4  # common.TraceForceSendUpdateIntervalMultiplier
FINAL_UPDATE_RETRIES = 10  # common.DefaultFinalUpdateRetryLimit
FINAL_UPDATE_BACKOFF_MAX = 60 * 60.0  # common.DefaultfinalUpdateBackoffMax
YELLOW, RESET = "\033[33;1m", "\033[0;m"


class JobTrace:
    """``write`` takes the job's output; ``cancel_requested`` / ``aborted`` tell the build to stop."""

    def __init__(
        self,
        client: JobsClient,
        runner: RunnerEntry,
        job_id: int,
        job_token: str,
        masker: Masker,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client, self.runner, self.job_id, self.job_token = client, runner, job_id, job_token
        self.masker = masker
        self.limit = runner.output_limit_bytes
        self.sleep, self.clock = sleep, clock
        self.buffer = bytearray()
        self.limit_reached = False
        self.sent = 0
        self.sent_time = clock()
        self.update_interval = DEFAULT_UPDATE_INTERVAL
        self.cancel_requested = asyncio.Event()  # canceling: stop the script, run after_script and uploads
        self.aborted = asyncio.Event()  # the job is gone (403/404, canceled or failed server-side)
        self._watcher: asyncio.Task[None] | None = None

    # --- the log ----------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        self._append(self.masker.feed(data))

    def write_text(self, text: str) -> None:
        self.write(text.encode())

    def flush(self) -> None:
        """End of a stage: a partial last line goes out too."""
        self._append(self.masker.flush())

    def _append(self, data: bytes) -> None:
        if not data or self.limit_reached:
            return
        room = self.limit - len(self.buffer)
        if len(data) <= room:
            self.buffer += data
            return
        self.buffer += data[: max(room, 0)]
        self.limit_reached = True
        self.buffer += (
            f"\n{YELLOW}Job's log exceeded limit of {self.limit} bytes.\n"
            f"Job execution will continue but no more output will be collected.{RESET}\n"
        ).encode()

    @property
    def checksum(self) -> str:
        return f"crc32:{zlib.crc32(self.buffer) & 0xFFFFFFFF:08x}"

    @property
    def force_send_interval(self) -> float:
        return min(max(self.update_interval * FORCE_SEND_MULTIPLIER, MIN_FORCE_SEND), MAX_FORCE_SEND)

    # --- incremental updates ----------------------------------------------------------------------

    def start(self) -> None:
        self._watcher = asyncio.create_task(self._watch(), name=f"trace-{self.job_id}")

    def _set_interval(self, seconds: float) -> None:
        if seconds > 0:
            self.update_interval = min(seconds, MAX_UPDATE_INTERVAL)

    def _observe(self, result: UpdateResult) -> None:
        self._set_interval(result.update_interval)
        if result.cancel_requested:
            self.cancel_requested.set()

    async def _watch(self) -> None:
        while True:
            await self.sleep(self.update_interval)
            if not await self._incremental_update():
                self.aborted.set()
                return

    async def _incremental_update(self) -> bool:
        """False once the job is no longer ours to run."""
        state = await self._send_patch()
        if state is PatchState.ABORT:
            return False
        if state is PatchState.SUCCEEDED and self.clock() - self.sent_time > self.force_send_interval:
            result = await self.client.update_job(
                self.runner,
                self.job_id,
                self.job_token,
                "running",
                checksum=self.checksum,
                bytesize=len(self.buffer),
            )
            self._observe(result)
            if result.state is UpdateState.SUCCEEDED:
                self.sent_time = self.clock()
            elif result.state is UpdateState.ABORT:
                return False
        return True

    async def _send_patch(self) -> PatchState:
        content = bytes(self.buffer[self.sent : self.sent + PATCH_LIMIT])
        if not content:
            return PatchState.SUCCEEDED
        result = await self.client.patch_trace(self.runner, self.job_id, self.job_token, content, self.sent)
        self._set_interval(result.update_interval)
        if result.cancel_requested:
            self.cancel_requested.set()
        if result.state in (PatchState.SUCCEEDED, PatchState.RANGE_MISMATCH):
            self.sent = min(result.sent_offset, len(self.buffer))
            self.sent_time = self.clock()
        return result.state

    async def _ensure_all_sent(self) -> None:
        while self.sent < len(self.buffer):
            state = await self._send_patch()
            if state in (PatchState.ABORT, PatchState.NOT_FOUND):
                return
            if state is not PatchState.SUCCEEDED:
                await self.sleep(self.update_interval)

    # --- the end ----------------------------------------------------------------------------------

    async def stop_watching(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None

    async def finish(self, state: str, failure_reason: str = "", exit_code: int = 0) -> UpdateState:
        """Send the rest of the log, then the final state; the result of the last update."""
        await self.stop_watching()
        self.flush()
        self.update_interval = DEFAULT_UPDATE_INTERVAL  # let the coordinator set it again
        backoff = Backoff(minimum=1.0, maximum=FINAL_UPDATE_BACKOFF_MAX, factor=2.0, jitter=False)
        result = UpdateResult(UpdateState.FAILED)
        for _ in range(FINAL_UPDATE_RETRIES + 1):
            await self._ensure_all_sent()
            result = await self.client.update_job(
                self.runner,
                self.job_id,
                self.job_token,
                state,
                failure_reason=failure_reason,
                exit_code=exit_code,
                checksum=self.checksum,
                bytesize=len(self.buffer),
            )
            self._set_interval(result.update_interval)
            if result.state in (UpdateState.SUCCEEDED, UpdateState.ABORT):
                return result.state
            if result.state is UpdateState.TRACE_VALIDATION_FAILED:
                self.sent = 0  # send the whole log again
                await self.sleep(self.update_interval)
            elif result.state is UpdateState.ACCEPTED:
                await self.sleep(self.update_interval)
            else:
                await self.sleep(backoff.duration())
        return result.state
