"""The ``nppac`` command: thin wrappers that parse, call the library and print.

User errors (:class:`nppac.errors.NppacError`) become one line on stderr and exit
code 2; ``--json`` commands print exactly one JSON document on stdout.
"""

from __future__ import annotations

import logging
import sys

import typer

from nppac.cli import data, diagnose, expert, prior, quickstart, suite, tasks, train
from nppac.errors import NppacError

app = typer.Typer(
    name="nppac",
    help="KL-regularized RL from expert demonstrations with non-parametric (GP) reference policies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("tasks")(tasks.tasks)
app.add_typer(data.app, name="data")
app.add_typer(prior.app, name="prior")
app.command("train")(train.train)
app.add_typer(expert.expert_app, name="expert")
app.add_typer(expert.demos_app, name="demos")
app.add_typer(diagnose.app, name="diagnose")
app.command("compare")(diagnose.compare)
app.command("quickstart")(quickstart.quickstart)
app.add_typer(suite.app, name="suite")


def main() -> None:
    """Console entry point."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        app()  # standalone: usage errors print one message and exit 2
    except NppacError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
