"""The mock clock held clear of real-time fire times for the tests of the cron schedule."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_TOKEN, Coordinator
from tests.housekeeping.cron_lines import QUIET_MOMENT


@pytest.fixture
async def quiet_clock(coordinator: Coordinator) -> Coordinator:
    """Set through the control plane, so worker processes read the same clock."""
    res = await coordinator.client.post(
        "/-/mock/clock", json={"set": QUIET_MOMENT}, headers={"PRIVATE-TOKEN": ADMIN_TOKEN}
    )
    assert res.status_code == 200, res.text
    return coordinator
