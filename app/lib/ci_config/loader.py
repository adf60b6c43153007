"""``Gitlab::Config::Loader::Yaml``: text to a mapping, or GitLab's words for why not.

GitLab parses with Psych (libyaml); the C loader of PyYAML is libyaml too, so a syntax
error reads the same: ``(<unknown>): <problem> <context> at line L column C``.
"""

from __future__ import annotations

from typing import Any

import yaml

from app.lib.ci_config.errors import FormatError

Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

EMPTY = "Please provide content of .gitlab-ci.yml"
INVALID_FORMAT = "Invalid configuration format"
RAW_TOO_BIG = "The provided YAML is too big"
PARSED_TOO_BIG = "The parsed YAML is too big"
MAX_YAML_SIZE_BYTES = 2 * 1024 * 1024  # application_settings.max_yaml_size_bytes
MAX_YAML_DEPTH = 100  # application_settings.max_yaml_depth
OBJECT_BYTES = 40  # what Gitlab::Utils::DeepSize counts for one Ruby object, about


def psych_message(exc: yaml.YAMLError) -> str:
    """``Psych::SyntaxError#message``: problem and context, where the context starts."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return f"(<unknown>): {exc}"
    mark = exc.context_mark or exc.problem_mark
    text = " ".join(part for part in (exc.problem, exc.context) if part)
    if mark is None:
        return f"(<unknown>): {text}"
    return f"(<unknown>): {text} at line {mark.line + 1} column {mark.column + 1}"


def too_big(data: Any) -> bool:
    """``Gitlab::Utils::DeepSize``: the loaded data, aliases expanded, over the size or
    depth limit. Walked without recursion and stopped at the limit, so an alias bomb (or
    a structure that contains itself) costs no more than the limit."""
    size = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_YAML_DEPTH:
            return True
        size += OBJECT_BYTES + (len(value) if isinstance(value, str) else 0)
        if size > MAX_YAML_SIZE_BYTES:
            return True
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for pair in value.items() for item in pair)
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return False


def load(content: str) -> dict[Any, Any]:
    if not content.strip():
        raise FormatError([EMPTY])
    if len(content.encode()) > MAX_YAML_SIZE_BYTES:
        raise FormatError([RAW_TOO_BIG])
    try:
        data = yaml.load(content, Loader=Loader)  # a safe loader
    except yaml.YAMLError as exc:
        raise FormatError([psych_message(exc)]) from None
    if too_big(data):
        raise FormatError([PARSED_TOO_BIG])
    if not isinstance(data, dict):
        raise FormatError([INVALID_FORMAT])
    return data
