"""GitLab's finders (``app/finders``): which rows a request is about, loaded with what its
answer shows."""
