"""Who is asking and what they may do at the door: ``Gitlab::Auth::AuthFinders``,
``API::APIGuard``, the runner API's job-token checks (``API::Ci::Helpers::Runner``)."""
