"""Artifact upload: pre-authorize, stream the file part to its destination, rewrite the form for Rails."""
