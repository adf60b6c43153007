"""The Rails-console snippets of GitLab's job-artifacts troubleshooting page for administrators,
each done as its snippet does it (the same relation, ``each_batch`` of 1,000 by id, GitLab's
services for every deletion), with a read-only dry run and totals for the console to show."""
