"""The ``nppac`` command: thin wrappers that parse, call the library and print.

User errors (:class:`nppac.errors.NppacError`) and usage errors (a bad flag value,
a missing option) become one line on stderr, ``error: ...``, and exit code 2;
``--json`` commands print exactly one JSON document on stdout.
"""

from __future__ import annotations

import logging
import sys

import typer

from nppac.cli import data, diagnose, expert, prior, prior_combine, quickstart, suite, tasks, train
from nppac.errors import NppacError

# The exceptions of the click that parses our arguments: click itself, or the copy newer
# typer releases ship inside typer; typer.BadParameter is one of them in either case.
_parser = sys.modules[typer.BadParameter.__module__]
_NoArgsIsHelp = getattr(_parser, "NoArgsIsHelpError", ())  # click < 8.2 exits 0 after the help instead

app = typer.Typer(
    name="nppac",
    help="KL-regularized RL from expert demonstrations with non-parametric (GP) reference policies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("tasks")(tasks.tasks)
app.add_typer(data.app, name="data")
prior.app.command("combine")(prior_combine.combine)
app.add_typer(prior.app, name="prior")
app.command("train")(train.train)
app.add_typer(expert.expert_app, name="expert")
app.add_typer(expert.demos_app, name="demos")
app.add_typer(diagnose.app, name="diagnose")
app.command("compare")(diagnose.compare)
app.command("quickstart")(quickstart.quickstart)
app.add_typer(suite.app, name="suite")


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the command in ``argv`` (default: the process arguments) and exits."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        # Not standalone: click's own error printing (a framed box under rich) is replaced by one line.
        code = app(args=argv, prog_name="nppac", standalone_mode=False)
    except _NoArgsIsHelp as err:  # a group called without a command: its help, already
        if err.format_message():  # printed by rich, or returned here by plain click
            print(err.format_message(), file=sys.stderr)
        sys.exit(err.exit_code)
    except _parser.UsageError as err:
        hint = f" (see '{err.ctx.command_path} --help')" if err.ctx is not None else ""
        _fail(f"{err.format_message()}{hint}", err.exit_code)
    except _parser.ClickException as err:
        _fail(err.format_message(), err.exit_code)
    except typer.Abort:
        _fail("aborted", 1)
    except NppacError as err:
        _fail(str(err), 2)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    """``error: MESSAGE`` as one line on stderr, then exit with ``code``."""
    print("error: " + " ".join(message.split()), file=sys.stderr)
    sys.exit(code)
