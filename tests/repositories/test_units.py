"""Pure pieces: refspecs and depth as BuildRunnerPresenter builds them, commit titles,
the CLI's relative repository paths, and the CGI environment git http-backend gets."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from app.models import Build
from app.presenters.build_runner_presenter import git_depth, refspecs
from app.services.git.http_backend import cgi_environment
from app.services.git.repositories import CommitInfo
from mockctl.seed.scenario_file import anchor_repository_paths


def test_refspecs():
    assert refspecs(7, "main", False, 20) == [
        "+refs/pipelines/7:refs/pipelines/7",
        "+refs/heads/main:refs/remotes/origin/main",
    ]
    assert refspecs(7, "v1.0", True, 1) == ["+refs/pipelines/7:refs/pipelines/7", "+refs/tags/v1.0:refs/tags/v1.0"]
    assert refspecs(7, "main", False, 0) == [
        "+refs/pipelines/7:refs/pipelines/7",
        "+refs/heads/*:refs/remotes/origin/*",
        "+refs/tags/*:refs/tags/*",
    ]


def test_git_depth_reads_the_jobs_variable_like_ruby_to_i():
    def depth(value: object) -> int:
        return git_depth(Build(project_id=1, commit_id=1, options={"variables": {"GIT_DEPTH": value}}))

    assert git_depth(Build(project_id=1, commit_id=1)) == 20
    assert (depth("5"), depth(0), depth("12abc"), depth("none"), depth(" 3")) == (5, 0, 12, 0, 3)


def commit(message: str) -> CommitInfo:
    return CommitInfo("a" * 40, None, message, "A", "a@example.com", datetime(2024, 1, 1, tzinfo=UTC))


def test_commit_title_and_description():
    assert (commit("One line\n").title, commit("One line\n").description) == ("One line", "")
    assert (commit("T\n\nBody\n").title, commit("T\n\nBody\n").description) == ("T", "\nBody")
    long = "x" * 100 + "\nrest\n"
    assert commit(long).title == "x" * 100 and commit(long).description == long
    assert commit("").title == "" and commit("").before_sha == "0" * 40


def test_cli_reads_relative_repository_paths_from_the_scenario_folder(tmp_path: Path):
    data = {
        "projects": [
            {"path": "a/b", "repository": {"path": "src"}},
            {"path": "a/c", "repository": {"path": "/abs/dir"}},
            {"path": "a/d", "repository": {"files": {}}},
            {"path": "a/e"},
            "not a project",
        ]
    }
    anchor_repository_paths(data, tmp_path)
    assert data["projects"][0]["repository"] == {"path": str(tmp_path / "src")}
    assert data["projects"][1]["repository"] == {"path": "/abs/dir"}
    anchor_repository_paths(["not", "a", "scenario"], tmp_path)  # left for the server to reject


def test_cgi_environment():
    scope = {
        "method": "POST",
        "query_string": b"",
        "client": ("10.0.0.1", 1234),
        "headers": [
            (b"content-type", b"application/x-git-upload-pack-request"),
            (b"content-encoding", b"gzip"),
            (b"git-protocol", b"version=2"),
            (b"authorization", b"Basic c2VjcmV0"),
        ],
    }
    env = cgi_environment(scope, Path("/repos"), "/@hashed/aa/bb/x.git/git-upload-pack")
    assert env["GIT_PROJECT_ROOT"] == "/repos" and env["PATH_INFO"].endswith("/git-upload-pack")
    assert (env["HTTP_CONTENT_ENCODING"], env["GIT_PROTOCOL"], env["REMOTE_ADDR"]) == ("gzip", "version=2", "10.0.0.1")
    assert "CONTENT_LENGTH" not in env  # chunked: git reads to the end
    assert not any("c2VjcmV0" in v for v in env.values())  # credentials stay out of git's environment
    keys = {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))}
    assert keys["http.receivepack"] == "false"
