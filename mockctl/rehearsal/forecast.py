"""The forecast line: when the backlog will be gone at the pace of the rehearsal's last day
(or second half, for a shorter run), or why never.

"The backlog" is what the workers rehearsed will destroy (``Fates.drainable``) and the deleted
objects still to remove. Expired artifacts that stay (locked, unknown nobody looks at) are not
backlog that drains: when they are all that is left, or nothing drained in the window, the
answer is "never" with the real shares of what stays and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from mockctl.rehearsal.measure import Fates
from mockctl.rehearsal.simulate import DELETE, Step


@dataclass(frozen=True)
class Forecast:
    line: str
    days: float | None  # None: never
    rate_per_day: float  # backlog rows drained a day in the window (net of newly expired ones)
    destroyed_per_day: float
    window_days: float


def share(part: int, whole: int) -> str:
    """A percentage that never rounds a part up to all, or a few down to none."""
    if not whole or not part:
        return "0%"
    pct = 100 * part / whole
    if part < whole and pct > 99:
        return "99%"
    if pct < 1:
        return "<1%"
    return f"{round(pct)}%"


def _staying(end: Fates, unreachable: int, window_hours: float) -> str:
    """``99% of expired artifacts are locked and 1% ...``: every reason a row stays, largest first."""
    reasons = [
        (end.locked + end.unknown_to_lock, "locked"),
        (end.unknown_idle, "unknown with the backlog worker off (ci_job_artifacts_backlog_work)"),
        (unreachable, f"unlocked but out of the workers' reach (none destroyed in the last {window_hours:g} hours)"),
    ]
    phrases = [f"{share(n, end.expired)} {why}" for n, why in sorted(reasons, key=lambda r: -r[0]) if n]
    if not phrases:
        return "no expired artifact stays"
    head = phrases[0].replace(" ", " of expired artifacts are ", 1)
    if len(phrases) == 1:
        return head
    return head + "".join(f", {p}" for p in phrases[1:-1]) + f" and {phrases[-1]}"


def forecast(steps: list[Step], start: Fates, window: Fates, end: Fates, window_days: float) -> Forecast:
    last = steps[-1]
    assert last.counts is not None
    window_start = last.at.timestamp() - window_days * 86400
    in_window = [s for s in steps[1:] if s.at.timestamp() > window_start]
    destroyed = sum(s.rows_destroyed for s in in_window)
    removed = sum(s.objects_removed for s in in_window if s.worker == DELETE)
    queue = last.counts.queue_length
    net = (window.drainable - end.drainable) / window_days
    hours = round(window_days * 24, 1)

    def result(line: str, days: float | None) -> Forecast:
        return Forecast(line, days, net, destroyed / window_days, window_days)

    # keeping up: what is left is no more than one run has cleared in the window (rows that expired
    # since the last run, deleted objects queued since the last removal)
    rows_ok = end.drainable == 0 or 0 < end.drainable <= max((s.rows_destroyed for s in in_window), default=0)
    removals = [s.objects_removed for s in in_window if s.worker == DELETE]
    objects_ok = queue == 0 or 0 < queue <= max(removals, default=0)
    if rows_ok and objects_ok:
        if end.expired and not start.drainable and not end.drainable:
            return result(f"never: {_staying(end, 0, hours)}", None)
        if end.drainable == 0 and queue == 0:
            what = "nothing expired is left to destroy"
        else:
            what = f"the workers keep up with what expires ({destroyed / window_days:,.0f} destroyed a day)"
        kept = f"; {_staying(end, 0, hours)} and stay" if end.expired - end.drainable else ""
        return result(f"at this pace the backlog is gone in 0 days: {what}{kept}", 0.0)
    days = 0.0
    if not rows_ok:
        if not destroyed:
            return result(f"never: {_staying(end, end.drainable, hours)}", None)
        if net <= 0:
            kept = f"; {_staying(end, 0, hours)}" if end.expired - end.drainable else ""
            return result(
                f"never: the backlog grows: {destroyed / window_days:,.0f} destroyed a day, "
                f"{window.drainable:,} to go {hours:g} hours ago and {end.drainable:,} now{kept}",
                None,
            )
        days = end.drainable / net
    if not objects_ok:
        if not removed:
            return result(f"never: {queue:,} deleted objects wait, none removed in the last {hours:g} hours", None)
        days = max(days, (queue + end.drainable) / (removed / window_days))
    if rows_ok:
        return result(f"at this pace the backlog is gone in {days:.1f} days: {queue:,} deleted objects to remove", days)
    kept = f"; {_staying(end, 0, hours)} and stay" if end.expired - end.drainable else ""
    return result(
        f"at this pace the backlog is gone in {days:.1f} days: {end.drainable:,} expired artifacts to destroy, "
        f"{net:,.0f} fewer a day{kept}",
        days,
    )
