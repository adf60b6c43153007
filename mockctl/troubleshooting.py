"""Troubleshooting scenarios: the upload failures of GitLab's job-artifacts troubleshooting
page, each reproduced end to end from one file in ``scenarios/``.

A run starts a private coordinator (Rails, Workhorse in its own process, object storage)
with the scenario's settings, seeds it, arms its faults, runs gitlab-runner's
``artifacts-uploader`` (runner_client) as its own process, and compares what the runner
printed and what Workhorse logged with the symptom the page shows. ``--fixed`` applies the
page's fix instead and checks that the upload now succeeds.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import BaseModel, ByteSize, ConfigDict, Field

from app.config import Settings
from mockctl.ports import free_port
from mockctl.stack import running_stack

SCENARIOS_DIR = Path(__file__).resolve().parent.parent / "scenarios"
UPLOAD_TIMEOUT = 120.0


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Upload(Strict):
    """What the runner's helper is asked to upload (``artifacts-uploader`` flags)."""

    job: str = Field(description="name of a running job in the seed; its token is used")
    size: ByteSize = Field(default=ByteSize(1024), description="random bytes to archive, e.g. '2MiB'")
    content: str | None = Field(default=None, description="the file's text instead of random bytes (dotenv)")
    artifact_type: str = "archive"
    artifact_format: str | None = None
    expire_in: str | None = None
    runner_version: str = "19"


class Expectation(Strict):
    """Texts that must appear in this order, each within one output line (one line may hold several)."""

    runner: list[str] = Field(default_factory=list)
    workhorse: list[str] = Field(default_factory=list)
    exit_code: int = 0


class Fix(Strict):
    """The page's remedy, as overrides of the scenario's config, seed and faults."""

    description: str
    config: dict[str, Any] = Field(default_factory=dict)
    seed: dict[str, Any] = Field(default_factory=dict)
    faults: list[dict[str, Any]] | None = Field(default=None, description="replaces the scenario's faults")
    expect: Expectation


class Scenario(Strict):
    title: str
    section: str = Field(description="heading of GitLab's troubleshooting page")
    config: dict[str, Any] = Field(default_factory=dict, description="mockcoord settings, nested as MOCKCOORD_*")
    seed: dict[str, Any]
    faults: list[dict[str, Any]] = Field(default_factory=list, description="POST /-/mock/faults bodies")
    upload: Upload
    symptom: Expectation
    fix: Fix


@dataclass
class Outcome:
    runner: list[str]
    workhorse: list[str]
    exit_code: int

    def missing(self, expected: Expectation) -> list[str]:
        """What of ``expected`` was not seen (empty: it matched)."""
        problems = [f"runner: {m}" for m in _unmatched(self.runner, expected.runner)]
        problems += [f"workhorse: {m}" for m in _unmatched(self.workhorse, expected.workhorse)]
        if self.exit_code != expected.exit_code:
            problems.append(f"exit code {self.exit_code}, expected {expected.exit_code}")
        return problems


def _unmatched(lines: list[str], wanted: list[str]) -> list[str]:
    position = 0
    for index, text in enumerate(wanted):
        found = next((i for i in range(position, len(lines)) if text in lines[i]), None)
        if found is None:
            return wanted[index:]
        position = found
    return []


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Nested dictionaries merge key by key; anything else in ``override`` replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load(path: Path) -> Scenario:
    return Scenario.model_validate(yaml.safe_load(path.read_text()))


def available() -> list[Path]:
    return sorted(SCENARIOS_DIR.glob("*.yaml"))


def find(name: str) -> Path | None:
    """A scenario file by its path, or by its name in ``scenarios/`` (so it runs from any folder)."""
    if Path(name).is_file():
        return Path(name)
    return next((path for path in available() if name in (path.stem, path.name)), None)


def _random_file(path: Path, size: int) -> None:
    with path.open("wb") as fh:
        while size > 0:
            chunk = os.urandom(min(size, 1 << 20))
            fh.write(chunk)
            size -= len(chunk)


async def run(scenario: Scenario, *, fixed: bool = False, admin_token: str = "glpat-troubleshooting") -> Outcome:
    """Reproduce the symptom (or, ``fixed``, the healthy upload) on a private coordinator."""
    config = merge(scenario.config, scenario.fix.config) if fixed else scenario.config
    seed = merge(scenario.seed, scenario.fix.seed) if fixed else scenario.seed
    faults = scenario.fix.faults if fixed and scenario.fix.faults is not None else scenario.faults
    with tempfile.TemporaryDirectory(prefix="mockcoord-troubleshooting-") as tmp:
        root = Path(tmp)
        ports = {"workhorse_port": free_port(), "rails_port": free_port(), "s3_port": free_port()}
        settings = Settings(**merge({"data_dir": root / "data", "admin_token": admin_token, **ports}, config))
        async with running_stack(settings) as stack:
            admin = {"PRIVATE-TOKEN": admin_token}
            async with httpx.AsyncClient(base_url=stack.url, headers=admin, timeout=60) as client:
                seeded = await client.post("/-/mock/seed", json=seed)
                _refused(seeded, "seed")
                for rule in faults:
                    _refused(await client.post("/-/mock/faults", json=rule), "faults")
            job = next((j for j in seeded.json()["jobs"] if j["name"] == scenario.upload.job), None)
            if job is None:
                raise ValueError(f"upload.job: no job named {scenario.upload.job!r} in the seed")
            workdir = root / "build"
            workdir.mkdir()
            if scenario.upload.content is not None:
                (workdir / "artifact.bin").write_text(scenario.upload.content)
            else:
                _random_file(workdir / "artifact.bin", int(scenario.upload.size))
            runner = await _upload(stack.url, job["id"], job["token"], scenario.upload, workdir)
        log = settings.data_dir / "log" / "workhorse.log"
        workhorse = log.read_text().splitlines() if log.exists() else []
    return Outcome(runner=runner[0], workhorse=workhorse, exit_code=runner[1])


def _refused(res: httpx.Response, key: str) -> None:
    if res.status_code >= 400:
        raise ValueError(f"{key}: {res.status_code} {res.text}")


async def _upload(url: str, job_id: int, token: str, upload: Upload, workdir: Path) -> tuple[list[str], int]:
    """gitlab-runner's helper in its own process, as the runner's shell script runs it."""
    args = ["--url", url + "/", "--token", token, "--id", str(job_id), "--path", "artifact.bin"]
    args += ["--artifact-type", upload.artifact_type, "--runner-version", upload.runner_version, "--progress", "off"]
    if upload.artifact_format:
        args += ["--artifact-format", upload.artifact_format]
    if upload.expire_in:
        args += ["--expire-in", upload.expire_in]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runner_client",
        "artifacts-uploader",
        *args,
        cwd=workdir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), UPLOAD_TIMEOUT)
    except TimeoutError:
        proc.kill()
        raise RuntimeError(f"the upload did not end within {UPLOAD_TIMEOUT:.0f}s") from None
    return out.decode(errors="replace").splitlines(), proc.returncode or 0
