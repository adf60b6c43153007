"""The keywords mockcoord runs, checked as ``Gitlab::Ci::Config::Entry::*`` checks them.

Each entry validates its own value first; only a valid entry looks at its children (as
``Node#compose!`` returns early), so one mistake gives one message, worded as GitLab's
linter words it. Keywords GitLab knows but mockcoord does not run are refused with a
message naming them, rather than silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.lib.chronic_duration import DurationParseError, parse_duration
from app.lib.ci_config.errors import entry_message
from app.presenters.build_runner_presenter import REPORT_FILE_NAMES

MAX_NESTING_LEVEL = 10
MAX_TAGS = 50
MAX_JOB_NAME = 255
MAX_BUILD_TIMEOUT = 30 * 86400  # Project::MAX_BUILD_TIMEOUT, one month

ROOT_KEYWORDS = {"default", "include", "before_script", "image", "services", "after_script", "variables", "stages"}
ROOT_KEYWORDS |= {"cache", "workflow", "spec"}
LEGACY_DEFAULTS = ("before_script", "image", "services", "after_script")
UNSUPPORTED_ROOT = ("include", "cache", "workflow", "spec")

# Entry::Job::ALLOWED_KEYS + Entry::Processable::PROCESSABLE_ALLOWED_KEYS
JOB_KEYWORDS = {
    *("tags", "script", "image", "services", "start_in", "artifacts", "cache", "dependencies"),
    *("before_script", "after_script", "hooks", "coverage", "retry", "parallel", "timeout"),
    *("release", "id_tokens", "publish", "pages", "manual_confirmation", "run"),
    *("extends", "stage", "only", "except", "rules", "variables", "inherit", "allow_failure"),
    *("when", "needs", "resource_group", "environment", "interruptible"),
}
SUPPORTED_JOB_KEYWORDS = {
    *("script", "before_script", "after_script", "stage", "variables", "image", "services", "tags"),
    *("when", "allow_failure", "needs", "dependencies", "artifacts", "timeout"),
}
DEFAULT_KEYWORDS = {
    *("before_script", "after_script", "hooks", "cache", "image", "services", "interruptible"),
    *("timeout", "retry", "tags", "artifacts", "id_tokens"),
}
SUPPORTED_DEFAULT_KEYWORDS = {"before_script", "after_script", "image", "services", "timeout", "tags", "artifacts"}
ALLOWED_WHEN = ("on_success", "on_failure", "always", "manual", "delayed")
ARTIFACTS_KEYWORDS = {"name", "untracked", "paths", "reports", "when", "expire_in", "expose_as", "exclude"}
ARTIFACTS_KEYWORDS |= {"public", "access"}
SUPPORTED_ARTIFACTS_KEYWORDS = {"name", "untracked", "paths", "reports", "when", "expire_in", "exclude"}
ARTIFACTS_WHEN = ("on_success", "on_failure", "always")
REPORT_TYPES = [name for name in REPORT_FILE_NAMES if name != "requirements_v2"]
IMAGE_KEYWORDS = {"name", "entrypoint", "ports", "pull_policy", "docker", "kubernetes"}
SERVICE_KEYWORDS = IMAGE_KEYWORDS | {"command", "alias", "variables"}
SUPPORTED_IMAGE_KEYWORDS = {"name", "entrypoint", "pull_policy"}
PULL_POLICIES = ("always", "never", "if-not-present")
NEED_KEYWORDS = {"job", "artifacts", "optional"}
ROOT_VARIABLE_DATA = {"value", "description", "expand", "options"}
JOB_VARIABLE_DATA = {"value", "expand"}


def blank(value: Any) -> bool:
    """Ruby's ``blank?``: nil, false, empty or whitespace-only."""
    if value is None or value is False:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, list | dict) and not value


def ruby_string(value: Any) -> str:
    """``to_s`` as Ruby writes a YAML scalar."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def array_of_strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def nested_strings(value: Any, max_level: int, level: int = 1) -> bool:
    """``validate_nested_array``: strings, in arrays nested at most ``max_level`` deep."""
    return isinstance(value, list) and all(
        isinstance(v, str) or (level < max_level and nested_strings(v, max_level, level + 1)) for v in value
    )


def flatten(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [s for v in value for s in flatten(v)]


def is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def duration(value: Any, *, never: bool = False) -> float | None:
    """Seconds, or None when GitLab would not read it as a duration (strings only)."""
    if not isinstance(value, str):
        return None
    if never and value.strip().lower() == "never":
        return 0.0
    try:
        seconds = parse_duration(value)
    except DurationParseError:
        return None
    return seconds if seconds > 0 else None


@dataclass
class Node:
    """Where an entry sits (``jobs:build:artifacts``) and the shared list of messages."""

    location: str
    errors: list[str] = field(default_factory=list)
    valid: bool = True

    def child(self, key: str) -> Node:
        return Node(f"{self.location}:{key}" if self.location else key, self.errors)

    def error(self, attribute: str, message: str) -> None:
        self.errors.append(entry_message(self.location, attribute, message))
        self.valid = False

    def keys(self, config: dict[Any, Any], known: set[str], supported: set[str]) -> None:
        """``allowed_keys``; then the keys GitLab knows that mockcoord does not run."""
        present = [str(k) for k in config]
        unknown = [k for k in present if k not in known]
        if unknown:
            self.error("config", f"contains unknown keys: {', '.join(unknown)}")
        unsupported = [k for k in present if k in known and k not in supported]
        if unsupported:
            self.error("config", f"uses keywords mockcoord does not support: {', '.join(unsupported)}")


@dataclass(frozen=True)
class Need:
    name: str
    artifacts: bool = True
    optional: bool = False


def commands(node: Node, value: Any) -> list[str] | None:
    """``Entry::Commands``: a string or nested arrays of strings, flattened."""
    if not (isinstance(value, str) or nested_strings(value, MAX_NESTING_LEVEL)):
        node.error("config", f"should be a string or a nested array of strings up to {MAX_NESTING_LEVEL} levels deep")
        return None
    return flatten(value)


def pull_policy(node: Node, value: Any) -> list[str] | None:
    if not (isinstance(value, str) or array_of_strings(value)):
        node.error("config", "should be an array of strings or a string")
        return None
    policies = [value] if isinstance(value, str) else list(value)
    unknown = [p for p in policies if p not in PULL_POLICIES]
    if unknown:
        node.error("config", f"contains unknown values: {', '.join(unknown)}")
        return None
    return policies


def image(node: Node, value: Any, known: set[str] = IMAGE_KEYWORDS) -> dict[str, Any] | None:
    """``Entry::Image`` / ``Entry::Service``: a name, or a hash with ``name``."""
    if not isinstance(value, str | dict):
        node.error("config", "should be a hash or a string")
        return None
    spec: dict[Any, Any] = {"name": value} if isinstance(value, str) else value
    if isinstance(value, dict):
        node.keys(value, known, SUPPORTED_IMAGE_KEYWORDS | {"ports"})
        if "ports" in value:
            node.error("config", "contains disallowed keys: ports")
    name = spec.get("name")
    if not isinstance(name, str):
        node.error("name", "should be a string")
    if blank(name):
        node.error("name", "can't be blank")
    if spec.get("entrypoint") is not None and not array_of_strings(spec["entrypoint"]):
        node.error("entrypoint", "should be an array of strings")
    if not node.valid:
        return None
    result: dict[str, Any] = {"name": name}
    if spec.get("entrypoint") is not None:
        result["entrypoint"] = spec["entrypoint"]
    if spec.get("pull_policy") is not None:
        policies = pull_policy(node.child("pull_policy"), spec["pull_policy"])
        if policies is None:
            return None
        result["pull_policy"] = policies
    return result


def services(node: Node, value: Any) -> list[dict[str, Any]] | None:
    if not isinstance(value, list):
        node.error("config", "should be an array")
        return None
    result = [image(node.child("service"), service, SERVICE_KEYWORDS) for service in value]
    return None if any(s is None for s in result) else result  # type: ignore[return-value]


def tags(node: Node, value: Any) -> list[str] | None:
    if not array_of_strings(value):
        node.error("config", "should be an array of strings")
        return None
    if len(value) > MAX_TAGS:
        node.error("config", f"must be less than the limit of {MAX_TAGS} tags")
        return None
    return list(value)


def timeout(node: Node, value: Any) -> int | None:
    """``Entry::Timeout``: a duration string up to a month, kept as seconds (``job_timeout``)."""
    seconds = duration(value)
    if seconds is None:
        node.error("config", "should be a duration")
        return None
    if seconds > MAX_BUILD_TIMEOUT:
        node.error("config", "should not exceed the limit")
        return None
    return int(seconds)


def variables(node: Node, value: Any, allowed_data: set[str]) -> dict[str, str] | None:
    """``Entry::Variables``: ``KEY: scalar`` or ``KEY: {value:, ...}``, values as strings."""
    if not isinstance(value, dict):
        node.error("config", "should be a hash")
        return None
    result: dict[str, str] = {}
    for key, item in value.items():
        child = node.child(str(key))
        if is_scalar(item):
            result[str(key)] = ruby_string(item)
        elif isinstance(item, dict):
            extra = [str(k) for k in item if k not in allowed_data]
            if extra:
                child.error("config", f"uses invalid data keys: {', '.join(extra)}")
            if item.get("value") is not None and not is_scalar(item["value"]):
                child.error("config_value", "must be a scalar")
            if item.get("expand") is not None and not isinstance(item["expand"], bool):
                child.error("config_expand", "should be a boolean value")
            result[str(key)] = ruby_string(item.get("value"))
        else:
            node.errors.append("variable definition must be either a string or a hash")
            node.valid = False
    return result if node.valid else None


def reports(node: Node, value: Any) -> dict[str, list[str]] | None:
    """``Entry::Reports``: report type -> path or paths."""
    node.keys(value, set(REPORT_TYPES), set(REPORT_TYPES))
    for report_type, paths in value.items():
        if not (isinstance(paths, str) or array_of_strings(paths)):
            node.error(str(report_type), "should be an array of strings or a string")
    if not node.valid:
        return None
    return {str(t): [p] if isinstance(p, str) else list(p) for t, p in value.items()}


def artifacts(node: Node, value: Any) -> dict[str, Any] | None:
    """``Entry::Artifacts``, stored as ``options[:artifacts]``."""
    if not isinstance(value, dict):
        node.error("config", "should be a hash")
        return None
    node.keys(value, ARTIFACTS_KEYWORDS, SUPPORTED_ARTIFACTS_KEYWORDS)
    if value.get("name") is not None and not isinstance(value["name"], str):
        node.error("name", "should be a string")
    if value.get("untracked") is not None and not isinstance(value["untracked"], bool):
        node.error("untracked", "should be a boolean value")
    for key in ("paths", "exclude"):
        if value.get(key) is not None and not array_of_strings(value[key]):
            node.error(key, "should be an array of strings")
    if value.get("reports") is not None and not isinstance(value["reports"], dict):
        node.error("reports", "should be a hash")
    when = value.get("when")
    if when is not None:
        if not isinstance(when, str):
            node.error("when", "should be a string")
        if when not in ARTIFACTS_WHEN:
            node.error("when", f"should be one of: {', '.join(ARTIFACTS_WHEN)}")
    if value.get("expire_in") is not None and duration(value["expire_in"], never=True) is None:
        node.error("expire_in", "should be a duration")
    if not node.valid:
        return None
    result = {str(k): v for k, v in value.items() if v is not None}
    if "reports" in result:
        found = reports(node.child("reports"), result["reports"])
        if found is None:
            return None
        result["reports"] = found
    return result


def need(node: Node, value: Any) -> Need | None:
    """``Entry::Need``: a job name, or ``{job:, artifacts:, optional:}`` (same pipeline)."""
    if isinstance(value, str):
        if blank(value):
            node.error("config", "can't be blank")
            return None
        return Need(value)
    if not isinstance(value, dict) or "job" not in value or {"project", "ref", "pipeline"} & set(value):
        node.errors.append(f"{node.location} has an unsupported type")
        return None
    node.keys(value, NEED_KEYWORDS, NEED_KEYWORDS)
    if not isinstance(value["job"], str):
        node.error("job", "should be a string")
    elif blank(value["job"]):
        node.error("job", "can't be blank")
    for key in ("artifacts", "optional"):
        if value.get(key) is not None and not isinstance(value[key], bool):
            node.error(key, "should be a boolean value")
    if not node.valid:
        return None
    return Need(value["job"], value.get("artifacts") is not False, bool(value.get("optional")))


def needs(node: Node, value: Any) -> list[Need] | None:
    if not isinstance(value, dict | list):
        node.error("config", "can only be a Hash or an Array")
        return None
    if isinstance(value, dict) and not value:
        node.error("config", "can not be an empty Hash")
        return None
    found = [need(node.child("need"), item) for item in (value if isinstance(value, list) else [value])]
    return None if any(n is None for n in found) else found  # type: ignore[return-value]


def allow_failure(node: Node, value: Any) -> bool | dict[str, list[int]] | None:
    """``Entry::AllowFailure``: a boolean, or ``{exit_codes: code or codes}``."""
    if isinstance(value, bool):
        return value
    node.keys(value, {"exit_codes"}, {"exit_codes"})
    codes = value.get("exit_codes")
    if not (is_integer(codes) or (isinstance(codes, list) and all(is_integer(c) for c in codes))):
        node.error("exit_codes", "should be an array of integers or an integer")
    if not node.valid:
        return None
    return {"exit_codes": [codes] if is_integer(codes) else list(codes)}
