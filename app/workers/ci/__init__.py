"""GitLab's ``Ci::`` Sidekiq workers."""
