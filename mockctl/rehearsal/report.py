"""The rehearsal written out: ``series.csv`` (a row a step), ``drain.png`` (what is left against
simulated time), ``drain.html`` (one self-contained page: the chart embedded, the settings, a
summary and the forecast) and ``forecast.txt``."""

from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from mockctl.rehearsal.simulate import DELETE, EXPIRE, UNKNOWN, Step

COLUMNS = [
    "step",
    "sim_time",
    "sim_hours",
    "worker",
    "seconds",
    "rows_destroyed",
    "rows_locked",
    "objects_removed",
    "objects_failed",
    "expired_total",
    "expired_unlocked",
    "expired_locked",
    "expired_unknown",
    "unknown_total",
    "queue_length",
    "queue_ready",
    "real_objects_left",
    "destroyed_total",
    "objects_removed_total",
    "note",
]
LABELS = {EXPIRE: "ExpireBuildArtifactsWorker", UNKNOWN: "UpdateLockedUnknownArtifactsWorker", DELETE: "DeleteObjects"}


def rows(steps: list[Step]) -> list[dict[str, object]]:
    start = steps[0].at
    destroyed = removed = 0
    out = []
    for step in steps:
        assert step.counts is not None
        destroyed += step.rows_destroyed
        removed += step.objects_removed
        out.append(
            {
                "step": step.step,
                "sim_time": step.at.isoformat(),
                "sim_hours": round((step.at - start).total_seconds() / 3600, 4),
                "worker": step.worker,
                "seconds": round(step.seconds, 4),
                "rows_destroyed": step.rows_destroyed,
                "rows_locked": step.rows_locked,
                "objects_removed": step.objects_removed,
                "objects_failed": step.objects_failed,
                **step.counts.as_row(),
                "real_objects_left": "" if step.real_objects_left is None else step.real_objects_left,
                "destroyed_total": destroyed,
                "objects_removed_total": removed,
                "note": step.note,
            }
        )
    return out


def write_csv(path: Path, steps: list[Step]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows(steps))


def chart(steps: list[Step], title: str) -> bytes:
    """PNG bytes: what is left (top) and what each run did (bottom), against simulated days."""
    table = rows(steps)
    days = [float(r["sim_hours"]) / 24 for r in table]  # type: ignore[arg-type]
    fig = Figure(figsize=(10, 7), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    top.plot(days, [r["expired_total"] for r in table], label="expired artifacts left", color="C0", linewidth=2.2)
    for column, label, color in (
        ("expired_unlocked", "  of them unlocked", "C2"),
        ("expired_locked", "  of them locked", "C3"),
        ("expired_unknown", "  of them unknown", "C4"),
    ):
        top.plot(days, [r[column] for r in table], label=label, color=color, linewidth=1, linestyle="--")
    top.plot(days, [r["unknown_total"] for r in table], label="unknown artifacts (all)", color="C1", linewidth=1.5)
    top.plot(days, [r["queue_length"] for r in table], label="deleted objects queued", color="C7", linewidth=1.5)
    top.set_ylabel("rows")
    top.set_ylim(bottom=0)
    top.legend(loc="upper right", fontsize="small")
    top.grid(alpha=0.3)
    top.set_title(title, fontsize="medium")
    thousands = FuncFormatter(lambda value, _pos: f"{value:,.0f}")
    top.yaxis.set_major_formatter(thousands)
    for worker, marker, color in ((EXPIRE, "o", "C0"), (UNKNOWN, "s", "C4")):
        points = [(d, r["rows_destroyed"]) for d, r in zip(days, table, strict=True) if r["worker"] == worker]
        if points:
            bottom.scatter(
                *zip(*points, strict=True), s=8, marker=marker, color=color, label=f"{LABELS[worker]}: destroyed"
            )
    locks = [(d, r["rows_locked"]) for d, r in zip(days, table, strict=True) if r["worker"] == UNKNOWN]
    if any(n for _, n in locks):
        bottom.scatter(*zip(*locks, strict=True), s=8, marker="^", color="C3", label=f"{LABELS[UNKNOWN]}: locked")
    removed = [(d, r["objects_removed"]) for d, r in zip(days, table, strict=True) if r["worker"] == DELETE]
    if removed:
        bottom.scatter(*zip(*removed, strict=True), s=10, marker="x", color="C7", label="DeleteObjects: removed")
    bottom.set_ylabel("rows a run")
    bottom.set_xlabel("simulated days")
    bottom.set_ylim(bottom=0)
    bottom.grid(alpha=0.3)
    bottom.yaxis.set_major_formatter(thousands)
    if bottom.get_legend_handles_labels()[0]:
        bottom.legend(loc="upper right", fontsize="small")
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def _table(pairs: list[tuple[str, object]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in pairs)
    return f"<table>{body}</table>"


def page(png: bytes, settings: list[tuple[str, object]], summary: list[tuple[str, object]], forecast: str) -> str:
    image = base64.b64encode(png).decode()
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mockcoord housekeeping rehearsal</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; font-variant-numeric: tabular-nums; }}
th {{ background: #f4f4f4; font-weight: 600; }}
.forecast {{ font-size: 1.2em; padding: 0.6em 1em; background: #fff6d6; border-left: 4px solid #e0a800; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>Housekeeping rehearsal</h1>
<p class="forecast">{html.escape(forecast)}</p>
<img alt="expired artifacts, unknown artifacts and the deleted-object queue against simulated time"
 src="data:image/png;base64,{image}">
<h2>Summary</h2>
{_table(summary)}
<h2>Settings</h2>
{_table(settings)}
<p>Raw series: <code>series.csv</code>, a row a worker run.</p>
</body></html>
"""


def write_all(
    out: Path,
    steps: list[Step],
    settings: list[tuple[str, object]],
    summary: list[tuple[str, object]],
    forecast: str,
    title: str,
) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in ("series.csv", "drain.png", "drain.html", "forecast.txt")}
    write_csv(paths["series.csv"], steps)
    png = chart(steps, title)
    paths["drain.png"].write_bytes(png)
    paths["drain.html"].write_text(page(png, settings, summary, forecast))
    paths["forecast.txt"].write_text(forecast + "\n")
    return paths
