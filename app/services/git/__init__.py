"""Repositories and git over HTTP (GitLab's Gitaly and ``Gitlab::GitAccess``, played by dulwich
and ``git http-backend``)."""
