"""The ``nppac`` command: thin wrappers that parse, call the library and print.

User errors (:class:`nppac.errors.NppacError`) and usage errors (a bad flag value,
a missing option) become one line on stderr, ``error: ...``, and exit code 2;
``--json`` commands print exactly one JSON document on stdout.
"""

from __future__ import annotations

import errno
import logging
import os
import sys

import typer

from nppac.cli import data, diagnose, evaluate, expert, prior, prior_combine, quickstart, suite, tasks, train
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
app.command("evaluate")(evaluate.evaluate)
app.add_typer(expert.expert_app, name="expert")
app.add_typer(expert.demos_app, name="demos")
app.add_typer(diagnose.app, name="diagnose")
app.command("compare")(diagnose.compare)
app.command("quickstart")(quickstart.quickstart)
app.add_typer(suite.app, name="suite")


class _ClosedStream:
    """Stands in for a standard stream the process was started without: writing to it fails like a closed file."""

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "stdout is closed")

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the command in ``argv`` (default: the process arguments) and exits.

    Started with stderr closed, the command still runs (its logs go nowhere); with stdout closed, a
    command that prints ends with exit code 1 when it tries.
    """
    for fd in (1, 2):  # libraries that start helpers (glfw's loader, under gymnasium) need both descriptors open
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_WRONLY)  # takes the lowest free descriptor: fd itself, not inherited
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)
            os.set_inheritable(fd, True)
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")
    if sys.stdout is None:
        sys.stdout = _ClosedStream()
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
    except OSError as err:
        if err.errno in _CLOSED_OUTPUT:  # stdout or stderr closed or gone: nothing left to tell
            _fail("", 1)
        if err.errno not in _CANNOT_WRITE:
            raise
        where = f"{err.filename}: " if err.filename else ""
        _fail(f"cannot write {where}{err.strerror or err}; free some space or choose a writable place and rerun "
              "(files are replaced whole, and a run resumes from its last good checkpoint)", 1)
    except ValueError as err:
        if "closed file" not in str(err):
            raise
        _fail("", 1)
    sys.exit(code if isinstance(code, int) else 0)


_CANNOT_WRITE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
"""Errors of writing output: refused in one line, like a user error, but with exit code 1 (not the input's fault)."""
_CLOSED_OUTPUT = {errno.EPIPE, errno.EBADF}


def _fail(message: str, code: int) -> None:
    """``error: MESSAGE`` as one line on stderr (if it can still be written), then exit with ``code``."""
    if message:
        try:
            print("error: " + " ".join(message.split()), file=sys.stderr)
        except (OSError, ValueError):
            pass
    sys.exit(code)
