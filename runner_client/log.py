"""gitlab-runner's text log format (log/runner_formatter.go): a level prefix, the message
padded to 50 columns minus the prefix, then `` k=v`` for each field in key order."""

from __future__ import annotations

import sys
from typing import Any, TextIO

RESET = "\033[0;m"
_LEVELS = {
    "debug": ("\033[37;1m", ""),
    "info": ("", ""),
    "warning": ("\033[0;33m", "WARNING: "),
    "error": ("\033[31;1m", "ERROR: "),
    "fatal": ("\033[31;1m", "FATAL: "),
    "panic": ("\033[31;1m", "PANIC: "),
}


def format_line(level: str, message: str, fields: dict[str, Any], color: bool = False) -> str:
    level_color, prefix = _LEVELS[level]
    reset = RESET if color else ""
    level_color = level_color if color else ""
    out = f"{level_color}{prefix}{message:<{50 - len(prefix)}}{reset} "
    for key in sorted(fields):
        out += f" {level_color}{key}{reset}={_go_value(fields[key])}"
    return out


def _go_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class RunnerLog:
    """Writes runner-style lines (to stderr, like logrus). ``color=None``: colored on a terminal
    (gitlab-runner itself always colors); ``lines`` keeps every line for tests and callers."""

    def __init__(self, stream: TextIO | None = None, color: bool | None = None, verbose: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.color = color if color is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self.verbose = verbose
        self.lines: list[str] = []

    def log(self, level: str, *message: object, **fields: Any) -> None:
        if level == "debug" and not self.verbose:
            return
        text = " ".join(str(m) for m in message)  # logrus's ...ln joins its arguments with spaces
        self.lines.append(format_line(level, text, fields))
        self.stream.write(format_line(level, text, fields, self.color) + "\n")
        self.stream.flush()

    def debug(self, *message: object, **fields: Any) -> None:
        self.log("debug", *message, **fields)

    def info(self, *message: object, **fields: Any) -> None:
        self.log("info", *message, **fields)

    def warning(self, *message: object, **fields: Any) -> None:
        self.log("warning", *message, **fields)

    def error(self, *message: object, **fields: Any) -> None:
        self.log("error", *message, **fields)

    def fatal(self, *message: object, **fields: Any) -> None:
        self.log("fatal", *message, **fields)

    def panic(self, *message: object, **fields: Any) -> None:
        self.log("panic", *message, **fields)
