"""``lib/tasks/gitlab`` (the ``*_tasks`` modules: the rake files' task bodies) and
``lib/gitlab/...`` classes the tasks run (``cleanup/``)."""
