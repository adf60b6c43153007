"""The pytest plugin, exercised the way a user's suite uses it: its example test, run by pytest."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "test_my_runner.py"


def test_the_documented_example_passes(pytester: pytest.Pytester) -> None:
    """The plugin loads by its entry point alone: no ``-p``, no conftest."""
    pytester.makepyfile(test_my_runner=EXAMPLE.read_text())
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=3)


def test_local_storage_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_local="""
import httpx

def test_download_is_served_from_disk(coordinator):
    seeded = coordinator.seed({"projects": [{"path": "root/app", "pipelines": [{"jobs": [
        {"name": "build", "artifacts": [{"file_type": "archive", "content": "PK-bytes"}]},
        {"name": "test", "status": "running"}]}]}]})
    build, test = coordinator.job(seeded, "build"), coordinator.job(seeded, "test")
    res = httpx.get(f"{coordinator.url}/api/v4/jobs/{build['id']}/artifacts?direct_download=true",
                    headers={"JOB-TOKEN": test["token"]})
    assert (res.status_code, res.content) == (200, b"PK-bytes")  # local storage: no redirect
"""
    )
    result = pytester.runpytest_subprocess("--mockcoord-storage=local", "-q")
    result.assert_outcomes(passed=1)


def test_reset_between_tests_is_quick(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_reset="""
import time

def test_many_resets(mockcoord_server):
    mockcoord_server.seed({"users": [{"username": "someone"}]})
    started = time.perf_counter()
    for _ in range(10):
        mockcoord_server.reset()
    per_reset = (time.perf_counter() - started) / 10
    print(f"per reset: {per_reset * 1000:.1f} ms")
    assert mockcoord_server.seed({"users": [{"username": "someone"}]})["users"]["someone"]["id"] == 2
"""
    )
    result = pytester.runpytest_subprocess("-q", "-s")
    result.assert_outcomes(passed=1)
