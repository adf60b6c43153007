"""GitLab's declarative policies (``app/policies``): pure rules over facts loaded elsewhere."""
