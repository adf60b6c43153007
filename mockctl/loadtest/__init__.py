"""``mockcoord loadtest``: seed a coordinator, load it with runner-like Locust users, sample its
processes, and write ``report.json`` and ``report.html``."""
