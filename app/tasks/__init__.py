"""Rake tasks (``lib/tasks/gitlab``), run as ``mockcoord rake TASK``; each module names the
GitLab task it stands for."""
