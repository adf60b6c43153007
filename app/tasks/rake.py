"""What ``rake`` and ``lib/tasks/gitlab/*.rake`` give every task: the task string (``name[a,b]``),
``VAR=value`` arguments, the stdout logger the cleanup tasks write to, the environment (database,
store) and how a task ends (``abort``).

A task is ``async def task(env: RakeEnvironment, args: list[str]) -> None``; the tasks live in
``app/tasks/gitlab/``, ``app.tasks.index`` lists them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from app.config import Settings

if TYPE_CHECKING:
    from app.db import Database
    from app.storage.s3 import S3Store


class RakeAbort(Exception):
    """``abort(message)``: the message on stderr, exit status 1, nothing more."""


class RakeError(Exception):
    """What ends a task GitLab would end with ``rake aborted!`` and a backtrace (a missing
    file, an unreachable store): here one line naming the problem, exit status 1."""


def parse_task_string(string: str) -> tuple[str, list[str]]:
    """``Rake::Application#parse_task_string``: ``name[a, b\\,c]`` -> ``("name", ["a", "b,c"])``."""
    match = re.fullmatch(r"([^\[]+)(?:\[(.*)\])", string, re.S)
    if not match:
        return string, []
    name, remaining = match.group(1), match.group(2)
    if not remaining:
        return name, []
    args = []
    rest: str | None = remaining
    while rest is not None:
        part = re.fullmatch(r"\s*((?:[^\\,]|\\.)*?)\s*(?:,\s*(.*))?", rest, re.S)
        assert part is not None  # the pattern matches any string
        args.append(re.sub(r"\\(.)", r"\1", part.group(1)))
        rest = part.group(2)
    return name, args


def ruby_to_i(text: str | None) -> int:
    """Ruby's ``String#to_i`` (``nil.to_i`` is 0): leading blanks, a sign, digits with single
    underscores between them; anything else ends the number, none is 0."""
    if text is None:
        return 0
    match = re.match(r"[ \t\n\v\f\r]*([+-]?\d+(?:_\d+)*)", text)
    return int(match.group(1).replace("_", "")) if match else 0


SEVERITIES = {"DEBUG": 0, "INFO": 1, "WARN": 2, "ERROR": 3}


class LineSink(Protocol):
    def __call__(self, line: str, color: str | None) -> None: ...


class RubyLogger:
    """``Logger.new($stdout)`` with Ruby's default formatter:
    ``I, [2024-03-28T10:11:12.123456 #4242]  INFO -- : message``; DEBUG level when ``DEBUG`` is
    set. ``color`` is Rainbow's (the rake file colours some lines): the sink decides whether a
    terminal shows it."""

    def __init__(self, sink: LineSink, debug: bool = False) -> None:
        self.sink = sink
        self.level = SEVERITIES["DEBUG" if debug else "INFO"]
        self.pid = os.getpid()

    def add(self, severity: str, message: str, color: str | None = None) -> None:
        if SEVERITIES[severity] < self.level:
            return
        now = datetime.now().strftime("%Y-%m-%dT%H:%M:%S.%f")
        self.sink(f"{severity[0]}, [{now} #{self.pid}] {severity:>5} -- : {message}\n", color)

    def debug(self, message: str) -> None:
        self.add("DEBUG", message)

    def info(self, message: str, color: str | None = None) -> None:
        self.add("INFO", message, color)

    def warn(self, message: str) -> None:
        self.add("WARN", message)

    def error(self, message: str) -> None:
        self.add("ERROR", message)


class Progress(Protocol):
    """What a long task reports; the CLI draws it (a Rich bar on a terminal), else nothing."""

    def start(self, description: str, total: float | None = None, unit: str = "") -> None: ...

    def advance(self, amount: float = 1, **fields: int) -> None: ...


class NoProgress:
    def start(self, description: str, total: float | None = None, unit: str = "") -> None:
        return None

    def advance(self, amount: float = 1, **fields: int) -> None:
        return None


@dataclass
class RakeEnvironment:
    """``:gitlab_environment``: settings, ``ENV``, the logger, and the instance's data opened
    on first use. The database must be the coordinator's: an empty one would make every stored
    object an orphan, so it is refused rather than created."""

    settings: Settings
    env: Mapping[str, str]
    logger: RubyLogger
    progress: Progress = field(default_factory=NoProgress)
    _db: Database | None = None
    _store: S3Store | None = None

    def present(self, name: str) -> bool:
        """``ENV[name].present?``: set and not blank."""
        return bool(self.env.get(name, "").strip())

    async def db(self) -> Database:
        if self._db is None:
            self._db = await open_database(self.settings)
        return self._db

    async def bucket(self) -> S3Store:
        """The artifacts bucket as fog's directory sees it: whole keys, the bucket prefix in them."""
        if self._store is None:
            from app.storage.s3 import S3Store

            if not self.settings.object_store.enabled:
                raise RakeError("object storage is not enabled (--storage local): this task reads the artifacts bucket")
            self._store = await S3Store(self.settings.object_store, prefix="").open()
        return self._store

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()
        if self._db is not None:
            await self._db.dispose()


async def open_database(settings: Settings) -> Database:
    from pathlib import Path

    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from app.db import Database
    from app.models import JobArtifact, SharedStateKey

    url = settings.resolved_database_url
    where = make_url(url).render_as_string()  # password hidden
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        if path and path != ":memory:" and not Path(path).exists():  # noqa: ASYNC240 (one stat)
            raise RakeError(f"no database at {path}: point --data-dir (or --database-url) at the coordinator's data")
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            has = await conn.run_sync(lambda c: inspect(c).has_table(JobArtifact.__tablename__))
        if not has:
            raise RakeError(
                f"the database {where} has no {JobArtifact.__tablename__} table: is it the coordinator's? "
                "(on an empty database every stored object would look orphaned)"
            )
        if stale := await db.stale_tables():
            raise RakeError(
                f"the database {where} was made by an older mockcoord ({'; '.join(stale)} missing); "
                "start the coordinator on it once, or give it an empty database"
            )
        async with db.engine.begin() as conn:  # the one table a task adds: its resume markers
            await conn.run_sync(lambda c: SharedStateKey.__table__.create(c, checkfirst=True))  # type: ignore[attr-defined]
    except (SQLAlchemyError, OSError) as exc:
        await db.dispose()
        raise RakeError(f"the database {where}: {str(exc).splitlines()[0]}") from None
    except RakeError:
        await db.dispose()
        raise
    return db


Task = Callable[[RakeEnvironment, list[str]], Awaitable[None]]


@dataclass(frozen=True)
class TaskDefinition:
    name: str
    description: str  # ``desc``, as ``rake -T`` shows it
    args: tuple[str, ...]
    run: Task


def split_command_line(words: list[str]) -> tuple[list[str], dict[str, str]]:
    """rake's command line: ``VAR=value`` words set ``ENV``, the others name tasks."""
    tasks, assignments = [], {}
    for word in words:
        name, eq, value = word.partition("=")
        if eq and re.fullmatch(r"\w+", name):
            assignments[name] = value
        else:
            tasks.append(word)
    return tasks, assignments
