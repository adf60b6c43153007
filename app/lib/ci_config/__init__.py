"""``.gitlab-ci.yml`` as mockcoord reads it: ``process(text) -> CiConfig`` or ``ConfigError``
with GitLab's linter messages (``Gitlab::Ci::Config`` and ``Gitlab::Ci::YamlProcessor``)."""

from app.lib.ci_config.entries import Need
from app.lib.ci_config.errors import ConfigError, FormatError
from app.lib.ci_config.yaml_processor import CiConfig, JobConfig, process

__all__ = ["CiConfig", "ConfigError", "FormatError", "JobConfig", "Need", "process"]
