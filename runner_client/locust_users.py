"""The locustfile of ``mockcoord loadtest`` (and of a run spread over machines by hand):
``locust -f runner_client/locust_users.py DirectDownloadUser --mockcoord-plan ...``.

Runner-like users (``runner_client.load.users``) and the records the report is made from
(``runner_client.load.records``, whose listeners register on import)."""

from runner_client.load import records
from runner_client.load.users import DirectDownloadUser, ProxyDownloadUser, UploadUser

__all__ = ["DirectDownloadUser", "ProxyDownloadUser", "UploadUser", "records"]
