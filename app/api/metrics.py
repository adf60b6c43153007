"""``GET /-/metrics``: GitLab's ``MetricsController``, Prometheus' text format.

Only for clients in ``monitoring.ip_whitelist`` (``Settings.monitoring_ip_whitelist``,
GitLab's default loopback); anyone else gets 404, as GitLab answers. The client is the peer,
or behind a loopback proxy the last address of ``X-Forwarded-For`` that is not loopback, as
Rails' ``remote_ip`` picks it.
"""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.errors import not_found
from app.lib import database_metrics
from app.state import AppState, get_state

router = APIRouter()


def client_ip(request: Request) -> str:
    peer = request.client.host if request.client else ""
    try:
        behind_proxy = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return peer
    if behind_proxy:
        for hop in reversed([h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]):
            try:
                if not ipaddress.ip_address(hop).is_loopback:
                    return hop
            except ValueError:
                return hop
    return peer


def whitelisted(ip: str, networks: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


@router.get("/-/metrics")
async def metrics(request: Request, state: AppState = Depends(get_state)) -> Response:
    if not whitelisted(client_ip(request), state.settings.monitoring_ip_whitelist):
        raise not_found()
    return Response(await database_metrics.exposition(state.db), media_type=CONTENT_TYPE_LATEST)
