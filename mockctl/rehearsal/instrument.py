"""What the rehearsal plugs into Rails: runs end at their first empty pass.

GitLab's ``ExpireBuildArtifactsWorker`` and ``UpdateLockedUnknownArtifactsWorker`` runs go on to
their loop limit (500 / 100 passes) even when a pass finds nothing. In a rehearsal nothing else
writes while a worker runs, so once a pass of a run has found nothing every later pass of it
would too: they change nothing and are not made (three simulated days hold ~1,300 such runs, a
second or so each). ``--run-idle`` makes them all.
"""

from __future__ import annotations

from app.instrumentation import Instrument


class RehearsalInstrument(Instrument):
    def __init__(self, run_idle: bool) -> None:
        self.run_idle = run_idle
        self.cut = 0  # runs ended at an empty pass since the count was last taken

    def ends_run_on_empty_pass(self) -> bool:
        if self.run_idle:
            return False
        self.cut += 1
        return True

    def take_cut(self) -> bool:
        """Did the run just made end at an empty pass? (And start the count again.)"""
        cut, self.cut = self.cut > 0, 0
        return cut
