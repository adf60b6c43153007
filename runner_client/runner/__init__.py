"""A gitlab-runner work-alike with the shell executor: ``register`` and ``run`` (see ``cli.py``)."""
