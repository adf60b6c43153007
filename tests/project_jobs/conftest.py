"""The whole stack (Workhorse in front of Rails, S3 or local storage) for python-gitlab."""

from tests.e2e.conftest import stack, stack_session  # noqa: F401  (fixtures)
