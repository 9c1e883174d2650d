"""User-facing errors.

An :class:`NppacError` is a mistake the user can fix (a bad file, a wrong flag, a
mismatched dimension). The CLI prints its message as one line on stderr and exits
with code 2, without a traceback. Library callers catch it like any exception.
"""


class NppacError(Exception):
    """A user error: the message names the file/field/value and what to do."""


class NonFiniteError(NppacError):
    """A loss or gradient became NaN/Inf during training (names the offending term)."""


class DivergedError(NonFiniteError):
    """Training diverged: a loss or gradient of a gradient step became NaN/Inf.

    The run's last good checkpoint is kept. A suite records such a run as *diverged*, an
    outcome of the algorithm, not a failure to retry.
    """
