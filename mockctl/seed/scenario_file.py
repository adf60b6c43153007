"""A scenario file read from disk, for ``mockcoord seed FILE`` and ``serve --scenario FILE``.

Light on purpose (yaml only): ``mockcoord seed`` reads the file before it calls the
coordinator, and a broken file is one line naming it, not a parser's traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class ScenarioFileError(ValueError):
    """A scenario file that cannot be read or parsed; the message names the file."""


def read_scenario_file(path: Path) -> Any:
    """The file's data (YAML, so JSON too), relative repository paths read from its folder."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ScenarioFileError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ScenarioFileError(f"{path}: not UTF-8 text") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ScenarioFileError(f"{path}: not valid YAML: {exc.problem or exc.context}{where}") from None
    except yaml.YAMLError as exc:
        raise ScenarioFileError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    anchor_repository_paths(data, path.parent)
    return data


def anchor_repository_paths(data: Any, base: Path) -> None:
    """A relative ``projects[].repository.path`` is read from the scenario file's folder."""
    for project in (data.get("projects") if isinstance(data, dict) else None) or []:
        repository = project.get("repository") if isinstance(project, dict) else None
        if isinstance(repository, dict) and isinstance(repository.get("path"), str):
            repository["path"] = str((base / repository["path"]).resolve())
