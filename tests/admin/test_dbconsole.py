"""``mockcoord dbconsole``: the administrator page's "unknown artifacts" query, pasted verbatim,
runs on mockcoord's database (psql or sqlite3) and answers rows of the page's shape."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from app.db import Database
from tests.conftest import Coordinator

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT.parent / "shared" / "reference" / "gitlab-job-artifacts-troubleshooting.md"
# The page's query as it stands there (checked against the page below when the page is at hand).
QUERY = """select expire_at, file_type, locked, count(*) from ci_job_artifacts
where expire_at is not null and
file_type != 3
group by expire_at, file_type, locked having count(*) > 1;"""
EXPIRE_AT = "2021-06-21T22:00:00Z"  # the page's sample


def page_query() -> str:
    if not PAGE.is_file():
        return QUERY
    text = PAGE.read_text()
    match = re.search(r"```sql\n(.*?)```", text, re.S)
    assert match is not None, "the page's SQL block"
    query = "\n".join(line.strip() for line in match.group(1).strip().splitlines())
    assert query == QUERY
    return query


def scenario() -> dict:
    unknown = {"expire_at": EXPIRE_AT, "locked": "unknown"}
    jobs = [
        {
            "name": f"job{n}",
            "artifacts": [
                {"file_type": "archive", "size": 10, **unknown},
                {"file_type": "metadata", "size": 1, **unknown},
                {"file_type": "junit", "size": 3, **unknown},
                {"file_type": "trace", "size": 5, **unknown},  # file_type 3: not counted
            ],
        }
        for n in range(3)
    ]
    jobs.append({"name": "single", "artifacts": [{"file_type": "codequality", "size": 2, **unknown}]})  # count 1
    jobs.append({"name": "kept", "artifacts": [{"file_type": "archive", "size": 2, "expire_in": "never"}]})
    return {"groups": [{"path": "demo"}], "projects": [{"path": "demo/app", "pipelines": [{"jobs": jobs}]}]}


def dbconsole(c: Coordinator, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "app", "dbconsole", "--database-url", c.settings.resolved_database_url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def result_rows(output: str) -> set[tuple[str, ...]]:
    """Data rows of a psql / sqlite3 -column / fallback table: the lines that end in a count."""
    found = set()
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"\s*\|\s*|\s{2,}", line.strip()) if c.strip()]
        if len(cells) == 4 and cells[1].isdigit() and cells[3].isdigit():
            found.add(tuple(cells))
    return found


def expected(output: str) -> set[tuple[str, ...]]:
    when = "2021-06-21 22:00:00+00" if "+00" in output else "2021-06-21 22:00:00.000000"
    return {(when, "1", "2", "3"), (when, "2", "2", "3"), (when, "4", "2", "3")}


async def test_the_page_s_query_runs_verbatim(admin: Coordinator) -> None:
    await admin.seed(scenario())
    result = dbconsole(admin, "-c", page_query())
    assert result.returncode == 0, result.stderr
    assert result_rows(result.stdout) == expected(result.stdout)
    if admin.state.db.is_sqlite:
        assert "expire_at" in result.stdout.splitlines()[0]
    else:  # psql's own table, times as the page shows them
        assert re.match(r"\s*expire_at\s*\|\s*file_type\s*\|\s*locked\s*\|\s*count", result.stdout)
        assert "2021-06-21 22:00:00+00" in result.stdout


async def test_without_the_client_binary(admin: Coordinator, tmp_path: Path) -> None:
    await admin.seed(scenario())
    result = dbconsole(admin, "-c", page_query(), path=str(tmp_path))  # an empty PATH: no psql, no sqlite3
    if admin.state.db.is_sqlite:  # Python's sqlite3 module answers, and says so
        assert result.returncode == 0, result.stderr
        assert "sqlite3 is not installed: running the statement with Python's sqlite3 module" in result.stderr
        assert result_rows(result.stdout) == expected(result.stdout)
        assert "(3 rows)" in result.stdout
        interactive = dbconsole(admin, path=str(tmp_path))
        assert interactive.returncode == 127 and "sqlite3 is not installed" in interactive.stdout
    else:
        assert result.returncode == 127
        assert result.stdout.strip() == "psql is not installed (Debian/Ubuntu: apt-get install postgresql-client)"


async def test_the_view_goes_and_comes_with_the_tables(admin: Coordinator) -> None:
    """drop_all removes the view first (PostgreSQL would refuse the table), create_all brings it back."""
    db = Database(admin.settings.resolved_database_url)
    try:
        async with db.engine.connect() as conn:
            names = await conn.run_sync(lambda c: __import__("sqlalchemy").inspect(c).get_view_names())
        assert "ci_job_artifacts" in names
    finally:
        await db.dispose()


def test_no_database_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "dbconsole", "--data-dir", str(tmp_path), "-c", "select 1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout.strip() == (
        f"no mockcoord database at {tmp_path.resolve() / 'mockcoord.sqlite3'} "
        "(start `mockcoord serve` once, or give --data-dir / --database-url)"
    )


def test_psql_gets_the_password_outside_the_command_line() -> None:
    from sqlalchemy.engine import make_url

    from mockctl.cli.dbconsole import psql_command

    url = make_url("postgresql+asyncpg://u:s3cret@db.example:5433/gitlab?ssl=require")
    command, env = psql_command(url, ["-c", "select 1"])
    assert command == ["psql", "postgresql://u@db.example:5433/gitlab?sslmode=require", "-c", "select 1"]
    assert env == {"PGTZ": "UTC", "PGPASSWORD": "s3cret"}
