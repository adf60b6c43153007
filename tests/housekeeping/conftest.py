"""The mock clock held clear of real-time fire times for the tests of the cron schedule."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_TOKEN, Coordinator

QUIET_MOMENT = "2026-01-01T00:00:01Z"
"""A second past midnight, so every cron line these tests use has just fired: real time reaches
the next fire time a minute later at the soonest (two hours for the every-two-hours lines), at
whatever hour the suite runs. On the real clock a fire time could pass mid-test and add a run."""


@pytest.fixture
async def quiet_clock(coordinator: Coordinator) -> Coordinator:
    """Set through the control plane, so worker processes read the same clock."""
    res = await coordinator.client.post(
        "/-/mock/clock", json={"set": QUIET_MOMENT}, headers={"PRIVATE-TOKEN": ADMIN_TOKEN}
    )
    assert res.status_code == 200, res.text
    return coordinator
