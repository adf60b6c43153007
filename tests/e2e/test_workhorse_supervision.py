"""``mockcoord serve``'s stack notices Workhorse dying: it says so, Rails' ``/-/readiness``
fails with ``workhorse_check`` until a restarted Workhorse serves, and one that dies at once
again and again is given up."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from mockctl import supervisor
from mockctl.ports import free_port
from mockctl.stack import running_stack


def stack_settings(tmp: Path) -> Settings:
    return Settings(
        data_dir=tmp,
        workhorse_port=free_port(),
        rails_port=free_port(),
        admin_token="glpat-supervision",
        object_store={"enabled": False},
    )


async def readiness_until(client: httpx.AsyncClient, url: str, status: int) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            res = await client.get(f"{url}/-/readiness")
            if res.status_code == status:
                return res.json()
            await asyncio.sleep(0.02)


async def test_a_killed_workhorse_fails_readiness_until_it_is_back(tmp_path: Path) -> None:
    said: list[str] = []
    settings = stack_settings(tmp_path)
    rails = f"http://127.0.0.1:{settings.rails_port}"
    async with running_stack(settings, say=said.append) as stack, httpx.AsyncClient(timeout=10) as client:
        assert (await readiness_until(client, rails, 200))["workhorse_check"] == [{"status": "ok"}]
        killed = stack.workhorses[0].proc
        assert killed is not None
        killed.kill()

        down = await readiness_until(client, rails, 503)
        assert down["status"] == "failed" and down["db_check"] == [{"status": "ok"}]
        assert down["workhorse_check"][0]["status"] == "failed"
        assert f"Workhorse (pid {killed.pid}) was killed by signal SIGKILL" in down["workhorse_check"][0]["message"]

        assert (await readiness_until(client, rails, 200))["workhorse_check"] == [{"status": "ok"}]
        assert (await client.get(f"{stack.url}/-/health")).text == "GitLab OK"
        back = stack.workhorses[0].proc
        assert back is not None and back.pid != killed.pid
    assert said[0].startswith(f"Workhorse (pid {killed.pid}) was killed by signal SIGKILL; restarting it in ")
    assert said[1] == f"Workhorse is back (pid {back.pid})"


async def test_a_workhorse_that_dies_at_once_is_given_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisor, "BACKOFF_FIRST", 0.01)  # the count matters here, not the pauses
    said: list[str] = []
    settings = stack_settings(tmp_path)
    with pytest.raises(RuntimeError, match=r"exited with status 1: 5 exits in a row .* giving up") as gave_up:
        async with running_stack(settings, say=said.append) as stack:
            settings.secret_file.unlink()  # every new Workhorse now stops at start
            assert stack.workhorses[0].proc is not None
            stack.workhorses[0].proc.kill()
            await stack.wait()
    assert "restarting Workhorse failed: Workhorse exited with status 1" in str(gave_up.value)
    assert len(said) == supervisor.GIVE_UP_AFTER - 1 and "Workhorse is back" not in " ".join(said)
