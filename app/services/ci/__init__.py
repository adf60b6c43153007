"""``Ci::`` services: pipelines, jobs, runners, traces."""
