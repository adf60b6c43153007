"""``config.toml`` as gitlab-runner writes and reads it (common/config.go): the global
``concurrent`` / ``check_interval`` and one ``[[runners]]`` table per registered runner.

Read with the standard library's ``tomllib``, written with ``tomli_w``. Keys this runner does
not use are kept as they were, so a file shared with a real gitlab-runner survives a save.
"""

from __future__ import annotations

import os
import secrets
import string
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from runner_client.tokens import shorten_token

DEFAULT_CONCURRENT = 1
CHECK_INTERVAL = 3.0  # common.CheckInterval: check_interval = 0 means this
DEFAULT_OUTPUT_LIMIT_KIB = 4096  # common.DefaultTraceOutputLimit, in KiB as output_limit is
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)  # Go's zero time.Time: "no expiry" in token_expires_at
SYSTEM_ID_FILE = ".runner_system_id"


class ConfigError(Exception):
    """The config file cannot be used (missing, unparsable, no runners, unsupported executor)."""


@dataclass
class RunnerEntry:
    """One ``[[runners]]`` table. ``extra`` holds the keys this runner does not interpret."""

    name: str
    url: str
    token: str
    id: int = 0
    token_obtained_at: datetime | None = None
    token_expires_at: datetime | None = None
    executor: str = "shell"
    shell: str = ""
    builds_dir: str = ""
    limit: int = 0
    output_limit: int = 0
    environment: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def short_token(self) -> str:
        """``RunnerCredentials.ShortDescription``: what logs and build paths show of the token."""
        return shorten_token(self.token)

    @property
    def shell_name(self) -> str:
        return self.shell or "bash"

    @property
    def output_limit_bytes(self) -> int:
        return (self.output_limit or DEFAULT_OUTPUT_LIMIT_KIB) * 1024

    _KNOWN = (
        "name",
        "url",
        "id",
        "token",
        "token_obtained_at",
        "token_expires_at",
        "executor",
        "shell",
        "builds_dir",
        "limit",
        "output_limit",
        "environment",
    )

    @classmethod
    def from_toml(cls, table: dict[str, Any]) -> RunnerEntry:
        if not table.get("url") or not table.get("token"):
            raise ConfigError("every [[runners]] entry needs url and token")
        values = {k: table[k] for k in cls._KNOWN if k in table}
        extra = {k: v for k, v in table.items() if k not in cls._KNOWN}
        values.setdefault("name", "")
        return cls(**values, extra=extra)

    def to_toml(self) -> dict[str, Any]:
        """gitlab-runner's key order; empty optional keys left out as its ``omitempty`` does."""
        out: dict[str, Any] = {"name": self.name, "url": self.url, "id": self.id, "token": self.token}
        out["token_obtained_at"] = self.token_obtained_at or ZERO_TIME
        out["token_expires_at"] = self.token_expires_at or ZERO_TIME
        out["executor"] = self.executor
        for key in ("shell", "builds_dir", "limit", "output_limit", "environment"):
            value = getattr(self, key)
            if value:
                out[key] = value
        out.update(self.extra)
        out.setdefault("cache", {"MaxUploadedArchiveSize": 0})
        return out


@dataclass
class Config:
    path: Path
    concurrent: int = DEFAULT_CONCURRENT
    check_interval: float = 0
    shutdown_timeout: int = 0
    runners: list[RunnerEntry] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def poll_interval(self) -> float:
        """Seconds between job requests when there is nothing to do (``check_interval``, default 3)."""
        return self.check_interval if self.check_interval > 0 else CHECK_INTERVAL

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, missing_ok: bool = False) -> Config:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            if missing_ok:
                return cls(path)
            raise ConfigError(f"config file {str(path)!r} does not exist") from None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"couldn't read config file {str(path)!r}: {exc}") from None
        runners = data.pop("runners", [])
        if not isinstance(runners, list):
            raise ConfigError("runners must be an array of tables ([[runners]])")
        try:
            return cls(
                path,
                concurrent=int(data.pop("concurrent", DEFAULT_CONCURRENT)),
                check_interval=float(data.pop("check_interval", 0)),
                shutdown_timeout=int(data.pop("shutdown_timeout", 0)),
                runners=[RunnerEntry.from_toml(r) for r in runners],
                extra=data,
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid config file {str(path)!r}: {exc}") from None

    def save(self) -> None:
        """Written to a temporary file and renamed, readable by the owner only (it holds tokens)."""
        data: dict[str, Any] = {
            "concurrent": self.concurrent,
            "check_interval": int(self.check_interval)
            if float(self.check_interval).is_integer()
            else self.check_interval,
            "shutdown_timeout": self.shutdown_timeout,
        }
        data.update(self.extra)
        data.setdefault("session_server", {"session_timeout": 1800})
        data["runners"] = [r.to_toml() for r in self.runners]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            tomli_w.dump(data, f)
        os.replace(tmp, self.path)

    def system_id(self) -> str:
        """``.runner_system_id`` beside the config: ``r_`` and 12 random letters or digits, made once."""
        file = self.path.parent / SYSTEM_ID_FILE
        try:
            existing = file.read_text().strip()
        except OSError:
            existing = ""
        if existing:
            return existing
        alphabet = string.ascii_letters + string.digits
        value = "r_" + "".join(secrets.choice(alphabet) for _ in range(12))
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(value + "\n")
        except OSError:
            pass  # gitlab-runner too goes on with an unsaved id
        return value


def now_utc_seconds() -> datetime:
    """``token_obtained_at``: the runner's own wall clock, truncated to the second as Go does."""
    return datetime.now(UTC).replace(microsecond=0)
