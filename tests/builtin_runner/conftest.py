"""The whole stack (Workhorse in front of Rails) for the built-in runner, which talks HTTP only,
and the small recording server for wire details the coordinator cannot be made to answer."""

from tests.e2e.conftest import stack, stack_session  # noqa: F401
from tests.runner_client.conftest import failure_server_session, failures  # noqa: F401
