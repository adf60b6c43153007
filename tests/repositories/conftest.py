"""Repositories do not depend on where artifacts are stored: test modules here pin the
``rails`` fixture to local storage (``LOCAL_ONLY``), and share the end-to-end Workhorse stack."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import stack, stack_session  # noqa: F401  (fixtures shared with e2e)

LOCAL_ONLY = pytest.mark.parametrize("rails", ["local"], indirect=True, scope="session")
