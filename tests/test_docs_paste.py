"""Every ``bash`` block of the README and ``docs/``, pasted in order as a newcomer pastes them.

Each page gets its own ``mockcoord serve`` on free ports (its banner's ``export`` line is the
shell's environment; ``http://127.0.0.1:3000`` in a block becomes the real front door) and one
shell session: a block's ``cd`` and ``export`` carry over to the next. The blocks run in a stand-in
for the clone (its ``scenarios/`` and ``examples/``), and whatever they leave there must be
ignored by ``.gitignore``. An HTML comment right above a block steers it:
``<!-- docs-test: skip (why) -->``, ``<!-- docs-test: serve ... -->`` (the block installs and starts
the coordinator: the test starts it instead), ``<!-- docs-test: needs git -->``; the README's
``<!-- test-command ... -->`` block is ``.ci/run``'s.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.test_cli import Served, start_serve

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DEFAULT_URL = "http://127.0.0.1:3000"
BLOCK_TIMEOUT = 180  # seconds; the slowest block runs two jobs and two private coordinators
TOOLS = re.compile(r"(?:^|[\s|&;(])(curl|unzip|jq|git)\s", re.M)
CLONE_PARTS = ("scenarios", "examples")


@dataclass
class Block:
    page: Path
    line: int
    text: str
    markers: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    def marker(self, name: str) -> str | None:
        return next((m for m in self.markers if m.startswith(name)), None)


def bash_blocks(page: Path) -> list[Block]:
    """The page's ```bash blocks with the HTML comments right above each."""
    blocks: list[Block] = []
    lines = page.read_text().splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            markers = []
            j = i - 1
            while j >= 0 and lines[j].startswith("<!--"):
                markers.append(lines[j].removeprefix("<!--").removesuffix("-->").strip())
                j -= 1
            end = lines.index("```", i + 1)
            blocks.append(Block(page, i + 1, "\n".join(lines[i + 1 : end]) + "\n", markers))
            i = end
        i += 1
    return blocks


def to_run(page: Path) -> list[Block]:
    return [b for b in bash_blocks(page) if not b.marker("docs-test: skip") and not b.marker("test-command")]


def banner_exports(banner: str) -> dict[str, str]:
    line = next(line for line in banner.splitlines() if line.strip().startswith("export "))
    return dict(word.split("=", 1) for word in shlex.split(line.strip())[1:])


def test_every_block_is_run_or_says_why_not() -> None:
    """A marker names what it means; an unknown one would silently skip nothing."""
    known = ("docs-test: skip (", "docs-test: serve", "docs-test: needs ", "test-command")
    for page in PAGES:
        for block in bash_blocks(page):
            unknown = [m for m in block.markers if not m.startswith(known)]
            assert not unknown, f"{block.where}: unknown marker {unknown}"


class Shell:
    """One pasted-into terminal: cwd and exported variables carry from block to block."""

    def __init__(self, state: Path, cwd: Path, env: dict[str, str]) -> None:
        self.state, self.env = state, env
        state.mkdir()
        (state / "cwd").write_text(str(cwd))
        (state / "env.sh").write_text("")

    def run(self, block: Block, text: str) -> subprocess.CompletedProcess[str]:
        script = self.state / "block.sh"
        script.write_text(text)
        wrapper = (
            f'. "{self.state}/env.sh"; cd "$(cat "{self.state}/cwd")" || exit 99; set -eo pipefail; '
            f'. "{script}"; set +e; pwd > "{self.state}/cwd"; export -p > "{self.state}/env.sh"'
        )
        proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-c", wrapper],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            pytest.fail(f"{block.where} did not finish within {BLOCK_TIMEOUT}s:\n{out[-3000:]}")
        return subprocess.CompletedProcess(proc.args, proc.returncode, out)


@pytest.fixture
def clone(tmp_path: Path) -> Iterator[Path]:
    """A stand-in for a fresh clone's root: what the docs read from it, nothing of the real one."""
    root = tmp_path / "clone"
    root.mkdir()
    for part in CLONE_PARTS:
        (root / part).symlink_to(ROOT / part)
    yield root


def left_in_clone(clone: Path) -> list[str]:
    files = (p for p in clone.rglob("*") if p.relative_to(clone).parts[0] not in CLONE_PARTS and p.is_file())
    return sorted(str(p.relative_to(clone)) for p in files)


@pytest.mark.parametrize("page", [p for p in PAGES if to_run(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_page_pastes_in_order(page: Path, clone: Path, tmp_path: Path) -> None:
    blocks = to_run(page)
    served: Served = start_serve(tmp_path / "data")
    try:
        exports = banner_exports(served.banner)
        assert exports["CI_SERVER_URL"] == served.url
        scratch = tmp_path / "tmp"
        scratch.mkdir()
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "TMPDIR": str(scratch),
            **exports,
        }
        shell = Shell(tmp_path / "shell", clone, env)
        for block in blocks:
            if block.marker("docs-test: serve"):
                assert block is blocks[0] and block.text.rstrip().endswith("mockcoord serve"), block.where
                continue
            needed = {*TOOLS.findall(block.text), *(block.marker("docs-test: needs ") or "").split()[2:]}
            missing = sorted(tool for tool in needed if shutil.which(tool) is None)
            if missing:
                pytest.skip(f"{block.where} needs {', '.join(missing)}, which is not installed")
            done = shell.run(block, block.text.replace(DEFAULT_URL, served.url))
            assert done.returncode == 0, (
                f"{block.where} failed ({done.returncode}):\n{block.text}\n{done.stdout[-4000:]}"
            )
    finally:
        served.proc.terminate()
        served.proc.wait(timeout=15)
    if shutil.which("git"):
        left = left_in_clone(clone)
        ignored = subprocess.run(
            ["git", "check-ignore", "--no-index", "--stdin"],
            input="\n".join(left),
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.split()
        assert sorted(set(left) - set(ignored)) == [], "the docs leave untracked files in the clone"
