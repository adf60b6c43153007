"""``--help`` that reads as click's (and gitlab-runner's): ``TEXT``, ``INTEGER``, ``PATH``, and
nothing after a flag.

Typer 0.29 labels every value with its Python type (``<str>``, ``<bool>``, ``<list[str]>``),
flags included. ``use_click_metavars()`` relabels them once per process; both ``mockcoord``
and ``python -m runner_client`` build their help from this package's commands.
"""

from __future__ import annotations

import re
from typing import Any

from typer.core import TyperArgument, TyperOption

CLICK_NAMES = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "bool": "BOOLEAN"}


def click_metavar(typer_label: str) -> str:
    """``<list[str]>`` -> ``TEXT`` (a repeatable option says so in its help), ``<path>`` -> ``PATH``."""
    label = typer_label.strip("<>")
    if inner := re.fullmatch(r"list\[(.+)\]", label):
        label = inner.group(1)
    return CLICK_NAMES.get(label, label.upper())


def use_click_metavars() -> None:
    typer_option, typer_argument = TyperOption.display_type_rich, TyperArgument.display_type_rich

    def option(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag or self.metavar is not None:
            return None if self.is_flag else self.metavar
        label = typer_option(self, ctx)
        return click_metavar(label) if label else label

    def argument(self: TyperArgument, ctx: Any) -> str | None:
        label = typer_argument(self, ctx)
        return click_metavar(label) if label and self.metavar is None else label

    def usage(self: TyperArgument) -> str:  # click: FILE, [SCENARIO]; Typer: {file}, [scenario]
        name = self.display_name_raw.upper() if self.metavar is None else self.display_name_raw
        return (name if self.required else f"[{name}]") + ("..." if self.nargs != 1 else "")

    TyperOption.display_type_rich = option  # type: ignore[method-assign]
    TyperArgument.display_type_rich = argument  # type: ignore[method-assign]
    TyperArgument._usage_display_name = usage  # type: ignore[method-assign]
