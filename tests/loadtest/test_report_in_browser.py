"""The report is looked at, not just written: a real run's ``report.html`` opened in headless
Chromium (Debian's, driven by Playwright, launched as the docs' screenshot is), every chart drawn,
nothing fetched but the file, nothing complaining, and the page's figures those of ``report.json``.
Without Chromium or Playwright it skips naming what to install; under ``CI=true`` it fails."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from mockctl.loadtest.browser import chromium, missing
from mockctl.loadtest.html import CHARTS
from tests.loadtest.conftest import Run, report_of

if TYPE_CHECKING:
    from playwright.sync_api import Page

# What matplotlib draws for the data is clipped to its axes; ticks, gridlines (inside the tick
# groups), spines, legends and titles are not data. A mark with no extent was not drawn.
MARKS = """svg => [...svg.querySelectorAll("[clip-path]")]
    .filter(e => !e.closest('[id^="xtick"], [id^="ytick"]'))
    .map(e => e.getBoundingClientRect())
    .filter(r => r.width > 0 || r.height > 0).length"""


@dataclass
class Opened:
    page: Page
    url: str
    report: dict[str, Any]
    requests: list[str] = field(default_factory=list)
    complaints: list[str] = field(default_factory=list)  # console errors, page errors, failed requests


@pytest.fixture(scope="module")
def opened(request: pytest.FixtureRequest) -> Iterator[Opened]:
    if why := missing():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why} (CI=true: the report must be looked at)")
        pytest.skip(why)
    run: Run = request.getfixturevalue("compare_run")  # after the check: no run for a skipped test
    assert run.code == 0, run.output
    with chromium() as context:
        page = context.new_page()
        seen = Opened(page, (run.out / "report.html").as_uri(), report_of(run.out))
        context.on("request", lambda r: seen.requests.append(r.url))
        context.on("requestfailed", lambda r: seen.complaints.append(f"{r.url}: {r.failure}"))
        page.on("console", lambda m: m.type == "error" and seen.complaints.append(m.text))
        page.on("pageerror", lambda e: seen.complaints.append(str(e)))
        page.goto(seen.url, wait_until="networkidle")
        yield seen


def expected_marks(report: dict[str, Any], chart: str) -> int:
    """The fewest data marks each chart must show: a line, a histogram or a bar per mode, per
    percentile, per sampled process; failures only if there were any."""
    modes = report["modes"].values()
    processes = sum(len(m["processes"]) for m in modes)
    return {
        "throughput": len(modes),
        "latency": 3 * len(modes),
        "histogram": len(modes),
        "errors": sum(len(m["failures_by_kind"]) for m in modes),
        "compare": 2 * len(modes),
        "cpu": processes,
        "rss": processes,
    }[chart]


def test_every_chart_is_drawn(opened: Opened) -> None:
    figures = opened.page.locator("figure.chart")
    assert figures.count() == len(CHARTS)
    for chart in CHARTS:
        figure = opened.page.locator(f"figure.chart#chart-{chart}")
        assert figure.is_visible(), chart
        svg = figure.locator(":scope > svg")
        box = svg.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 30, (chart, box)
        marks = svg.evaluate(MARKS)
        expected = expected_marks(opened.report, chart)
        assert marks >= expected if expected else marks == 0, (chart, marks, expected)
    assert expected_marks(opened.report, "cpu") == 6  # a stack it started: three processes, two modes


def test_nothing_is_fetched_and_nothing_complains(opened: Opened) -> None:
    assert opened.requests == [opened.url]  # self-contained: no CDN, no font, no image
    assert opened.complaints == []


def test_the_page_shows_report_json_s_figures(opened: Opened) -> None:
    rows = opened.page.locator("#summary tr").all_inner_texts()[1:]
    shown = {cells[0]: cells[1:] for cells in (row.split("\t") for row in rows)}
    assert list(shown) == list(opened.report["modes"])
    for mode, m in opened.report["modes"].items():
        requests, failures, _, mib_s, p50 = shown[mode][:5]
        assert int(requests.replace(",", "")) == m["requests"] > 0
        assert int(failures) == m["failures"] == 0
        assert mib_s == f"{m['throughput_mib_s']:.1f}"
        assert p50 == f"{m['latency_ms']['p50']:.0f}"
    ratio = re.fullmatch(r"proxy/direct: throughput (\S+), p50 \S+, p99 \S+", opened.page.inner_text("#compare"))
    assert ratio is not None
    assert ratio[1] == f"{opened.report['compare']['throughput_ratio_proxy_to_direct']:.2f}"
