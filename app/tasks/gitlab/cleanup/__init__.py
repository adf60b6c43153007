"""``Gitlab::Cleanup``: the classes behind ``gitlab:cleanup:*`` (``lib/gitlab/cleanup``)."""
