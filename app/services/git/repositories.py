"""Project repositories: bare git repositories on disk, written and read with dulwich.

Where GitLab keeps repositories in Gitaly, mockcoord keeps them under the data directory in
GitLab's *hashed storage* layout, ``repositories/@hashed/<h[0:2]>/<h[2:4]>/<h>.git`` with
``h`` the SHA-256 of the project id: the path never changes when a namespace is renamed and
never depends on what characters a path holds. ``git http-backend`` serves them
(``app/api/git_http.py``); these functions create and read them.

Every public function is async (the disk work runs in a thread) and takes the settings and
a project id, so pipeline code can ask ``head_sha`` or ``read_blob`` without knowing dulwich.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dulwich.errors import NotGitRepository, NotTreeError
from dulwich.index import commit_tree
from dulwich.object_store import tree_lookup_path
from dulwich.objects import Blob, Commit, Tree
from dulwich.refs import check_ref_format
from dulwich.repo import Repo

from app.config import Settings

ZERO_SHA = "0" * 40  # Gitlab::Git::SHA1_BLANK_SHA: "no previous commit"
CONFIG_PATH = ".gitlab-ci.yml"  # a project's default ci_config_path
IDENTITY = b"Administrator <admin@example.com>"  # GitLab's root user, author of seeded commits
BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"
PIPELINE_PREFIX = "refs/pipelines/"  # Ci::PersistentRef
REGULAR, EXECUTABLE, SYMLINK = 0o100644, 0o100755, 0o120000


class RepositoryError(Exception):
    """Content that cannot become a repository (an unreadable file, say)."""


@dataclass(frozen=True)
class CommitInfo:
    """What CI variables say about a commit (``Commit#full_title``, ``#description``...)."""

    sha: str
    parent_sha: str | None
    message: str
    author_name: str
    author_email: str
    committed_at: datetime

    @property
    def title(self) -> str:
        """``Commit#full_title``: the message's first line."""
        return self.message.replace("\r", "\n").split("\n", 1)[0]

    @property
    def description(self) -> str:
        """``Commit#description``: the whole message when the title is 100 characters or
        more, otherwise what follows the first line, one trailing newline dropped."""
        if len(self.title) >= 100:
            return self.message
        rest = self.message.split("\n", 1)[1] if "\n" in self.message else ""
        return rest.removesuffix("\n")

    @property
    def before_sha(self) -> str:
        return self.parent_sha or ZERO_SHA


def valid_branch_name(name: str) -> bool:
    return bool(name) and check_ref_format((BRANCH_PREFIX + name).encode())


def disk_path(project_id: int) -> str:
    """``Storage::Hashed#disk_path``: ``@hashed/ab/cd/abcd...`` (no ``.git``)."""
    digest = hashlib.sha256(str(project_id).encode()).hexdigest()
    return f"@hashed/{digest[:2]}/{digest[2:4]}/{digest}"


def repository_dir(settings: Settings, project_id: int) -> Path:
    return settings.repositories_path / f"{disk_path(project_id)}.git"


# --- writing ---------------------------------------------------------------------------


def files_from_mapping(files: Mapping[str, str]) -> Iterator[tuple[str, int, bytes]]:
    for path, text in files.items():
        yield path, REGULAR, text.encode()


def files_from_directory(root: Path) -> Iterator[tuple[str, int, bytes]]:
    """Every regular file and symlink under ``root`` as git would commit it (``.git`` left
    out, executables 100755, symlinks as their target), one file in memory at a time."""
    for current, dirs, names in os.walk(root):
        linked = [d for d in dirs if os.path.islink(os.path.join(current, d))]
        dirs[:] = sorted(d for d in dirs if d != ".git" and d not in linked)
        for name in sorted(n for n in [*names, *linked] if n != ".git"):
            full = os.path.join(current, name)
            relative = os.path.relpath(full, root).replace(os.sep, "/")
            try:
                info = os.lstat(full)
                if stat.S_ISLNK(info.st_mode):
                    yield relative, SYMLINK, os.fsencode(os.readlink(full))
                elif stat.S_ISREG(info.st_mode):
                    mode = EXECUTABLE if info.st_mode & stat.S_IXUSR else REGULAR
                    yield relative, mode, Path(full).read_bytes()
            except OSError as exc:
                raise RepositoryError(f"cannot read {relative}: {exc.strerror}") from exc


def _write(target: Path, files: Iterable[tuple[str, int, bytes]], branch: str, message: str, when: datetime) -> str:
    """A bare repository at ``target`` with one commit of ``files`` on ``branch`` (HEAD at it).

    Built beside the target and renamed into place, so a half-written repository is never
    seen and a stale one (from an earlier run under the same id) is replaced whole."""
    target.parent.mkdir(parents=True, exist_ok=True)
    building = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        repo = Repo.init_bare(building, mkdir=True, default_branch=branch.encode())
        store = repo.object_store
        entries: list[tuple[bytes, bytes, int]] = []
        for path, mode, data in files:
            blob = Blob.from_string(data)
            store.add_object(blob)
            entries.append((path.encode(), blob.id, mode))
        commit = Commit()
        commit.tree = commit_tree(store, entries) if entries else _empty_tree(store)
        commit.author = commit.committer = IDENTITY
        commit.author_time = commit.commit_time = int(when.timestamp())
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = message.encode() if message.endswith("\n") else (message + "\n").encode()
        store.add_object(commit)
        repo.refs[(BRANCH_PREFIX + branch).encode()] = commit.id
        repo.close()
        if target.exists():
            shutil.rmtree(target)
        building.rename(target)
        return commit.id.decode()
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _empty_tree(store) -> bytes:  # type: ignore[no-untyped-def]
    tree = Tree()
    store.add_object(tree)
    return tree.id


async def create_repository(
    settings: Settings,
    project_id: int,
    files: Iterable[tuple[str, int, bytes]],
    branch: str,
    message: str,
    when: datetime,
) -> str:
    """Create (or replace) the project's repository; returns the commit's sha."""
    return await asyncio.to_thread(_write, repository_dir(settings, project_id), files, branch, message, when)


async def remove_repository(settings: Settings, project_id: int) -> None:
    await asyncio.to_thread(shutil.rmtree, repository_dir(settings, project_id), True)


async def remove_all(settings: Settings) -> None:
    """Every repository goes (``POST /-/mock/reset``)."""
    await asyncio.to_thread(shutil.rmtree, settings.repositories_path, True)


# --- reading ---------------------------------------------------------------------------


def _open(settings: Settings, project_id: int) -> Repo | None:
    path = repository_dir(settings, project_id)
    if not path.is_dir():
        return None
    try:
        return Repo(str(path))
    except NotGitRepository:
        return None


def _resolve_ref(repo: Repo, ref: str) -> tuple[str, bool] | None:
    """(sha, is_tag): a branch first, then a tag, as GitLab resolves an ambiguous ref."""
    for name, is_tag in ((BRANCH_PREFIX + ref, False), (TAG_PREFIX + ref, True)):
        try:
            return repo.get_peeled(name.encode()).decode(), is_tag
        except KeyError:
            continue
    return None


def _commit(repo: Repo, sha: str) -> Commit | None:
    try:
        obj = repo[sha.encode()]
    except (KeyError, ValueError):
        return None
    return obj if isinstance(obj, Commit) else None


def _default_branch(settings: Settings, project_id: int) -> str | None:
    repo = _open(settings, project_id)
    if repo is None:
        return None
    with repo:
        target = repo.refs.read_ref(b"HEAD") or b""
    target = target.removeprefix(b"ref: ").strip()
    return target.decode().removeprefix(BRANCH_PREFIX) if target.startswith(BRANCH_PREFIX.encode()) else None


def _commit_info(settings: Settings, project_id: int, sha: str) -> CommitInfo | None:
    repo = _open(settings, project_id)
    if repo is None:
        return None
    with repo:
        commit = _commit(repo, sha)
    if commit is None:
        return None
    name, _, email = commit.author.decode(errors="replace").partition(" <")
    return CommitInfo(
        sha=commit.id.decode(),
        parent_sha=commit.parents[0].decode() if commit.parents else None,
        message=commit.message.decode(errors="replace"),
        author_name=name,
        author_email=email.removesuffix(">"),
        committed_at=datetime.fromtimestamp(commit.commit_time, UTC),
    )


def _read_blob(settings: Settings, project_id: int, sha: str, path: str) -> bytes | None:
    repo = _open(settings, project_id)
    if repo is None:
        return None
    with repo:
        commit = _commit(repo, sha)
        if commit is None:
            return None
        try:
            mode, blob_id = tree_lookup_path(repo.__getitem__, commit.tree, path.strip("/").encode())
        except (KeyError, NotTreeError):
            return None
        if not stat.S_ISREG(mode):
            return None
        return repo[blob_id].as_raw_string()


def _set_ref(settings: Settings, project_id: int, name: str, sha: str | None) -> None:
    repo = _open(settings, project_id)
    if repo is None:
        return
    with repo:
        if sha is None:
            repo.refs.remove_if_equals(name.encode(), None)
        elif _commit(repo, sha) is not None:
            repo.refs[name.encode()] = sha.encode()


async def has_repository(settings: Settings, project_id: int) -> bool:
    return await asyncio.to_thread(lambda: _open(settings, project_id) is not None)


async def head_sha(settings: Settings, project_id: int, ref: str) -> str | None:
    """The commit of branch (else tag) ``ref``."""
    found = await ref_commit(settings, project_id, ref)
    return found[0] if found else None


def _ref_commit(settings: Settings, project_id: int, ref: str) -> tuple[str, bool] | None:
    repo = _open(settings, project_id)
    if repo is None:
        return None
    with repo:
        return _resolve_ref(repo, ref)


async def ref_commit(settings: Settings, project_id: int, ref: str) -> tuple[str, bool] | None:
    """(sha, is_tag) of ``ref``; None without repository or ref."""
    return await asyncio.to_thread(_ref_commit, settings, project_id, ref)


async def default_branch(settings: Settings, project_id: int) -> str | None:
    """``Project#default_branch``: the branch HEAD names."""
    return await asyncio.to_thread(_default_branch, settings, project_id)


async def commit_info(settings: Settings, project_id: int, sha: str) -> CommitInfo | None:
    return await asyncio.to_thread(_commit_info, settings, project_id, sha)


async def read_blob(settings: Settings, project_id: int, sha: str, path: str) -> bytes | None:
    """A file's bytes at a commit (e.g. ``.gitlab-ci.yml``); None when the repository, the
    commit or the file is missing, or the path is a directory or symlink."""
    return await asyncio.to_thread(_read_blob, settings, project_id, sha, path)


def persistent_ref(pipeline_id: int) -> str:
    """``Ci::PersistentRef#path``: keeps a pipeline's commit fetchable while it runs."""
    return f"{PIPELINE_PREFIX}{pipeline_id}"


async def ensure_persistent_ref(settings: Settings, project_id: int, pipeline_id: int, sha: str) -> None:
    """``Ci::Pipeline#ensure_persistent_ref``; a no-op without repository or commit."""
    await asyncio.to_thread(_set_ref, settings, project_id, persistent_ref(pipeline_id), sha)


async def delete_persistent_ref(settings: Settings, project_id: int, pipeline_id: int) -> None:
    """``Ci::PersistentRef#delete``, for when a pipeline completes."""
    await asyncio.to_thread(_set_ref, settings, project_id, persistent_ref(pipeline_id), None)
