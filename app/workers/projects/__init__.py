"""GitLab's ``Projects::`` Sidekiq workers."""
