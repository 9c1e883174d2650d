"""The one in-memory type every later stage reads: :class:`Demonstrations`, built by the readers of
:mod:`nppac.data.loaders` or from flat D4RL-style arrays (:func:`from_flat`), and checked by
:meth:`Demonstrations.checked`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from nppac.data.relabel import binary_rewards
from nppac.data.trajectories import Trajectory, TrajectorySet
from nppac.data.validate import per_step, real_array, step_flags, validate, validate_structure, where
from nppac.errors import NppacError
from nppac.tasks import get_task

logger = logging.getLogger(__name__)


@dataclass
class Demonstrations(TrajectorySet):
    """A set of trajectories with metadata (``source``, ``format``, ``task`` if known), and the constructors that
    check it: every reader's result, and what learning reads."""

    @classmethod
    def from_arrays(
        cls, observations: Any, actions: Any, rewards: Any = None, terminals: Any = None, timeouts: Any = None,
        next_observations: Any = None, *, success: Any = None, task: str | None = None,
        action_space: Any = None, clip_actions: bool = False, source: str = "<arrays>",
    ) -> Demonstrations:
        """Demonstrations from flat per-step arrays, as D4RL stores them, checked exactly as a loaded file is.

        ``rewards`` default to 0; episodes end after every terminal or time-out (0/1 flags) and at the end;
        ``next_observations`` default to the next row's (the last step of an episode then a time-out).
        ``action_space`` (a Box, or a (low, high) pair) gives the actions' units: they are rescaled to [−1, 1].
        ``task`` checks the dimensions and gives a binary task its reward, as :func:`nppac.data.load_demos` does.
        """
        if rewards is None and task is not None and get_task(task).reward == "binary":
            raise NppacError(f"{source}: field 'rewards': none given, but task {task!r} learns from its binary "
                             "reward; give rewards (0 where the goal holds after the step, else -1)")
        try:
            steps = len(actions)
        except TypeError:
            steps = 0  # not per-step: refused by name just below
        arrays: dict[str, Any] = {
            "observations": observations, "actions": actions,
            "rewards": np.zeros(steps, np.float32) if rewards is None else rewards,
            "terminals": np.zeros(steps, bool) if terminals is None else terminals,
        }
        for key, value in (("timeouts", timeouts), ("next_observations", next_observations), ("success", success)):
            if value is not None:
                arrays[key] = value
        demos = from_flat(arrays, source, "arrays")
        if action_space is not None:
            demos = validate_structure(demos, task)  # shapes and values first, as a file's are
            demos = replace(demos, trajectories=[replace(t, actions=_rescaled(t.actions, action_space, source))
                                                 for t in demos], meta={**demos.meta, "actions_rescaled": True})
        return demos.checked(task=task, clip_actions=clip_actions)

    def checked(self, task: str | None = None, clip_actions: bool = False, max_clipped: float = 1.0) -> Demonstrations:
        """A validated copy (:func:`nppac.data.validate.validate`) with a binary task's reward
        (:mod:`nppac.data.relabel`): what every reader returns, and what learning applies to a set given in memory."""
        checked = validate(self, task=task, clip_actions=clip_actions, max_clipped=max_clipped)
        return binary_rewards(checked, get_task(checked.task)) if checked.task else checked


def _rescaled(actions: Any, space: Any, source: str) -> np.ndarray:
    """``actions`` from the units of ``space`` (a Box, or a (low, high) pair) to [−1, 1], as the environments of
    every task are rescaled (gymnasium's RescaleAction)."""
    low, high = (space.low, space.high) if hasattr(space, "low") else space
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    if not (np.isfinite(low).all() and np.isfinite(high).all()) or (low >= high).any():
        raise NppacError(f"{source}: action_space bounds low={low.tolist()}, high={high.tolist()} are not a finite "
                         "box with low < high; actions can only be rescaled from one")
    values = np.asarray(actions, np.float64)
    if low.shape != (values.shape[1],) or high.shape != low.shape:
        raise NppacError(f"{source}: field 'actions': has {values.shape[1]} dims but action_space bounds have shape "
                         f"{low.shape}")
    return (2.0 * (values - low) / (high - low) - 1.0).astype(np.float32)


def from_flat(arrays: dict[str, Any], source: str, fmt: str) -> Demonstrations:
    """Flat D4RL arrays (:data:`~nppac.data.trajectories.FIELDS`, ``success`` per step) → trajectories split after
    every terminal or time-out; not yet validated."""
    for key in ("observations", "actions", "rewards", "terminals"):
        if key not in arrays:
            raise NppacError(
                f"{where(source, field=key)}: missing; D4RL files need observations, actions, rewards and terminals"
            )
    flat = {key: real_array(value, source, None, key) for key, value in arrays.items()}
    flat["rewards"] = per_step(flat["rewards"])
    for key in ("terminals", "timeouts", "success"):
        if key in flat:
            flat[key] = step_flags(flat[key], source, None, key)
    n = len(flat["actions"])
    for key, value in flat.items():
        if len(value) != n:
            raise NppacError(f"{where(source, field=key)}: has {len(value)} rows but 'actions' has {n}")
    terminals = flat["terminals"]
    timeouts = flat["timeouts"] if "timeouts" in flat else np.zeros(n, dtype=bool)
    ends = np.flatnonzero(terminals | timeouts) + 1
    if n and (len(ends) == 0 or ends[-1] != n):
        open_steps = n - (ends[-1] if len(ends) else 0)
        logger.info("%s: the last %d steps end without a terminal or time-out; treated as a time-out", source,
                    open_steps)
        timeouts = timeouts.copy()
        timeouts[-1] = True
        ends = np.append(ends, n)
    derived = "next_observations" not in flat
    trajectories = []
    for start, stop in zip(np.concatenate([[0], ends[:-1]]), ends):
        window = slice(int(start), int(stop))
        observations = flat["observations"][window]
        traj_timeouts = timeouts[window]
        if derived:
            next_observations, traj_timeouts = shifted(observations, terminals[window], traj_timeouts)
        else:
            next_observations = flat["next_observations"][window]
        infos = {"success": flat["success"][window]} if "success" in flat else {}
        trajectories.append(Trajectory(
            observations, flat["actions"][window], flat["rewards"][window], terminals[window],
            traj_timeouts, next_observations, infos,
        ))
    meta = {"derived_next_observations": True} if derived else {}
    return Demonstrations(trajectories, source=source, format=fmt, meta=meta)


def shifted(
    observations: np.ndarray, terminals: np.ndarray, timeouts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """next_observations[t] = observations[t + 1]; the last repeats itself and, unless terminal (its successor then
    unused), becomes a time-out, since its true successor is unknown."""
    if len(observations) == 0:
        return observations, timeouts
    next_observations = np.concatenate([observations[1:], observations[-1:]])
    if not len(observations) == len(terminals) == len(timeouts):
        return next_observations, timeouts  # validation reports the mismatch
    timeouts = timeouts.copy()
    timeouts[-1] = not bool(terminals[-1])
    return next_observations, timeouts
