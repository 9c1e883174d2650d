"""Where a run's time goes: a run marks its phases, and a timer installed with :func:`phase_timer` times them.

Each phase of :data:`PHASES` a run enters (in this thread) runs inside ``timer(phase)``, a context manager of the
caller's; without a timer the marks do nothing. What lies outside every phase (building the agent, buffers and
environments, logging) is the rest of the run's wall time. ``benchmarks/bench_phases.py`` reads a run this way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar

PHASES = ("prior fit", "references", "π0 at demo states", "initialization", "collection", "updates", "evaluation",
          "checkpoints")
"""The phases a run marks, in the order it enters them; the initialization (the KL(π‖π0) epochs) runs inside π0 at
the demonstration states, and collection includes the replay buffer's additions."""

PhaseTimer = Callable[[str], AbstractContextManager[object]]
"""``timer(phase)``: the context a phase of :data:`PHASES` runs in."""

_timer: ContextVar[PhaseTimer | None] = ContextVar("nppac_phase_timer", default=None)


@contextmanager
def phase_timer(timer: PhaseTimer) -> Iterator[None]:
    """Within this block, every phase of a run runs inside ``timer(phase)``."""
    token = _timer.set(timer)
    try:
        yield
    finally:
        _timer.reset(token)


def timed(phase: str) -> AbstractContextManager[object]:
    """The context a run's ``phase`` runs in: the installed timer's, else one that does nothing."""
    timer = _timer.get()
    return nullcontext() if timer is None else timer(phase)
