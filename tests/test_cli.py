"""``mockcoord serve`` / ``seed`` / ``reset`` as a newcomer runs them: a real process, real ports."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.config import DEFAULT_ADMIN_TOKEN
from mockctl.ports import free_port

MOCKCOORD = [sys.executable, "-m", "app"]


class Served:
    def __init__(self, proc: subprocess.Popen[str], banner: str, url: str) -> None:
        self.proc, self.banner, self.url = proc, banner, url


def start_serve(tmp: Path, *args: str) -> Served:
    """``serve`` without its cron schedule unless ``--cron`` is given: a moved clock would set
    housekeeping going under the test's feet."""
    if "--cron" not in args:
        args = (*args, "--no-cron")
    front_port = free_port()
    proc = subprocess.Popen(
        [
            *MOCKCOORD,
            "serve",
            "--data-dir",
            str(tmp),
            "--rails-port",
            str(free_port()),
            "--port",
            str(front_port),
            "--s3-port",
            str(free_port()),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 30
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "proxied download" in line or ("admin token" in line and "--no-demo" in args):
            if "proxied download" in line:
                lines.append(proc.stdout.readline())
            return Served(proc, "".join(lines), f"http://127.0.0.1:{front_port}")
    proc.kill()
    raise AssertionError("serve did not become ready:\n" + "".join(lines))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = start_serve(tmp_path)
    yield s
    s.proc.terminate()
    s.proc.wait(timeout=15)


def test_serve_prints_a_working_demo(served: Served) -> None:
    banner = served.banner
    assert "mockcoord is ready" in banner and DEFAULT_ADMIN_TOKEN in banner
    token = re.search(r"JOB-TOKEN: (glcbt-[\w-]+)", banner).group(1)  # type: ignore[union-attr]
    direct = re.search(r"'(http://\S+\?direct_download=true)'", banner).group(1)  # type: ignore[union-attr]
    assert direct.startswith(served.url)  # the front door is Workhorse
    res = httpx.get(direct, headers={"JOB-TOKEN": token})
    assert res.status_code == 302
    archive = httpx.get(res.headers["location"])
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert sorted(names) == ["out/build-info.json", "out/hello.txt"]
    proxied = httpx.get(direct.split("?")[0], headers={"JOB-TOKEN": token})
    assert proxied.status_code == 200 and "gitlab-workhorse-send-data" not in proxied.headers
    assert proxied.content == archive.content


def test_seed_and_reset_commands(served: Served, tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("users:\n  - username: carol\nprojects:\n  - path: carol/tool\n")
    out = subprocess.run(
        [*MOCKCOORD, "seed", str(scenario), "--url", served.url], capture_output=True, text=True, check=True
    )
    assert '"carol/tool"' in out.stdout
    again = subprocess.run([*MOCKCOORD, "seed", str(scenario), "--url", served.url], capture_output=True, text=True)
    assert again.returncode == 1 and "user 'carol' already exists" in again.stdout
    subprocess.run([*MOCKCOORD, "reset", "--url", served.url], capture_output=True, text=True, check=True)
    out = subprocess.run(
        [*MOCKCOORD, "seed", str(scenario), "--url", served.url], capture_output=True, text=True, check=True
    )
    assert '"carol"' in out.stdout


def test_serve_twice_on_one_data_dir_reuses_the_demo(tmp_path: Path) -> None:
    first = start_serve(tmp_path)
    first.proc.terminate()
    first.proc.wait(timeout=15)
    second = start_serve(tmp_path)
    try:
        assert "Demo: job 1 " in second.banner
    finally:
        second.proc.terminate()
        second.proc.wait(timeout=15)


@pytest.mark.parametrize(
    "command", [["serve", "--data-dir"], ["rails", "--data-dir"], ["workhorse", "--secret-file"]], ids=lambda c: c[0]
)
def test_refuses_public_bind_with_default_admin_token(tmp_path: Path, command: list[str]) -> None:
    """Every command that binds, Workhorse too: it proxies ``/-/mock/*`` to Rails."""
    env = {k: v for k, v in os.environ.items() if k != "MOCKCOORD_ADMIN_TOKEN"}
    target = tmp_path / "x"
    if command[0] == "workhorse":
        target.write_text("c2VjcmV0\n")  # --secret-file must exist; the bind is refused before it is read
    out = subprocess.run(
        [*MOCKCOORD, *command, str(target), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert out.returncode == 2
    assert "Refusing to bind 0.0.0.0 with the default admin token" in out.stdout


SECRET = "glcbt-query-string-secret"
QUERIES = [f"/api/v4/jobs/1/artifacts?token={SECRET}", f"/api/v4/projects/1/jobs?private_token={SECRET}&scope=success"]


def assert_access_log_masked(proc: subprocess.Popen[str], url: str) -> None:
    """Tokens in query strings reach Rails' access log as ``[FILTERED]``; the rest stays."""
    for target in QUERIES:
        httpx.get(url + target)
    proc.terminate()
    out, _ = proc.communicate(timeout=15)
    assert "/api/v4/jobs/1/artifacts?token=[FILTERED] HTTP/1.1" in out
    assert "/api/v4/projects/1/jobs?private_token=[FILTERED]&scope=success HTTP/1.1" in out
    assert SECRET not in out


def test_serve_access_log_masks_query_tokens(tmp_path: Path) -> None:
    s = start_serve(tmp_path, "--no-demo", "--storage", "local", "--log-level", "info")
    assert_access_log_masked(s.proc, s.url)


def test_rails_access_log_masks_query_tokens(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "MOCKCOORD_LOG_LEVEL": "info", "MOCKCOORD_OBJECT_STORE__ENABLED": "false"}
    proc = subprocess.Popen(
        [*MOCKCOORD, "rails", "--port", str(port), "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/-/readiness").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    assert_access_log_masked(proc, url)


def test_local_storage_and_custom_scenario(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("users:\n  - username: dora\n")
    s = start_serve(tmp_path / "data", "--storage", "local", "--no-demo", "--scenario", str(scenario))
    try:
        assert "local " in s.banner and '"dora"' in s.banner
    finally:
        s.proc.terminate()
        s.proc.wait(timeout=15)


@pytest.mark.parametrize("storage", ["s3", "local"])
def test_runner_upload_through_serve_then_download_both_ways(tmp_path: Path, storage: str) -> None:
    """A chunked multipart upload shaped as gitlab-runner sends it, through the real front door."""
    served = start_serve(tmp_path, "--storage", storage, "--no-demo")
    try:
        _upload_and_download(served, remote=storage == "s3")
    finally:
        served.proc.terminate()
        served.proc.wait(timeout=15)


def _upload_and_download(served: Served, remote: bool) -> None:
    seeded = httpx.post(
        f"{served.url}/-/mock/seed",
        headers={"PRIVATE-TOKEN": DEFAULT_ADMIN_TOKEN},
        json={
            "projects": [{"path": "root/upload", "pipelines": [{"jobs": [{"name": "compile", "status": "running"}]}]}]
        },
    )
    compile_job = seeded.json()["jobs"][0]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("bin/tool", "x" * 100_000)
    data = buffer.getvalue()
    body = (
        b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="artifacts.zip"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--b0undary--\r\n"
    )

    def chunks():  # a generator body goes out with Transfer-Encoding: chunked
        yield from (body[i : i + 16384] for i in range(0, len(body), 16384))

    url = f"{served.url}/api/v4/jobs/{compile_job['id']}/artifacts"
    res = httpx.post(
        url + "?artifact_format=zip&artifact_type=archive&expire_in=1+day",
        content=chunks(),
        headers={"Job-Token": compile_job["token"], "Content-Type": "multipart/form-data; boundary=b0undary"},
    )
    assert (res.status_code, res.text) == (201, "201")
    direct = httpx.get(url + "?direct_download=true", headers={"Job-Token": compile_job["token"]})
    if remote:
        assert direct.status_code == 302
        direct = httpx.get(direct.headers["location"])
    assert direct.status_code == 200 and direct.content == data
    assert httpx.get(url, headers={"Job-Token": compile_job["token"]}).content == data


def test_terminating_serve_stops_workhorse_too(tmp_path: Path) -> None:
    s = start_serve(tmp_path)
    s.proc.terminate()
    assert s.proc.wait(timeout=15) is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(s.url + "/-/health", timeout=0.5)
        except httpx.HTTPError:
            return
        time.sleep(0.1)
    raise AssertionError("Workhorse still answers after serve was terminated")


@pytest.mark.parametrize(
    ("option", "wanted_by"),
    [
        ("--port", "Workhorse, the front door (--port)"),
        ("--rails-port", "Rails (--rails-port)"),
        ("--s3-port", "the embedded S3 server (--s3-port)"),
    ],
)
def test_a_taken_port_is_one_line_naming_it(tmp_path: Path, option: str, wanted_by: str) -> None:
    ports = {"--port": free_port(), "--rails-port": free_port(), "--s3-port": free_port()}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports[option] = busy.getsockname()[1]
        out = subprocess.run(
            [*MOCKCOORD, "serve", "--data-dir", str(tmp_path), *(str(a) for kv in ports.items() for a in kv)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 1
    lines = (out.stdout + out.stderr).splitlines()
    assert lines == [
        f"port {ports[option]} on 127.0.0.1 is in use: {wanted_by} wants it (is another mockcoord running?)"
    ]


def test_runner_helpers_are_mockcoord_commands(served: Served, tmp_path: Path) -> None:
    """``mockcoord artifacts-uploader`` / ``artifacts-downloader``, as a job script runs them."""
    token = re.search(r"JOB-TOKEN: (glcbt-[\w-]+)", served.banner).group(1)  # type: ignore[union-attr]
    test_id = re.search(r"job (\d+) \(test\)", served.banner).group(1)  # type: ignore[union-attr]
    workdir = tmp_path / "job"
    (workdir / "out").mkdir(parents=True)
    (workdir / "out" / "result.txt").write_text("tested\n")
    env = {**os.environ, "CI_SERVER_URL": served.url, "CI_JOB_TOKEN": token, "CI_JOB_ID": test_id}
    up = subprocess.run(
        [*MOCKCOORD, "artifacts-uploader", "--path", "out/", "--artifact-type", "archive"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert up.returncode == 0, up.stdout + up.stderr
    assert 'Uploading artifacts as "archive" to coordinator... 201 Created' in up.stdout + up.stderr
    fetched = tmp_path / "next-job"
    fetched.mkdir()
    down = subprocess.run(
        [*MOCKCOORD, "artifacts-downloader"], cwd=fetched, env=env, capture_output=True, text=True, timeout=60
    )
    assert down.returncode == 0, down.stdout + down.stderr
    assert (fetched / "out" / "result.txt").read_text() == "tested\n"


def test_serve_restarts_workhorse_then_gives_up_when_it_dies_at_once(tmp_path: Path) -> None:
    s = start_serve(tmp_path, "--no-demo", "--storage", "local")
    try:
        children = Path(f"/proc/{s.proc.pid}/task/{s.proc.pid}/children").read_text().split()
        (tmp_path / ".gitlab_workhorse_secret").unlink()  # every restarted Workhorse now stops at start
        os.kill(int(children[0]), signal.SIGKILL)
        assert s.proc.wait(timeout=120) == 1
    finally:
        s.proc.kill()
    assert s.proc.stdout is not None
    out = s.proc.stdout.read()
    assert f"Workhorse (pid {children[0]}) was killed by signal SIGKILL; restarting it in" in out
    assert out.splitlines()[-1].endswith("giving up (see log/workhorse.log)")  # serve's last word, no traceback
