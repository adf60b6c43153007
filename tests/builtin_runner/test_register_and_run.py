"""``runner register`` (registration token, seeded authentication token, refusals) and the
polling loop's edges (nothing to do, a refused runner token, the job timeout, concurrency)."""

from __future__ import annotations

import time
import tomllib

from sqlmodel import select

from app.models import BuildStatus, Runner
from tests.builtin_runner.helpers import (
    REGISTRATION_TOKEN,
    RUNNER_TOKEN,
    job_named,
    job_row,
    pipeline_scenario,
    run_jobs,
    runner_cli,
    trace_of,
    write_config,
)

HELLO = {"name": "hello", "status": "pending", "script": ["echo hello"]}


async def runner_rows(c) -> dict[str, Runner]:
    async with c.state.db.session() as session:
        return {r.token: r for r in (await session.exec(select(Runner))).all()}


async def test_register_with_registration_token_then_run(stack, tmp_path):
    seeded = await stack.rails.seed(pipeline_scenario([HELLO]))
    config = tmp_path / "etc" / "config.toml"
    done = await runner_cli(
        "register",
        "--non-interactive",
        "--url",
        stack.url,
        "--registration-token",
        REGISTRATION_TOKEN,
        "--description",
        "ci-box",
        "--tag-list",
        "docker,linux",
        "--run-untagged",
        "--maximum-timeout",
        "900",
        "--config",
        str(config),
        cwd=tmp_path,
    )
    assert done.code == 0, done.stderr
    assert "Registering runner... succeeded" in done.stderr
    assert "Runner registered successfully." in done.stderr
    assert f'Configuration (with the authentication token) was saved in "{config}"' in done.stderr
    assert oct(config.stat().st_mode & 0o777) == "0o600"

    data = tomllib.loads(config.read_text())
    assert data["concurrent"] == 1 and data["check_interval"] == 0
    (entry,) = data["runners"]
    assert entry["name"] == "ci-box" and entry["url"] == stack.url and entry["executor"] == "shell"
    assert entry["token"].startswith("glrt-")
    row = (await runner_rows(stack.rails))[entry["token"]]
    assert entry["id"] == row.id
    assert (row.description, row.tag_list, row.run_untagged, row.maximum_timeout) == (
        "ci-box",
        ["docker", "linux"],
        True,
        900,
    )
    assert (tmp_path / "etc" / ".runner_system_id").read_text().startswith("r_")

    # The file as written is enough to run: poll every second instead of three.
    config.write_text(config.read_text().replace("check_interval = 0", "check_interval = 1"))
    ran = await runner_cli("run", "-c", str(config), "--once", "--wait-timeout", "20", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    hello = job_named(seeded, "hello")
    assert (await job_row(stack.rails, hello["id"])).status == BuildStatus.success
    assert "\n\x1b[0K  on ci-box " in await trace_of(stack.rails, hello["id"])


async def test_register_with_authentication_token(stack, tmp_path):
    await stack.rails.seed(pipeline_scenario([]))
    config = tmp_path / "config.toml"
    args = ["register", "--url", stack.url, "--token", RUNNER_TOKEN, "--name", "seeded-box", "--config", str(config)]
    done = await runner_cli(*args, cwd=tmp_path)
    assert done.code == 0, done.stderr
    assert "Verifying runner... is valid" in done.stderr
    (entry,) = tomllib.loads(config.read_text())["runners"]
    assert (entry["token"], entry["name"]) == (RUNNER_TOKEN, "seeded-box")
    assert entry["id"] == (await runner_rows(stack.rails))[RUNNER_TOKEN].id

    # A second registration is appended, as gitlab-runner does.
    again = await runner_cli(*args[:-4], "--name", "second", "--config", str(config), cwd=tmp_path)
    assert again.code == 0, again.stderr
    assert [r["name"] for r in tomllib.loads(config.read_text())["runners"]] == ["seeded-box", "second"]


async def test_register_refusals(stack, tmp_path):
    await stack.rails.seed(pipeline_scenario([]))
    config = tmp_path / "config.toml"

    wrong = await runner_cli("register", "--url", stack.url, "-r", "GR1348941-wrong", "-c", str(config), cwd=tmp_path)
    assert wrong.code == 1
    assert "ERROR: Registering runner... forbidden (check registration token)" in wrong.stderr
    assert "/api/v4/runners: 403 Forbidden" in wrong.stderr
    assert "PANIC: Failed to register the runner." in wrong.stderr

    unknown = await runner_cli(
        "register", "--url", stack.url, "-t", "glrt-not-a-runner", "-c", str(config), cwd=tmp_path
    )
    assert unknown.code == 1
    assert "Verifying runner... is not valid" in unknown.stderr
    assert "PANIC: Failed to verify the runner." in unknown.stderr

    reserved = await runner_cli(
        "register", "--url", stack.url, "-t", RUNNER_TOKEN, "--tag-list", "a", "-c", str(config), cwd=tmp_path
    )
    assert reserved.code == 1
    assert "FATAL: Runner configuration other than name and executor configuration is reserved" in reserved.stderr

    unreachable = await runner_cli(
        "register", "--url", "http://127.0.0.1:9", "-r", REGISTRATION_TOKEN, "-c", str(config), cwd=tmp_path
    )
    assert unreachable.code == 1
    assert "ERROR: Registering runner... client error" in unreachable.stderr
    assert not config.exists()
    assert set(await runner_rows(stack.rails)) == {RUNNER_TOKEN}


async def test_run_without_jobs_or_with_a_refused_token(stack, tmp_path):
    await stack.rails.seed(pipeline_scenario([]))
    started = time.monotonic()
    idle = await run_jobs(stack.url, tmp_path, 1, wait=2)
    assert idle.code == 0, idle.stderr
    assert "No job received within the wait timeout" in idle.stderr
    assert time.monotonic() - started < 15

    config = write_config(tmp_path / "bad.toml", stack.url, token="glrt-revoked-0000")
    refused = await runner_cli("run", "-c", str(config), cwd=tmp_path)
    assert refused.code == 1
    assert refused.stderr.count("ERROR: Checking for jobs... forbidden") == 3
    assert "is not healthy and will be disabled!" in refused.stderr

    missing = await runner_cli("run", "-c", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert missing.code == 1 and "FATAL: config file" in missing.stderr


async def test_job_timeout(stack, tmp_path):
    """``runner_info.timeout`` (here the runner's ``maximum_timeout``) ends the job as job_execution_timeout."""
    seeded = await stack.rails.seed(pipeline_scenario([{**HELLO, "script": ["echo start", "sleep 30", "echo end"]}]))
    config = tmp_path / "config.toml"
    reg = await runner_cli(
        "register",
        "--url",
        stack.url,
        "-r",
        REGISTRATION_TOKEN,
        "--maximum-timeout",
        "2",
        "-c",
        str(config),
        cwd=tmp_path,
    )
    assert reg.code == 0, reg.stderr
    started = time.monotonic()
    ran = await runner_cli("run", "-c", str(config), "--once", cwd=tmp_path)
    assert ran.code == 0, ran.stderr
    assert time.monotonic() - started < 20
    hello = job_named(seeded, "hello")
    row = await job_row(stack.rails, hello["id"])
    assert (row.status, row.failure_reason) == (BuildStatus.failed, "job_execution_timeout")
    log = await trace_of(stack.rails, hello["id"])
    assert "start\n" in log and "end\n" not in log
    assert log.endswith("ERROR: Job failed: execution took longer than 2s seconds\x1b[0;m\n")


async def test_concurrent_jobs(stack, tmp_path):
    """With ``concurrent = 2`` two jobs run at once: each waits for the other's file."""
    sync = tmp_path / "sync"
    sync.mkdir()

    def waiting_for(mine: str, other: str) -> dict:
        return {
            "name": mine,
            "status": "pending",
            "variables": {"SYNC": str(sync)},
            "script": [
                f"touch $SYNC/{mine}",
                f"for i in $(seq 100); do [ -e $SYNC/{other} ] && exit 0; sleep 0.1; done; exit 1",
            ],
        }

    seeded = await stack.rails.seed(pipeline_scenario([waiting_for("a", "b"), waiting_for("b", "a")]))
    done = await run_jobs(stack.url, tmp_path, 2, concurrent=2)
    assert done.code == 0, done.stderr
    for name in ("a", "b"):
        assert (await job_row(stack.rails, job_named(seeded, name)["id"])).status == BuildStatus.success
    assert "builds=2" in done.stderr
