"""Fault rules shared by the processes behind one port (``--rails-processes``,
``--workhorse-processes``).

A rule set through the control plane lands in whichever process took that request, yet every
process behind the port must carry it out from the next request on, and a rule with ``times``
must fire that many times in all, not in each. The rules live in a JSON file (``file_stamp``):
a process looks at the file's identity before using its copy and reads it again when it changed;
a change (adding, removing, a rule firing) is made under an exclusive ``flock`` on the current
rules and written whole. A request that matches no rule pays one ``stat``; one that fires a rule,
a locked read and write of a small local file. One machine only: the processes of one
``mockcoord serve`` (or ``rails`` / ``workhorse --processes``).
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from app.config import Settings
from mockctl import file_stamp
from mockctl.faults import FaultRegistry, FaultRule


def rails_faults_file(settings: Settings) -> Path | None:
    """Where Rails processes share their rules; None with one process (its memory suffices)."""
    return settings.data_dir.resolve() / "instrument" / "faults.json" if settings.rails_processes > 1 else None


class SharedFaultRegistry(FaultRegistry):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._seen: file_stamp.Identity = None
        self._next_id = 1

    @property
    def rules(self) -> list[FaultRule]:
        self._refresh()
        return self._rules

    def add(self, rule: FaultRule) -> FaultRule:
        with self._changing():
            rule.id = rule.id or f"f{self._next_id}"
            self._next_id += 1
            self._rules.append(rule)
        return rule

    def remove(self, rule_id: str) -> bool:
        with self._changing():
            return super().remove(rule_id)

    def clear(self) -> None:
        with self._changing():
            super().clear()

    def replace(self, rules: Iterable[FaultRule]) -> None:
        with self._changing():
            super().replace(rules)

    def fire(self, component: str, method: str, path: str, headers: Mapping[str, str]) -> FaultRule | None:
        if not any(r.component == component and r.matches(method, path, headers) for r in self.rules):
            return None  # the usual case: no lock, no write
        with self._changing():
            return super().fire(component, method, path, headers)

    def _refresh(self) -> None:
        seen = file_stamp.identity(self.path)
        if seen == self._seen:
            return
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            data = {"next_id": 1, "rules": []}
        self._seen = seen  # a write between stat and read is seen again next time: harmless
        self._next_id = data["next_id"]
        self._rules = [FaultRule.model_validate(r) for r in data["rules"]]

    @contextmanager
    def _changing(self) -> Iterator[None]:
        """The current rules, under the lock, written back whole afterwards."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._seen = None  # read again: another process may have written in the same clock tick
            self._refresh()
            yield
            rules = [r.model_dump() for r in self._rules]
            self._seen = file_stamp.replace(self.path, json.dumps({"next_id": self._next_id, "rules": rules}))


def forget(path: Path) -> None:
    """No rules: a starting ``serve`` or ``rails`` must not take up the last run's."""
    path.unlink(missing_ok=True)
