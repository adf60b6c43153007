"""``mockcoord loadtest`` against real coordinators on loopback: short runs (1 s, 1-2 users,
1 MiB artifacts) whose reports must hold up, a wrong byte in the store counted as a ``verify``
failure, the runner's retries under a 503 fault, and bad input as one line with exit code 2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from mockctl.loadtest.html import CHARTS
from mockctl.loadtest.options import LoadOptions
from mockctl.loadtest.run import load, run_mode, seed
from mockctl.loadtest.stack import Target, local_stack
from mockctl.ports import free_port
from tests.loadtest.conftest import SHORT, Run, invoke, report_of
from tests.rails.test_embedded_s3 import s3_client

SIZE = 1 << 20


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with local_stack(tmp_path_factory.mktemp("loadtest-stack")) as target:
        yield target


def assert_clean_run(m: dict[str, Any]) -> None:
    assert m["requests"] > 0
    assert m["failures"] == 0, m["failure_examples"]
    assert m["bytes_verified"] == m["requests"] * SIZE
    assert m["throughput_mib_s"] > 0
    assert 0 < m["latency_ms"]["p50"] <= m["latency_ms"]["p95"] <= m["latency_ms"]["p99"]
    assert sum(m["series"]["requests"]) == m["requests"]
    assert sum(m["histogram_ms"]["counts"]) == m["requests"]


def test_compare_on_a_stack_it_starts(compare_run: Run) -> None:
    assert compare_run.code == 0, compare_run.output
    assert "proxy/direct throughput:" in compare_run.output
    report = report_of(compare_run.out)
    for mode in ("direct", "proxy"):
        m = report["modes"][mode]
        assert_clean_run(m)
        assert set(m["processes"]) == {"workhorse", "rails", "object store"}
        for series in m["processes"].values():
            assert series["t"] and len(series["cpu"]) == len(series["rss"]) == len(series["t"])
            assert series["peak_rss"] > 10 << 20
    assert report["compare"]["throughput_ratio_proxy_to_direct"] > 0
    page = (compare_run.out / "report.html").read_text()
    for chart in CHARTS:
        assert f'<figure class="chart" id="chart-{chart}"><svg' in page
    assert "<script" not in page and "src=" not in page  # self-contained: nothing fetched


def test_upload_against_a_given_coordinator_with_a_locust_worker(stack: Target, tmp_path: Path) -> None:
    """A master and one worker: the worker's records reach the master's file."""
    token = ("--url", stack.url, "--admin-token", stack.admin_token)
    code, out = invoke("--mode", "upload", *SHORT, *token, "--locust-workers", "1", "--out", str(tmp_path))
    assert code == 0, out
    report = report_of(tmp_path)
    assert list(report["modes"]) == ["upload"]
    assert_clean_run(report["modes"]["upload"])
    assert report["compare"] is None
    assert report["target"]["started_here"] is False
    assert json.loads((tmp_path / "plan.json").read_text())["upload_size"] == SIZE


def test_a_wrong_byte_in_the_store_is_a_verify_failure(stack: Target, tmp_path: Path) -> None:
    size = SIZE + 7  # no other test's objects have this size
    options = LoadOptions("direct", 1, 10, 1, size, 1, 0, tmp_path)
    console = Console(quiet=True)
    plan = seed(options, stack, console)
    s3 = s3_client(stack.object_store)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="artifacts")["Contents"] if o["Size"] == size]
    assert len(keys) == 1
    body = bytearray(s3.get_object(Bucket="artifacts", Key=keys[0])["Body"].read())
    body[size // 2] ^= 0xFF
    s3.put_object(Bucket="artifacts", Key=keys[0], Body=bytes(body))

    m = load(options, stack, plan, console, started_here=False)["modes"]["direct"]
    assert m["requests"] > 0
    assert m["failures_by_kind"] == {"verify": m["requests"]}
    assert m["bytes_verified"] == 0


def test_url_users_check_every_byte_behind_another_front(stack: Target, tmp_path: Path) -> None:
    """The benchmark's yardstick user (nginx before the store): the plan's URLs, every byte checked,
    the job token sent along (a presigned URL's store ignores it)."""
    size = SIZE + 11  # no other test's objects have this size
    options = LoadOptions("direct", 1, 10, 1, size, 1, 0, tmp_path)
    console = Console(quiet=True)
    plan = seed(options, stack, console)
    direct = f"{stack.url}/api/v4/jobs/{plan.objects[0].job_id}/artifacts?direct_download=true"
    location = httpx.get(direct, headers={"JOB-TOKEN": plan.reader_token}).headers["location"]
    m = run_mode("url", options, replace(plan, urls=[location]), stack, console)
    assert m["requests"] > 0
    assert m["failures"] == 0, m["failure_examples"]
    assert m["bytes_verified"] == m["requests"] * size
    broken = replace(plan, urls=[location.replace("X-Amz-Signature=", "X-Amz-Signature=0")])
    m = run_mode("url", options, broken, stack, console)
    assert m["requests"] > 0 and m["bytes_verified"] == 0
    assert m["failures_by_kind"] == {"HTTPStatusError": m["requests"]}


def test_a_503_fault_on_uploads_is_retried_and_costed(stack: Target, tmp_path: Path) -> None:
    rule = {
        "component": "workhorse",
        "method": "POST",
        "path": r"/api/v4/jobs/\d+/artifacts$",
        "status": 503,
        "times": 2,
    }
    token = ("--url", stack.url, "--admin-token", stack.admin_token)
    code, out = invoke(
        "--mode", "upload", *SHORT, "--users", "1", *token, "--fault", json.dumps(rule), "--out", str(tmp_path)
    )
    assert code == 0, out
    report = report_of(tmp_path)
    assert report["fault"]["status"] == 503
    m = report["modes"]["upload"]
    assert m["failures"] == 0
    retries = m["retries"]
    assert retries["retries"] >= 2 and retries["requests_retried"] >= 1
    assert retries["seconds_waiting"] > 0  # gitlab-runner 19's transport retries a 5xx after a short backoff
    assert retries["mean_ms_retried"] >= retries["seconds_waiting"] * 1000 / retries["requests_retried"]
    remaining = httpx.get(f"{stack.url}/-/mock/faults", headers={"PRIVATE-TOKEN": stack.admin_token}).json()
    assert remaining == []


@pytest.mark.parametrize("merged", [False, True], ids=["a file a mode", "one file"])
def test_a_hand_run_s_records_make_the_same_report(compare_run: Run, tmp_path: Path, merged: bool) -> None:
    """What a Locust master run by hand writes (``--mockcoord-records``) gives the run's own figures."""
    records = [compare_run.out / f"records-{mode}.jsonl" for mode in ("direct", "proxy")]
    if merged:  # one master running both user classes
        (tmp_path / "records.jsonl").write_text("".join(path.read_text() for path in records))
        records = [tmp_path / "records.jsonl"]
    code, output = invoke(*(arg for path in records for arg in ("--from-records", str(path))), "--out", str(tmp_path))
    assert code == 0, output
    assert "proxy/direct throughput:" in output
    ran, rebuilt = report_of(compare_run.out), report_of(tmp_path)
    for mode in ("direct", "proxy"):
        assert_clean_run(rebuilt["modes"][mode])
        for key in ("requests", "failures", "bytes_verified", "throughput_mib_s", "latency_ms", "retries"):
            assert rebuilt["modes"][mode][key] == ran["modes"][mode][key]
        assert rebuilt["modes"][mode]["processes"] == {}  # the processes were on other machines
    assert rebuilt["compare"] == ran["compare"]
    page = (tmp_path / "report.html").read_text()
    assert all(f'<figure class="chart" id="chart-{chart}"><svg' in page for chart in CHARTS)
    assert f"Locust run by hand, records {records[0]}" in page


def test_records_that_cannot_make_a_report_are_one_line(tmp_path: Path) -> None:
    missing, empty, garbled = tmp_path / "missing.jsonl", tmp_path / "empty.jsonl", tmp_path / "garbled.jsonl"
    empty.write_text(json.dumps({"t": 1.0, "users": 2}) + "\n")
    garbled.write_text(json.dumps({"t": 1.0, "users": 2}) + "\nnot json\n")
    for path, message in (
        (missing, f"--from-records: cannot read {missing} (No such file or directory)"),
        (empty, f"--from-records: no request is recorded in {empty}"),
        (garbled, f"--from-records: {garbled}:2 is not a record (one JSON object a line)"),
    ):
        code, out = invoke("--from-records", str(path), "--out", str(tmp_path / "report"))
        assert (code, out.strip()) == (2, message)
    code, out = invoke("--from-records", str(empty), "--seed-only", "--out", str(tmp_path / "report"))
    assert (code, out.strip()) == (2, "--from-records runs nothing: it cannot go with --url or --seed-only")
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--artifact-size", "10XB"), "--artifact-size '10XB': give a number with a unit, e.g. 10MiB or 1GiB"),
        (("--artifact-size", "0MiB"), "--artifact-size '0MiB': must be more than 0 bytes"),
        (("--mode", "sideways"), "--mode 'sideways': one of direct, proxy, upload, compare"),
        (("--duration", "soon"), "--duration 'soon': give seconds, or a number with s, m or h (e.g. 30s, 2m)"),
        (("--users", "0"), "--users must be at least 1"),
        (("--fault", "{not json"), "--fault '{not json': not a JSON object or a file of one"),
    ],
)
def test_bad_options_are_one_line(args: tuple[str, ...], message: str, tmp_path: Path) -> None:
    code, out = invoke(*args, "--out", str(tmp_path))
    assert code == 2
    assert out.strip().startswith(message)
    assert len(out.strip().splitlines()) == 1


def test_an_unreachable_url_is_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out = invoke("--url", url, "--admin-token", "x", "--out", str(tmp_path))
    assert code == 2
    assert out.strip().startswith(f"--url {url}: unreachable")


def test_a_bad_token_or_refused_fault_is_one_line(stack: Target, tmp_path: Path) -> None:
    code, out = invoke("--url", stack.url, "--admin-token", "glpat-wrong", "--out", str(tmp_path))
    assert (code, out.strip()) == (2, f"--admin-token: {stack.url} refused it (401 401 Unauthorized)")
    token = ("--url", stack.url, "--admin-token", stack.admin_token)
    fault = json.dumps({"component": "workhorse"})
    code, out = invoke(*token, "--mode", "upload", *SHORT, "--fault", fault, "--out", str(tmp_path))
    assert code == 2
    assert out.strip().splitlines()[-1].startswith("--fault: the coordinator refused it (422")
