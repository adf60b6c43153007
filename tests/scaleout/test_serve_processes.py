"""``mockcoord serve --rails-processes 2 --workhorse-processes 2`` on PostgreSQL: runner traffic
through the front door, spread over both Rails processes; a fault rule and the clock set through
the front door in force in each process; a killed Workhorse survived; SQLite refused.

Which process served is read from ``/proc``: the Rails processes' established connections on
the Rails port (nothing is added to the answers; GitLab's carry no process id either).
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mockctl.ports import free_port
from tests import postgres

ADMIN = {"PRIVATE-TOKEN": "glpat-scaleout-admin"}
RUNNER = "glrt-scaleout-runner-0001"
SCENARIO = {
    "users": [{"username": "dev"}],
    "projects": [
        {
            "path": "dev/app",
            "pipelines": [
                {
                    "user": "dev",
                    "status": "running",
                    "jobs": [{"name": "build", "status": "pending", "script": ["true"]}],
                }
            ],
        }
    ],
    "runners": [{"token": RUNNER}],
}
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


def postgres_url(db_url: str) -> str:
    """A database of its own beside the test one (serve empties it on every start)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL: set MOCKCOORD_TEST_DATABASE_URL=postgresql+asyncpg://...")
    return postgres.database_beside(db_url, "scaleout")


@dataclass
class Served:
    proc: subprocess.Popen[str]
    url: str
    rails_port: int
    said: list[str]

    def children(self, module: str) -> list[int]:
        pids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [int(p) for p in pids if module in Path(f"/proc/{p}/cmdline").read_text()]

    def rails_pids(self) -> list[int]:
        return [self.proc.pid, *self.children("mockctl.rails_process")]

    def until_said(self, text: str) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.said.append(line)
            if text in line:
                return
        raise AssertionError(f"serve ended before saying {text!r}: {''.join(self.said)}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, db_url: str) -> Iterator[Served]:
    database = postgres_url(db_url)
    port, rails_port = free_port(), free_port()
    command = [sys.executable, "-m", "app", "serve", "--rails-processes", "2", "--workhorse-processes", "2"]
    command += ["--database-url", database, "--data-dir", str(tmp_path_factory.mktemp("serve"))]
    command += ["--port", str(port), "--rails-port", str(rails_port), "--s3-port", str(free_port())]
    command += ["--no-demo", "--no-cron", "--admin-token", ADMIN["PRIVATE-TOKEN"]]
    env = {**os.environ, "COLUMNS": "500"}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    served = Served(proc, f"http://127.0.0.1:{port}", rails_port, [])
    try:
        served.until_said("In another shell")
        yield served
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


def serving_rails(served: Served) -> set[int]:
    """The Rails processes holding an established connection on the Rails port."""
    inodes = {
        line.split()[9]
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if line.split()[1].endswith(f":{served.rails_port:04X}") and line.split()[3] == "01"
    }
    holding = set()
    for pid in served.rails_pids():
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd) if fd.is_symlink() else ""
            if target.startswith("socket:[") and target[8:-1] in inodes:
                holding.add(pid)
    return holding


async def burst(url: str, count: int, status: int) -> None:
    """``count`` runner checks at once, each on a connection of its own."""

    async def verify() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            res = await client.post("/api/v4/runners/verify", json={"token": RUNNER})
            assert res.status_code == status, res.text

    await asyncio.gather(*(verify() for _ in range(count)))


def zipped(name: str, text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(name, text)
    return buf.getvalue()


async def test_runner_traffic_through_two_workhorses_reaches_both_rails(served: Served) -> None:
    assert "  processes     2 Workhorse processes, 2 Rails processes\n" in served.said
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        assert (await client.post("/-/mock/seed", json=SCENARIO, headers=ADMIN)).status_code == 201
        picked = await client.post("/api/v4/jobs/request", json={"token": RUNNER, "info": {}})
        assert picked.status_code == 201, picked.text
        job = picked.json()
        token = {"JOB-TOKEN": job["token"]}
        body = zipped("out.txt", "built by the scale-out test")
        uploaded = await client.post(
            f"/api/v4/jobs/{job['id']}/artifacts?artifact_type=archive&artifact_format=zip",
            files={"file": ("artifacts.zip", body, "application/zip")},
            headers=token,
        )
        assert uploaded.status_code == 201, uploaded.text
        proxied = await client.get(f"/api/v4/jobs/{job['id']}/artifacts", headers=token)
        assert proxied.status_code == 200 and proxied.content == body
        direct = await client.get(f"/api/v4/jobs/{job['id']}/artifacts?direct_download=true", headers=token)
        assert direct.status_code == 302
        assert (await client.get(direct.headers["location"])).content == body
    await burst(served.url, 40, 200)
    assert serving_rails(served) == set(served.rails_pids())


async def test_a_fault_rule_and_the_clock_set_through_the_front_door_hold_in_every_rails(served: Served) -> None:
    rule = {"component": "rails", "path": "^/api/v4/runners/verify$", "status": 503, "body": "down for the test"}
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        added = (await client.post("/-/mock/faults", json=rule, headers=ADMIN)).json()
        try:
            await burst(served.url, 40, 503)
            assert serving_rails(served) == set(served.rails_pids())
            listed = (await client.get("/-/mock/faults", headers=ADMIN)).json()
            assert [r["hits"] for r in listed if r["id"] == added["id"]] == [40]  # counted in one place
        finally:
            assert (await client.delete(f"/-/mock/faults/{added['id']}", headers=ADMIN)).status_code == 204
        await burst(served.url, 10, 200)
        assert (await client.post("/-/mock/clock", json={"advance": "3 days"}, headers=ADMIN)).status_code == 200
    rails = f"http://127.0.0.1:{served.rails_port}"
    offsets = set()
    for _ in range(12):  # a fresh connection each: either process may take it
        async with httpx.AsyncClient(base_url=rails, timeout=30) as direct:
            offsets.add((await direct.get("/-/mock/clock", headers=ADMIN)).json()["offset_seconds"])
    assert offsets == {3 * 86400}


async def test_a_killed_workhorse_process_is_survived_and_restarted(served: Served) -> None:
    first, second = served.children("mockctl.workhorse")
    os.kill(first, signal.SIGKILL)
    await burst(served.url, 20, 200)  # the other one serves the front door meanwhile
    served.until_said("Workhorse is back")
    assert f"Workhorse (pid {first}) was killed by signal SIGKILL" in "".join(served.said)
    now = served.children("mockctl.workhorse")
    assert second in now and first not in now and len(now) == 2


@pytest.mark.parametrize(("command", "option"), [("serve", "--rails-processes"), ("rails", "--processes")])
def test_several_rails_processes_on_sqlite_are_refused(tmp_path: Path, command: str, option: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", command, option, "2", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "500", "MOCKCOORD_DATABASE_URL": ""},
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout.startswith(f"{option} 2 needs PostgreSQL (--database-url postgresql+asyncpg://...)")
    assert "SQLite locks its whole file" in result.stdout
    assert not (tmp_path / "mockcoord.sqlite3").exists()  # refused before anything started
