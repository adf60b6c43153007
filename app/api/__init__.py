"""HTTP translation only: parse parameters GitLab's way, call a service, shape the answer."""
