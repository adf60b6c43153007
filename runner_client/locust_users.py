"""The locustfile of ``mockcoord loadtest`` (and of a run spread over machines by hand):
``locust -f runner_client/locust_users.py DirectDownloadUser --mockcoord-plan ...``.

Runner-like users (``runner_client.load.users``) and the records the report is made from
(``runner_client.load.records``, whose listeners register on import)."""

from typing import Any

import gevent
from locust import events

from runner_client.load import records
from runner_client.load.users import DirectDownloadUser, ProxyDownloadUser, UploadUser, UrlDownloadUser

__all__ = ["DirectDownloadUser", "ProxyDownloadUser", "UploadUser", "UrlDownloadUser", "records"]


@events.init.add_listener
def _fresh_clock(**_: Any) -> None:
    """gevent's loop caches "now" between iterations; importing this file (httpx, uvloop) can
    take a second on a busy machine with the loop idle, and Locust's ``--run-time`` timer, armed
    from that stale time, would then end a short run before any user got going."""
    gevent.get_hub().loop.update_now()
