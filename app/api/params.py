"""Grape-style parameter coercion: the same 400 ``{"error": "<name> is invalid"}`` answers."""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import TypeVar

from app.errors import param_error

E = TypeVar("E", bound=IntEnum)
_TRUE = {"1", "on", "t", "true", "y", "yes"}
_FALSE = {"0", "off", "f", "false", "n", "no", ""}


def boolean(params: Mapping[str, str], name: str, default: bool = False) -> bool:
    value = params.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise param_error(f"{name} is invalid")


def integer(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise param_error(f"{name} is invalid") from None


def enum_value(params: Mapping[str, str], name: str, enum: type[E], default: str, allowed: set[str] | None = None) -> E:
    value = params.get(name) or default
    if value not in enum.__members__ or (allowed is not None and value not in allowed):
        raise param_error(f"{name} does not have a valid value")
    return enum[value]
