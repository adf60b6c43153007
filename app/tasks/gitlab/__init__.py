"""``lib/tasks/gitlab``: the ``gitlab:`` rake tasks."""
