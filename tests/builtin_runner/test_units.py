"""Masking across reads, the bash script's shape, config.toml round trips."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

from runner_client.runner.config import Config, RunnerEntry
from runner_client.runner.job import expand, parse_go_duration
from runner_client.runner.masking import MAX_PENDING, Masker
from runner_client.runner.shell import BashScript


def masked(masker: Masker, *chunks: bytes) -> bytes:
    return b"".join(masker.feed(c) for c in chunks) + masker.flush()


def test_phrases_are_masked_across_reads() -> None:
    m = Masker(["s3cr3t-value", "other"], [])
    assert masked(m, b"a s3cr", b"3t-val", b"ue b\nother\n") == b"a [MASKED] b\n[MASKED]\n"


def test_token_prefixes_keep_the_prefix() -> None:
    m = Masker([], ["glcbt-", "glrt-"])
    out = masked(m, b"x glpat-abc", b"DEF_1.2=3 y glrt-t1_zz\nglcbt-", b"q")
    assert out == b"x glpat-[MASKED] y glrt-[MASKED]\nglcbt-[MASKED]"
    assert masked(Masker([], []), b"just glpat- here\n") == b"just glpat- here\n"


def test_a_long_line_is_let_through_without_splitting_a_secret() -> None:
    m = Masker(["needle-secret"], [])
    line = b"x" * (MAX_PENDING + 10) + b"needle-sec"
    first = m.feed(line)
    assert first and b"needle" not in first
    assert first + m.feed(b"ret tail\n") == b"x" * (MAX_PENDING + 10) + b"[MASKED] tail\n"


def test_script_stops_at_the_first_failing_command(tmp_path: Path) -> None:
    w = BashScript()
    w.cd(tmp_path)
    w.user_commands(["echo one", "true | cat", "echo 'multi\nline'", "", "exit 4", "echo never"])
    proc = subprocess.run(["bash"], input=w.finish("bash"), capture_output=True, text=True, check=False)
    assert proc.returncode == 4
    assert proc.stdout == (
        "\x1b[32;1m$ echo one\x1b[0;m\none\n"
        "\x1b[32;1m$ true | cat\x1b[0;m\n"
        "\x1b[32;1m$ echo 'multi # collapsed multi-line command\x1b[0;m\nmulti\nline\n"
        "\n"
        "\x1b[32;1m$ exit 4\x1b[0;m\n"
    )


def test_pipefail(tmp_path: Path) -> None:
    w = BashScript()
    w.user_commands(["false | cat", "echo after"])
    proc = subprocess.run(["bash"], input=w.finish("bash"), capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and "after\n" not in proc.stdout


def test_expand_and_durations() -> None:
    lookup = {"A": "1", "B": "x$A"}
    assert expand("$A-${A}-$$-$MISSING-end", lookup) == "1-1-$--end"
    assert parse_go_duration("1m30s") == 90.0 and parse_go_duration("2h") == 7200.0
    assert parse_go_duration("soon") is None and parse_go_duration("") is None


def test_config_round_trip_keeps_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        'concurrent = 4\ncheck_interval = 2\nlisten_address = ":9252"\n\n'
        '[[runners]]\n  name = "a"\n  url = "http://x"\n  token = "glrt-aaaa-bbbb"\n  executor = "shell"\n'
        '  environment = ["A=1"]\n  [runners.custom_build_dir]\n    enabled = true\n'
    )
    cfg = Config.load(path)
    assert (cfg.concurrent, cfg.poll_interval, cfg.runners[0].environment) == (4, 2.0, ["A=1"])
    cfg.runners.append(RunnerEntry(name="b", url="http://y", token="glrt-cccc", id=7))
    cfg.save()
    data = tomllib.loads(path.read_text())
    assert data["listen_address"] == ":9252" and data["concurrent"] == 4
    assert data["runners"][0]["custom_build_dir"] == {"enabled": True}
    assert [r["token"] for r in data["runners"]] == ["glrt-aaaa-bbbb", "glrt-cccc"]
    assert data["runners"][1]["id"] == 7 and data["runners"][1]["executor"] == "shell"
    assert path.stat().st_mode & 0o777 == 0o600
    assert Config.load(tmp_path / "missing.toml", missing_ok=True).runners == []
