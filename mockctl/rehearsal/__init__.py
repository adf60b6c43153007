"""``mockcoord housekeeping rehearse``: a backlog built with set-based SQL, GitLab's housekeeping
cron workers run over simulated time on the mock clock, and what it drained written out.

``options`` (what was asked, checked), ``population`` (the rows, one INSERT ... SELECT a table),
``objects`` (real objects at some of the artifacts' keys), ``measure`` (what is left after a
step), ``simulate`` (the cron fire times in order), ``forecast`` (the line), ``report`` (CSV,
PNG, HTML) and ``run`` (all of it against one database and store).
"""
