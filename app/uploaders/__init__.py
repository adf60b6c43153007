"""GitLab's CarrierWave uploaders (``app/uploaders``): where an upload's bytes live."""
