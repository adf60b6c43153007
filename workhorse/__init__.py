"""mockcoord's Workhorse: the async front door that streams artifacts past Rails.

Mirrors GitLab Workhorse's artifact duties (upload rewriting, send-url, X-Sendfile)
and talks to Rails only over HTTP.
"""

__version__ = "v17.0.0-mockcoord"
