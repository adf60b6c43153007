"""``mockcoord --help`` stays instant: the CLI imports the application only inside commands.

An import check, not a timer: what ``--help`` leaves in ``sys.modules`` is what it cost.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("fastapi", "sqlalchemy", "sqlmodel", "aioboto3", "moto", "uvicorn")

PROBE = """
import json, sys
from mockctl.cli import cli
try:
    cli(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in {heavy})))
"""


@pytest.mark.parametrize(
    "args", [["--help"], ["serve", "--help"], ["runner", "register", "--help"], ["artifacts-uploader", "--help"]]
)
def test_help_imports_no_heavy_module(args: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=set(HEAVY)), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(out.stdout.splitlines()[-1]) == []
