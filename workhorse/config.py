"""Workhorse settings, read from constructor kwargs or ``MOCKCOORD_WORKHORSE_*`` env vars."""

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkhorseSettings(BaseSettings):
    """What GitLab keeps in workhorse's command line and config.toml, plus NGINX's body limit."""

    model_config = SettingsConfigDict(env_prefix="MOCKCOORD_WORKHORSE_")

    listen_host: str = "127.0.0.1"
    listen_port: int = 3000
    # A listening socket inherited from the process that started this one (several Workhorse
    # processes on one port): serve on it instead of binding listen_host:listen_port.
    listen_fd: int | None = None
    rails_url: str = "http://127.0.0.1:3001"
    # GitLab's .gitlab_workhorse_secret: base64 of 32 random bytes, shared with Rails.
    secret_file: Path = Path(".gitlab_workhorse_secret")
    # NGINX's client_max_body_size in front of Workhorse, in bytes; 0 disables it.
    client_max_body_size: int = 0
    # Credentials of Workhorse's own S3 client ([object_storage.s3] in config.toml).
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    chunk_size: int = 1024 * 1024
    # What a proxied download (send-url, artifact entries) buffers from object storage: aiohttp's
    # read_bufsize, as Go's io.Copy has its 32 KiB. Not chunk_size: aiohttp joins what it holds into
    # one bytes object, and with 1 MiB each download in flight cost 12% more CPU and ~4 MiB of RSS
    # (docs/benchmarks.md, "What changed in Workhorse for it").
    storage_read_size: int = 64 * 1024
    log_file: Path | None = None
    # Read only by mockcoord's instrument (mockctl.workhorse), not by Workhorse: entries its
    # request journal keeps in memory (0 = off). Here so one MOCKCOORD_WORKHORSE_* set configures both.
    journal_limit: int = 10_000
    # Read only by mockcoord's instrument: a file the Workhorse processes of one front door share
    # the fault rules Rails hands over through (unset: each keeps its own).
    faults_file: Path | None = None
