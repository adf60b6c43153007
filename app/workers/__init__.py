"""Sidekiq workers (``app/workers``), cron workers among them; each module names the GitLab
worker it stands for."""
