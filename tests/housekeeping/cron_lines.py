"""The cron line the schedule tests give every cron job, and the mock-clock moment clear of it."""

EVERY_TWO_HOURS = "0 */2 * * *"

QUIET_MOMENT = "2026-01-01T00:00:01Z"
"""A second past midnight, so every cron line these tests use has just fired: real time reaches
the next fire time a minute later at the soonest (two hours for the every-two-hours lines), at
whatever hour the suite runs. On the real clock a fire time could pass mid-test and add a run."""
