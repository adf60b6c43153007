"""GitLab's ``ObjectStorage`` services: what object storage needs besides one artifact's life."""
