"""``report.html``: one self-contained page (charts as inline SVG drawn by matplotlib, no script,
nothing fetched). Each chart is a ``<figure class="chart" id="chart-...">`` a browser test can find."""

from __future__ import annotations

import html
import io
import json
from typing import Any

from matplotlib.figure import Figure

MIB = 1 << 20
CHARTS = ("throughput", "latency", "histogram", "errors", "compare", "cpu", "rss")
LATENCY_STYLES = {"p50_ms": "-", "p95_ms": "--", "p99_ms": ":"}
# A mode keeps its colour in every chart; in the process charts the colour is the process and the
# line style the mode, so six lines read as three processes twice rather than six of anything.
MODE_COLORS = {"direct": "tab:blue", "proxy": "tab:orange", "upload": "tab:green", "url": "tab:gray"}
MODE_STYLES = {"direct": "-", "proxy": "--", "upload": "-", "url": ":"}
PROCESS_COLORS = {"workhorse": "tab:purple", "rails": "tab:red", "object store": "tab:brown"}


def _svg(fig: Figure) -> str:
    out = io.StringIO()
    fig.savefig(out, format="svg", bbox_inches="tight")
    text = out.getvalue()
    return text[text.index("<svg") :]  # the XML prologue has no place inside HTML


def _figure(title: str, ylabel: str, xlabel: str = "seconds") -> tuple[Figure, Any]:
    fig = Figure(figsize=(8, 3.2))
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def _legend(ax: Any) -> None:
    """Beside the axes, not on them: up to six lines, none hidden under it."""
    ax.set_ylim(bottom=0)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)


def _plot(ax: Any, xs: list[float], ys: list[float], style: str, **kwargs: Any) -> None:
    """A line; a lone point (a run of a second or less) as a dot: a line of one point is not drawn."""
    ax.plot(xs, ys, style, marker="o" if len(xs) == 1 else "", **kwargs)


def throughput(modes: dict[str, Any]) -> Figure:
    fig, ax = _figure("Throughput of verified bytes", "MiB/s")
    for mode, m in modes.items():
        _plot(ax, m["series"]["t"], m["series"]["mib_s"], "-", color=MODE_COLORS[mode], label=mode)
    _legend(ax)
    return fig


def latency(modes: dict[str, Any]) -> Figure:
    fig, ax = _figure("Response time percentiles, per second", "ms")
    for mode, m in modes.items():
        for key, style in LATENCY_STYLES.items():
            points = [(t, v) for t, v in zip(m["series"]["t"], m["series"][key], strict=True) if v is not None]
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            _plot(ax, xs, ys, style, color=MODE_COLORS[mode], label=f"{mode} {key[:3]}")
    _legend(ax)
    return fig


def histogram(modes: dict[str, Any]) -> Figure:
    fig, ax = _figure("Response times", "requests", "ms")
    for mode, m in modes.items():
        edges, counts = m["histogram_ms"]["edges"], m["histogram_ms"]["counts"]
        if counts:
            ax.stairs(counts, edges, label=mode, fill=True, alpha=0.5, color=MODE_COLORS[mode])
    _legend(ax)
    return fig


def errors(modes: dict[str, Any]) -> Figure:
    fig, ax = _figure("Failures by kind", "requests", "")
    labels = [f"{mode}: {kind}" for mode, m in modes.items() for kind in m["failures_by_kind"]]
    values = [n for m in modes.values() for n in m["failures_by_kind"].values()]
    if values:
        ax.barh(labels, values, color="tab:red")
    else:  # empty axes with ticks from 0 to 1 would read as a scale of something
        ax.text(0.5, 0.5, "no failures", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        fig.set_size_inches(8, 1)
    return fig


def compare(modes: dict[str, Any], ratios: dict[str, Any] | None) -> Figure:
    fig = Figure(figsize=(8, 3.2), layout="constrained")  # else the right panel's label meets the left
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    names = list(modes)
    colors = [MODE_COLORS[n] for n in names]
    left.bar(names, [modes[n]["throughput_mib_s"] for n in names], color=colors)
    left.set_ylabel("MiB/s")
    right.bar(names, [modes[n]["latency_ms"]["p50"] or 0 for n in names], color=colors)
    right.set_ylabel("p50 ms")
    ratio = (ratios or {}).get("throughput_ratio_proxy_to_direct")
    fig.suptitle(
        f"Direct and proxy side by side: proxy/direct throughput {ratio:.2f}"
        if ratio is not None
        else "Side by side (run --mode compare for direct against proxy)"
    )
    return fig


def process_chart(modes: dict[str, Any], key: str, title: str, ylabel: str, scale: float) -> Figure:
    fig, ax = _figure(title, ylabel)
    for mode, m in modes.items():
        for name, s in m["processes"].items():
            style, color = MODE_STYLES[mode], PROCESS_COLORS.get(name)
            _plot(ax, s["t"], [v / scale for v in s[key]], style, color=color, label=f"{mode}: {name}")
    if not ax.get_legend_handles_labels()[0]:
        ax.text(0.5, 0.5, "not sampled (a coordinator given by --url)", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
    _legend(ax)
    return fig


def _summary_rows(modes: dict[str, Any]) -> str:
    rows = []
    for mode, m in modes.items():
        lat, r = m["latency_ms"], m["retries"]
        cells = [
            mode,
            m["requests"],
            m["failures"],
            f"{m['bytes_verified'] / MIB:,.1f}",
            f"{m['throughput_mib_s']:.1f}",
            *(f"{lat[k]:.0f}" if lat[k] is not None else "-" for k in ("p50", "p95", "p99")),
            r["retries"],
            f"{r['seconds_waiting']:.1f}",
            ", ".join(f"{name} {p['peak_rss'] / MIB:.0f} MiB" for name, p in m["processes"].items()) or "-",
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return "\n".join(rows)


def _ratios(ratios: dict[str, Any] | None) -> str:
    """A compare run's ratios as text too: the charts' words are drawn as glyph outlines."""
    if ratios is None:
        return ""
    cells = []
    for key in ("throughput", "p50", "p99"):
        value = ratios[f"{key}_ratio_proxy_to_direct"]
        cells.append(f"{key} {value:.2f}" if value is not None else f"{key} -")
    return f'<p id="compare">proxy/direct: {", ".join(cells)}</p>'


def render(report: dict[str, Any]) -> str:
    modes = report["modes"]
    charts = {
        "throughput": throughput(modes),
        "latency": latency(modes),
        "histogram": histogram(modes),
        "errors": errors(modes),
        "compare": compare(modes, report["compare"]),
        "cpu": process_chart(modes, "cpu", "CPU of the coordinator's processes", "% of one core", 1),
        "rss": process_chart(modes, "rss", "Resident memory of the coordinator's processes", "MiB", MIB),
    }
    figures = "\n".join(f'<figure class="chart" id="chart-{name}">{_svg(fig)}</figure>' for name, fig in charts.items())
    head = "mode requests failures MiB&nbsp;verified MiB/s p50&nbsp;ms p95&nbsp;ms p99&nbsp;ms"
    head += " retries waited&nbsp;s peak&nbsp;RSS"
    options = html.escape(json.dumps(report["options"], indent=1))
    fault = html.escape(json.dumps(report["fault"])) if report["fault"] else "none"
    target = report["target"]
    where = target["url"] or "Locust run by hand, records " + ", ".join(report["options"].get("from_records", []))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mockcoord loadtest</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.2em .5em;text-align:right}}figure{{margin:1.5em 0}}
svg{{max-width:100%;height:auto}}</style>
</head><body>
<h1>mockcoord loadtest</h1>
<p>{html.escape(where)}, started {html.escape(report["started"])}; fault: <code>{fault}</code></p>
<table id="summary"><tr>{"".join(f"<th>{h}</th>" for h in head.split())}</tr>
{_summary_rows(modes)}</table>
{_ratios(report["compare"])}
{figures}
<details><summary>options</summary><pre>{options}</pre></details>
</body></html>
"""
