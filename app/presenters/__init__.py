"""GitLab's presenters (``app/presenters``): a model as one consumer must see it."""
