"""The runner's side of the wire (artifact uploader and downloader with gitlab-runner's
semantics). It imports nothing from ``app`` or ``workhorse``: it must work against any GitLab.
"""
