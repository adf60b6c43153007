"""GitLab's ``ObjectStorage`` workers."""
