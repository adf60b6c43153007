"""mockcoord's instrument: everything GitLab has no counterpart for. It may import ``app``,
``workhorse`` and ``runner_client``; they never import it. It reaches Rails through
``app.instrumentation`` (``rails``, ``instrument``) and Workhorse through
``workhorse.instrumentation`` (``workhorse``); docs/architecture.md, "The tree", maps the rest."""
