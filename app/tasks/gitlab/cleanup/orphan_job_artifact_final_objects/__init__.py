"""``Gitlab::Cleanup::OrphanJobArtifactFinalObjects``: list the ``@final`` objects no artifact
row names (``GenerateList``), then delete those a list names (``ProcessList``)."""
