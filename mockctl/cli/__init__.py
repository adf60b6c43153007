"""The ``mockcoord`` command: the top of the house, one module per command group.

Each group imports the application lazily, inside its commands, so ``mockcoord --help``
answers at once.
"""

from __future__ import annotations

import sys

import typer

from mockctl.cli import admin, dbconsole, flows, housekeeping, instance, loadtest, rake, servers, troubleshoot
from runner_client import cli as runner_cli

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="A GitLab job-artifact coordinator for tests.")
cli.command()(servers.serve)
cli.command()(servers.rails)
cli.command()(servers.workhorse)
cli.command()(servers.worker)
# gitlab-runner's artifact helpers, from the runner side of the wire (runner_client).
cli.command("artifacts-uploader")(runner_cli.artifacts_uploader)
cli.command("artifacts-downloader")(runner_cli.artifacts_downloader)
# The built-in runner: `mockcoord runner register|run` (runner_client.runner).
cli.add_typer(runner_cli.runner_app, name="runner", help="A gitlab-runner work-alike: register, run (shell executor).")
cli.add_typer(flows.app, name="flows")
cli.add_typer(housekeeping.app, name="housekeeping")
cli.command()(troubleshoot.troubleshoot)
# Runner-like Locust load and its report (mockctl.loadtest, docs/load-testing.md).
cli.command()(loadtest.loadtest)
cli.command()(instance.seed)
cli.command()(instance.reset)
# The administrator's tools of GitLab's job-artifacts troubleshooting page (docs/admin.md):
# GitLab's rake tasks (gitlab-rake), gitlab-psql, the console snippets.
cli.command(context_settings={"allow_interspersed_args": True})(rake.rake)
cli.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(dbconsole.dbconsole)
cli.add_typer(admin.app, name="admin")


def main() -> None:
    sys.exit(cli())
