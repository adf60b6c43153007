"""Counterparts of GitLab's ``lib/``: parsers and rules that change no state
(``Gitlab::Ci::Config``, ``ChronicDuration``, ``Gitlab::Ci::Status::Composite``)."""
