"""Grape entities (``lib/api/entities``): keys in GitLab's order."""
