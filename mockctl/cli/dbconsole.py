"""``mockcoord dbconsole``: what ``gitlab-psql`` (``rails dbconsole``) is on GitLab's page, a
database client on the instance's database: ``psql`` for PostgreSQL, ``sqlite3`` for the
SQLite file, with the arguments given after the command (``-c "SQL"`` as on the page)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from mockctl.cli.common import DataDirOpt, DbOpt, build_settings, console

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

ARGS_HELP = (
    "Arguments for the client: psql's as they are (-c SQL, -f FILE, ...); for sqlite3, -c SQL runs one "
    "statement (its own arguments pass as they are)."
)


def fail(message: str, code: int = 1) -> None:
    console.print(message, style="red", markup=False, highlight=False)
    raise typer.Exit(code)


def psql_command(url: URL, args: list[str]) -> tuple[list[str], dict[str, str]]:
    """psql on the database of an SQLAlchemy URL: the libpq URI without its password (which goes
    in ``PGPASSWORD``, not the process list), ``PGTZ=UTC`` so times print as GitLab's page shows them."""
    env = {"PGTZ": "UTC"}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    query = dict(url.query)
    if "ssl" in query:  # asyncpg's name for libpq's sslmode
        query["sslmode"] = query.pop("ssl")
    libpq = url.set(drivername="postgresql", query=query)._replace(password=None)  # set() keeps a None
    return ["psql", libpq.render_as_string(hide_password=False), *args], env


def sqlite_args(args: list[str]) -> tuple[list[str], list[str]]:
    """``-c SQL`` (psql's, as the page types it) becomes sqlite3's positional statement; the
    others pass unchanged. Answers (options, statements)."""
    options, statements = [], []
    rest = iter(args)
    for arg in rest:
        if arg in ("-c", "--command"):
            statement = next(rest, None)
            if statement is None:
                fail(f"{arg} needs an SQL statement", 2)
            statements.append(statement)  # type: ignore[arg-type]
        elif arg.startswith("--command="):
            statements.append(arg.split("=", 1)[1])
        else:
            options.append(arg)
    return options, statements


def python_sqlite(path: Path, statements: list[str]) -> int:
    """The statements through Python's sqlite3 module, printed as psql prints a result."""
    import sqlite3

    from rich.table import Table

    connection = sqlite3.connect(path)
    try:
        for statement in statements:
            cursor = connection.execute(statement)
            if cursor.description is None:
                connection.commit()
                continue
            rows = cursor.fetchall()
            table = Table(box=None, show_edge=False, pad_edge=False)
            for column in cursor.description:
                table.add_column(column[0])
            for row in rows:
                table.add_row(*("" if v is None else str(v) for v in row))
            console.print(table)
            console.print(f"({len(rows)} row{'' if len(rows) == 1 else 's'})", highlight=False)
    except sqlite3.Error as exc:
        console.print(f"Error: {exc}", style="red", markup=False)
        return 1
    finally:
        connection.close()
    return 0


def dbconsole(
    ctx: typer.Context,
    data_dir: DataDirOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Open psql or sqlite3 on mockcoord's database (GitLab's `gitlab-psql`).

    Arguments after the options go to the client: `mockcoord dbconsole -c "select count(*) from ci_job_artifacts"`.
    `ci_job_artifacts` is a view over `p_ci_job_artifacts`, as GitLab's partitioned table keeps the old name."""
    from sqlalchemy.engine import make_url

    from mockctl.rails_console import sqlite_path

    settings = build_settings(data_dir=data_dir, database_url=database_url)
    args = list(ctx.args)
    url = make_url(settings.resolved_database_url)
    path = sqlite_path(settings)
    if path is None:
        if url.get_backend_name() != "postgresql":
            fail(f"dbconsole knows PostgreSQL and SQLite, not {url.get_backend_name()}")
        command, env = psql_command(url, args)
        if shutil.which("psql") is None:
            fail("psql is not installed (Debian/Ubuntu: apt-get install postgresql-client)", 127)
        sys.stdout.flush()
        os.execvpe("psql", command, {**os.environ, **env})
    if not path.is_file():
        fail(f"no mockcoord database at {path} (start `mockcoord serve` once, or give --data-dir / --database-url)")
    options, statements = sqlite_args(args)
    if shutil.which("sqlite3") is not None:
        sys.stdout.flush()
        os.execvp("sqlite3", ["sqlite3", *(options or ["-header", "-column"]), str(path), *statements])
    if not statements:
        fail(
            "sqlite3 is not installed (Debian/Ubuntu: apt-get install sqlite3); "
            'give -c "SQL" to run a statement through Python\'s sqlite3 module instead',
            127,
        )
    if options:
        fail(f"sqlite3 is not installed: its options ({' '.join(options)}) cannot be honoured", 127)
    Console(stderr=True).print(
        "sqlite3 is not installed: running the statement with Python's sqlite3 module", style="yellow", markup=False
    )
    raise typer.Exit(python_sqlite(path, statements))
