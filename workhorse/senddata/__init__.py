"""Gitlab-Workhorse-Send-Data injectors: Rails names a source, Workhorse streams it."""
