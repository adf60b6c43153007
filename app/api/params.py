"""Grape-style parameter coercion: the same 400 ``{"error": "<name> is invalid"}`` answers."""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Any, TypeVar

from app.errors import param_error
from app.models import record_id

E = TypeVar("E", bound=IntEnum)
_TRUE = {"1", "on", "t", "true", "y", "yes"}
_FALSE = {"0", "off", "f", "false", "n", "no", ""}


def optional_boolean(params: Mapping[str, Any], name: str) -> bool | None:
    """Grape's Boolean: JSON true/false, or "true"/"1"/"yes"/... in a query or form."""
    value = params.get(name)
    if value is None or isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise param_error(f"{name} is invalid")


def boolean(params: Mapping[str, Any], name: str, default: bool = False) -> bool:
    value = optional_boolean(params, name)
    return default if value is None else value


def integer(params: Mapping[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise param_error(f"{name} is invalid")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise param_error(f"{name} is invalid") from None


def id_param(params: Mapping[str, Any], name: str) -> int:
    """Grape's ``requires :<name>, type: Integer`` for a record's id (a route parameter)."""
    value = integer(params, name)
    assert value is not None
    return record_id(value)


def enum_value(params: Mapping[str, str], name: str, enum: type[E], default: str, allowed: set[str] | None = None) -> E:
    value = params.get(name) or default
    if value not in enum.__members__ or (allowed is not None and value not in allowed):
        raise param_error(f"{name} does not have a valid value")
    return enum[value]
