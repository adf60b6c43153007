"""``gitlab:cleanup:orphan_job_artifact_files`` on local storage: GitLab's find, dry run and real
run, the parent directories it leaves behind, mockcoord's REMOVE_EMPTY_DIRS, NICENESS."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from app.storage.paths import hashed_dir
from tests.conftest import Coordinator
from tests.rake.helpers import rake, require_local, seed_artifacts

FILES = "gitlab:cleanup:orphan_job_artifact_files"


def make_dir(root: Path, rel: str, content: bytes = b"zip") -> Path:
    path = root / rel
    path.mkdir(parents=True)
    (path / "artifacts.zip").write_bytes(content)
    return path


def entries(path: Path) -> list[str]:
    return sorted(os.listdir(path))


@pytest.fixture
async def disk(coordinator: Coordinator) -> Coordinator:
    require_local(coordinator)
    return coordinator


@pytest.fixture
def tree(disk: Coordinator) -> dict[str, Path]:
    """Two orphans (ids no row has, one named ``abc``: ``to_i`` is 0), each alone in its job and
    date directories."""
    root = disk.settings.artifacts_path
    project = hashed_dir(1)
    return {
        "root": root,
        "alone": make_dir(root, f"{project}/2020_01_01/900/9001"),
        "abc": make_dir(root, f"{project}/2020_01_02/901/abc"),
    }


def beside(root: Path, live: dict[str, object]) -> Path:
    """An orphan in a live artifact's job directory."""
    return make_dir(root, str(Path(str(live["key"])).parent.parent / "9003"))


def ionice_prefix(niceness: str = "best-effort") -> str:
    ionice = shutil.which("ionice")
    return f"{ionice} --class {niceness} " if ionice else ""


async def test_dry_run_lists_and_keeps(
    disk: Coordinator, tree: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    live = await seed_artifacts(disk, 2)
    root = tree["root"]
    tree["beside"] = beside(root, live[0])
    live_dirs = [root / a["key"] for a in live]

    ran = await rake(capsys, disk.settings, FILES, env={"DEBUG": "1"})

    assert ran.code == 0 and ran.err == ""
    find = f"{ionice_prefix()}find -L {root} -mindepth 6 -maxdepth 6 -type d"
    orphans = [tree[n] for n in ("alone", "abc", "beside")]
    debug = sorted(line for line in ran.lines if line.startswith("DEBUG"))
    assert debug == sorted(f"DEBUG Found orphan job artifact file @ {p}" for p in orphans)
    assert [line for line in ran.lines if not line.startswith("DEBUG")] == [
        "INFO [DRY RUN] Looking for orphan job artifacts to clean up",
        f"INFO [DRY RUN] find command: '{find}'",
        "INFO [DRY RUN] Processed 5 job artifact(s) to find and cleaned 3 orphan(s).",
        "INFO To clean up these files run this command with DRY_RUN=false",
    ]
    assert all(p.is_dir() for p in orphans) and all(p.is_file() for p in live_dirs)

    quiet = await rake(capsys, disk.settings, FILES, env={"DRY_RUN": "no"})  # only "false" is a real run
    assert not any(line.startswith("DEBUG") for line in quiet.lines)
    assert all(p.is_dir() for p in orphans)


async def test_a_real_run_removes_the_orphans_and_leaves_their_emptied_parents(
    disk: Coordinator, tree: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    live = await seed_artifacts(disk, 1)
    root = tree["root"]
    tree["beside"] = beside(root, live[0])
    live_file = root / live[0]["key"]

    ran = await rake(capsys, disk.settings, FILES, env={"DRY_RUN": "false"})

    assert ran.code == 0
    assert ran.lines[0] == "INFO  Looking for orphan job artifacts to clean up"  # GitLab's leading space
    assert ran.lines[-1] == "INFO  Processed 4 job artifact(s) to find and cleaned 3 orphan(s)."
    assert not any(tree[n].exists() for n in ("alone", "abc", "beside"))
    assert live_file.is_file()
    # GitLab's rm_rf takes the artifact directory only: the job and date directories stay, empty.
    assert entries(tree["alone"].parent) == [] and entries(tree["alone"].parent.parent) == ["900"]
    assert entries(tree["abc"].parent) == []


async def test_remove_empty_dirs_takes_the_emptied_parents_and_nothing_else(
    disk: Coordinator, tree: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    live = await seed_artifacts(disk, 1)
    root = tree["root"]
    tree["beside"] = beside(root, live[0])
    live_file = root / live[0]["key"]
    emptied = [tree[n].parent for n in ("alone", "abc")] + [tree[n].parent.parent for n in ("alone", "abc")]
    env = {"REMOVE_EMPTY_DIRS": "true", "DEBUG": "1"}

    dry = await rake(capsys, disk.settings, FILES, env=env)
    assert sorted(line for line in dry.lines if "Found empty directory" in line) == sorted(
        f"DEBUG Found empty directory @ {p}" for p in emptied
    )
    assert dry.lines[-2] == (
        "INFO [DRY RUN] Found 4 empty parent directories (REMOVE_EMPTY_DIRS=true, mockcoord's option)."
    )
    assert all(p.is_dir() for p in emptied) and tree["alone"].is_dir()

    ran = await rake(capsys, disk.settings, FILES, env={**env, "DRY_RUN": "false"})
    assert ran.lines[-1] == "INFO  Removed 4 empty parent directories (REMOVE_EMPTY_DIRS=true, mockcoord's option)."
    assert not any(p.exists() for p in emptied) and not tree["beside"].exists()
    assert live_file.is_file()
    assert entries(root / hashed_dir(1)) == [Path(live[0]["key"]).parts[3]]  # the live artifact's date only
    assert (root / "tmp" / "uploads").is_dir()  # Workhorse's temp directory is not the layout's


async def test_niceness_is_ionices_class_and_checked(
    disk: Coordinator, tree: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("ionice") is None:
        pytest.skip("GitLab checks NICENESS only when ionice is installed")
    idle = await rake(capsys, disk.settings, FILES, env={"NICENESS": "Idle"})
    assert idle.lines[1].startswith(f"INFO [DRY RUN] find command: '{ionice_prefix('idle')}find -L ")
    bad = await rake(capsys, disk.settings, FILES, env={"NICENESS": "fast"})
    assert bad.code == 1
    assert bad.lines == ["INFO [DRY RUN] Looking for orphan job artifacts to clean up"]
    assert bad.err == "Invalid niceness: 'fast' (NICENESS is one of none, realtime, best-effort, idle)\n"


async def test_without_find_the_tree_is_walked_and_says_so(
    disk: Coordinator, tree: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.tasks.gitlab.cleanup import orphan_job_artifact_files

    real_which = shutil.which
    monkeypatch.setattr(
        orphan_job_artifact_files.shutil, "which", lambda name: None if name == "find" else real_which(name)
    )
    ran = await rake(capsys, disk.settings, FILES, env={"DRY_RUN": "false"})
    root = tree["root"]
    assert ran.lines[1] == (
        f"INFO  find is not installed: walking {root} with os.scandir instead (mockcoord's fallback for "
        f"'find -L {root} -mindepth 6 -maxdepth 6 -type d')"
    )
    assert ran.lines[2] == "INFO  Processed 2 job artifact(s) to find and cleaned 2 orphan(s)."
    assert not tree["alone"].exists()


async def test_on_object_storage_the_task_says_it_reads_local_storage(
    coordinator: Coordinator, capsys: pytest.CaptureFixture[str]
) -> None:
    if not coordinator.state.store.remote:
        pytest.skip("object storage case")
    ran = await rake(capsys, coordinator.settings, FILES)
    assert ran.code == 1 and ran.out == ""
    assert ran.err.startswith("artifacts are on object storage here: this task looks only at local storage")


async def test_a_missing_artifacts_directory_is_finds_error_line(
    disk: Coordinator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    settings = disk.settings.model_copy(update={"data_dir": tmp_path / "nowhere"})
    settings = settings.model_copy(update={"database_url": disk.settings.resolved_database_url})
    ran = await rake(capsys, settings, FILES)
    assert ran.code == 0
    missing = tmp_path / "nowhere" / "shared" / "artifacts"
    assert f"ERROR find: '{missing}': No such file or directory" in [
        line.replace("‘", "'").replace("’", "'") for line in ran.lines
    ]
    assert ran.lines[-2] == "INFO [DRY RUN] Processed 0 job artifact(s) to find and cleaned 0 orphan(s)."
