"""How ``Gitlab::Config::Entry::Validator#messages`` words an error: location, the
humanized attribute and the message, all lower case."""

from __future__ import annotations

import re

_IMPLEMENT = re.compile(r"jobs ([a-z\s]+) config should implement")


class ConfigError(Exception):
    """An invalid configuration; ``errors`` in GitLab's order (the API shows the first)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(errors[0] if errors else "invalid configuration")
        self.errors = errors


class FormatError(ConfigError):
    """The text is not a YAML mapping at all (``Gitlab::Config::Loader::FormatError``)."""


def humanize(attribute: str) -> str:
    """ActiveSupport's ``humanize`` as far as a lower-cased message can tell."""
    text = attribute.lstrip("_")
    text = text.removesuffix("_id")
    return text.replace("_", " ")


def entry_message(location: str, attribute: str, message: str) -> str:
    """``"#{location} #{full_message}".downcase``, with job names kept whole in the
    'should implement the script:' message (GitLab's one exception)."""
    text = f"{location} {humanize(attribute)} {message}".lower()
    return _IMPLEMENT.sub(lambda m: f"jobs {m.group(1).replace(' ', '_')} config should implement", text)
