"""``Ci::JobArtifacts::`` services: create, destroy, delete, expire."""
