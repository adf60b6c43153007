"""The control plane's HTTP routes under ``/-/mock/`` (GitLab has no counterpart)."""
