"""Which files an upload takes (commands/helpers/file_archiver.go): ``--path`` globs with
doublestar semantics (``**``), each match walked recursively, ``--exclude`` globs, and
``git ls-files -o`` for ``--untracked``. Paths outside the working directory are refused."""

from __future__ import annotations

import os
import posixpath
import subprocess
from collections import Counter
from pathlib import Path

from wcmatch import glob

from runner_client.log import RunnerLog

_FLAGS = glob.GLOBSTAR | glob.DOTGLOB | glob.BRACE | glob.FORCEUNIX | glob.NOUNIQUE


class OutsideWorkdir(ValueError):
    pass


def _split_pattern(path: str) -> tuple[str, str]:
    """doublestar.SplitPattern: the longest leading directory without glob metacharacters."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if any(c in part for c in "*?[{\\"):
            return "/".join(parts[:i]) or ".", "/".join(parts[i:])
    return posixpath.dirname(path) or ".", posixpath.basename(path)


class FileSet:
    """Relative slash paths -> ``os.lstat`` results, gathered the way gitlab-runner does."""

    def __init__(self, workdir: str | os.PathLike[str], log: RunnerLog, exclude: list[str] | None = None) -> None:
        self.wd = Path(workdir).resolve()
        self.log = log
        self.exclude = list(exclude or [])
        self.files: dict[str, os.stat_result] = {}
        self.excluded: Counter[str] = Counter()

    def sorted(self) -> list[str]:
        return sorted(self.files)

    def relative(self, path: str) -> str:
        absolute = os.path.abspath(os.path.join(self.wd, path))
        rel = os.path.relpath(absolute, self.wd).replace(os.sep, "/")
        if rel == ".." or rel.startswith("../"):
            raise OutsideWorkdir(f"artifact path is not a subpath of project directory: {path}")
        return rel

    def _is_excluded(self, rel: str) -> str | None:
        for pattern in self.exclude:
            try:
                rel_pattern = self.relative(pattern)
            except OutsideWorkdir as exc:
                self.log.warning(f"isExcluded: {exc}")
                return None
            if glob.globmatch(rel, rel_pattern, flags=_FLAGS):
                return pattern
        return None

    def process(self, rel: str) -> bool:
        rel = posixpath.normpath(rel)
        if rel == ".." or rel.startswith("../"):
            self.log.warning(f"{rel}: not supported: outside build directory")
            return False
        rule = self._is_excluded(rel)
        if rule is not None:
            self.excluded[rule] += 1
            return False
        try:
            self.files[rel] = os.lstat(self.wd / rel)
        except FileNotFoundError:
            return False
        except OSError as exc:
            self.log.warning(f"{rel}: {exc}")
            return False
        return True

    def _walk(self, rel: str) -> list[str]:
        """filepath.Walk: the root, then everything below it in lexical order, no symlink following."""
        out = [rel]
        full = self.wd / rel
        if full.is_dir() and not full.is_symlink():
            for name in sorted(os.listdir(full)):
                out.extend(self._walk(posixpath.join(rel, name) if rel != "." else name))
        return out

    def add_path(self, path: str) -> None:
        path = path.replace("\\", "/")
        base, pattern = _split_pattern(path)
        try:
            rel = self.relative(base)
        except OutsideWorkdir as exc:
            self.log.warning(f"processPath: {exc}")
            return
        joined = posixpath.normpath(posixpath.join(rel, pattern))
        matches = glob.glob(joined, flags=_FLAGS, root_dir=str(self.wd))
        found = sum(self.process(p) for match in sorted(matches) for p in self._walk(match))
        if found == 0:
            self.log.warning(
                f"{joined}: no matching files. Ensure that the artifact path is relative to the working directory "
                f"({self.wd})"
            )
        else:
            self.log.info(f"{joined}: found {found} matching artifact files and directories")

    def add_untracked(self) -> None:
        self.log.debug("Executing command:", "git ls-files -o -z")
        try:
            out = subprocess.run(["git", "ls-files", "-o", "-z"], cwd=self.wd, capture_output=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            self.log.warning(f"untracked: {exc}")
            return
        found = sum(self.process(name) for name in out.decode().split("\0") if name)
        if found == 0:
            self.log.warning("untracked: no files")
        else:
            self.log.info(f"untracked: found {found} files")


def enumerate_files(
    workdir: str | os.PathLike[str],
    paths: list[str],
    log: RunnerLog,
    exclude: list[str] | None = None,
    untracked: bool = False,
) -> FileSet:
    files = FileSet(workdir, log, exclude)
    for path in paths:
        files.add_path(path)
    if untracked:
        files.add_untracked()
    for rule, count in files.excluded.items():
        log.info(f"{rule}: excluded {count} files")
    return files
