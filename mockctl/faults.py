"""Fault rules: which requests to break, and how.

Shared by Rails and Workhorse (each applies the rules of its own component); Rails keeps
the list and hands Workhorse its rules on every answer that changes them, so a rule
created through the front door is in force in both before the creating call returns.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import random
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SYNC_HEADER = "Gitlab-Workhorse-Mock-Faults"
Component = Literal["workhorse", "rails", "storage"]
_JOB_PATH = re.compile(r"/jobs/(\d+)(/|$)")
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|secs|seconds?)?\s*$")


def parse_delay(value: float | str) -> float:
    """Seconds from ``1.5``, ``"250ms"`` or ``"2s"``."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _SECONDS.match(value)
        if not match:
            raise ValueError(f"cannot read {value!r} as a delay (e.g. 0.5, '250ms', '2s')")
        seconds = float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
    if not 0 <= seconds <= 600:
        raise ValueError("a delay must be between 0 and 600 seconds")
    return seconds


def _regex(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None


class FaultRule(BaseModel):
    """What to match (all given conditions must hold) and what to do."""

    model_config = ConfigDict(extra="forbid")

    id: str = ""
    component: Component
    method: str | None = None
    path: str | None = Field(default=None, description="regular expression searched in the path")
    job_id: int | None = None
    header: dict[str, str] = Field(default_factory=dict, description="header name -> regular expression")
    status: int | None = Field(default=None, ge=100, le=599)
    body: str | None = None
    headers: dict[str, str] = Field(default_factory=dict, description="sent with status")
    delay: float | None = None
    bandwidth: int | None = Field(default=None, gt=0, description="bytes per second for the answer's body")
    reset_after: int | None = Field(default=None, ge=0, description="bytes of body, then a TCP reset")
    truncate_after: int | None = Field(default=None, ge=0, description="bytes of body, then the connection closes")
    drop: bool = False
    error: str | None = Field(
        default=None, min_length=1, description="storage: the error the failed call reports, e.g. 'invalid argument'"
    )
    times: int | None = Field(default=None, ge=1)
    probability: float = Field(default=1.0, gt=0, le=1)
    hits: int = 0

    @field_validator("delay", mode="before")
    @classmethod
    def _delay(cls, value: Any) -> float | None:
        return None if value is None else parse_delay(value)

    @field_validator("method")
    @classmethod
    def _method(cls, value: str | None) -> str | None:
        return value.upper() if value else None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None:
            _regex(value)
        return value

    @field_validator("header")
    @classmethod
    def _header(cls, value: dict[str, str]) -> dict[str, str]:
        for pattern in value.values():
            _regex(pattern)
        return {k.lower(): v for k, v in value.items()}

    @model_validator(mode="after")
    def _one_effect(self) -> FaultRule:
        effects = [
            n for n in ("status", "delay", "bandwidth", "reset_after", "truncate_after") if getattr(self, n) is not None
        ] + (["drop"] if self.drop else [])
        if not effects:
            raise ValueError("a rule needs an effect: status, delay, bandwidth, reset_after, truncate_after or drop")
        cutting = [n for n in effects if n in ("status", "reset_after", "truncate_after", "drop")]
        if len(cutting) > 1:
            raise ValueError(f"choose one of {', '.join(cutting)}")
        if (self.body is not None or self.headers) and self.status is None:
            raise ValueError("body and headers go with status")
        if self.error is not None and (self.component != "storage" or self.status is None):
            raise ValueError("error goes with a status on a storage rule")
        return self

    def matches(self, method: str, path: str, headers: Mapping[str, str]) -> bool:
        job = _JOB_PATH.search(path)
        return (
            (self.method is None or self.method == method.upper())
            and (self.path is None or re.search(self.path, path) is not None)
            and (self.job_id is None or (job is not None and int(job.group(1)) == self.job_id))
            and all(re.search(p, headers.get(name, "")) is not None for name, p in self.header.items())
        )


class FaultRegistry:
    """The rules of one process, in the order they were added; the first that fires wins."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)

    @property
    def rules(self) -> list[FaultRule]:
        return self._rules

    def add(self, rule: FaultRule) -> FaultRule:
        rule.id = rule.id or f"f{next(self._ids)}"
        self._rules.append(rule)
        return rule

    def remove(self, rule_id: str) -> bool:
        before = len(self._rules)
        self._rules = [r for r in self._rules if r.id != rule_id]
        return len(self._rules) != before

    def clear(self) -> None:
        self._rules = []

    def replace(self, rules: Iterable[FaultRule]) -> None:
        self._rules = list(rules)

    def of(self, component: str) -> list[FaultRule]:
        return [r for r in self.rules if r.component == component]

    def fire(self, component: str, method: str, path: str, headers: Mapping[str, str]) -> FaultRule | None:
        """The rule that applies to this request now, counting it (``times``, ``hits``)."""
        for rule in self._rules:
            if rule.component != component or not rule.matches(method, path, headers):
                continue
            if rule.probability < 1 and random.random() >= rule.probability:  # noqa: S311 - not security
                continue
            rule.hits += 1
            if rule.times is not None and rule.hits >= rule.times:
                self._rules.remove(rule)
            return rule
        return None


def encode_rules(rules: Iterable[FaultRule]) -> str:
    return base64.urlsafe_b64encode(json.dumps([r.model_dump() for r in rules]).encode()).decode()


def decode_rules(header: str) -> list[FaultRule]:
    return [FaultRule.model_validate(item) for item in json.loads(base64.urlsafe_b64decode(header))]


class InjectedCut(Exception):
    """A storage rule cut the connection (drop, reset_after, truncate_after)."""


async def storage_fault(registry: FaultRegistry, method: str, path: str) -> FaultRule | None:
    """Fire a ``storage`` rule for one storage call: sleep for its delay, raise ``InjectedCut``
    for a cut connection, and return the rule whose ``status`` (and ``error``) the store should
    seem to answer (None: carry on as usual). Callers turn that into their own kind of failure."""
    rule = registry.fire("storage", method, path, {})
    if rule is None:
        return None
    if rule.delay:
        await asyncio.sleep(rule.delay)
    if rule.drop or rule.reset_after is not None or rule.truncate_after is not None:
        raise InjectedCut(f"{method} {path}: connection reset by peer (injected fault {rule.id})")
    return rule if rule.status is not None else None
