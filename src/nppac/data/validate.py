"""What a demonstration set must satisfy, and a summary of what it holds.

:func:`validate_structure` raises :class:`NppacError` for anything that would break
training later (missing or ragged fields, mismatched lengths, NaN/Inf, dimensions
that do not fit the task, empty sets); every message names the file, the
trajectory index and the field. :func:`validate` adds the action-range policy:
actions are meant to lie in [−1, 1] (DESIGN.md §2), so values beyond a small
tolerance are reported, and clipped on request. :func:`inspect_demos` summarizes a
validated set (sizes, returns, the DAPG success rate on binary tasks).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np

from nppac.data.demos import Demonstrations, Trajectory
from nppac.errors import NppacError
from nppac.tasks import Task, get_task

logger = logging.getLogger(__name__)

ACTION_TOLERANCE = 1e-3
"""Actions may exceed [−1, 1] by this much (float round-off of rescaled actions) unreported."""

_STATE_FIELDS = ("observations", "next_observations")
_STEP_FLOAT_FIELDS = ("actions", "rewards")
_STEP_BOOL_FIELDS = ("terminals", "timeouts")


def where(source: str, index: int | None = None, field: str | None = None) -> str:
    """The prefix of every data error: ``file: trajectory i: field 'name'``."""
    parts = [source or "<in-memory demonstrations>"]
    if index is not None:
        parts.append(f"trajectory {index}")
    if field is not None:
        parts.append(f"field {field!r}")
    return ": ".join(parts)


def validate_structure(demos: Demonstrations, task: str | None = None) -> Demonstrations:
    """Check every trajectory and return a copy with float32 arrays and bool flags.

    ``task`` (default ``demos.task``) adds the check that observation and action
    dimensions match the registered task. Action values are not judged here (see
    :func:`validate`).
    """
    task_name = task or demos.task
    spec = get_task(task_name) if task_name else None
    if len(demos) == 0:
        raise NppacError(f"{where(demos.source)}: no trajectories; the set holds no demonstrations")
    checked = [_checked_trajectory(traj, demos.source, i) for i, traj in enumerate(demos)]
    _check_consistent(checked, demos.source, spec)
    return replace(demos, trajectories=checked, task=task_name, meta=dict(demos.meta))


def validate(demos: Demonstrations, task: str | None = None, clip_actions: bool = False) -> Demonstrations:
    """:func:`validate_structure`, then the action range: warn about (or clip) |a| > 1.

    Actions farther than :data:`ACTION_TOLERANCE` outside [−1, 1] are logged as a
    warning naming how many values and the largest |a|; with ``clip_actions`` they
    are clipped to [−1, 1] instead. The input is never modified.
    """
    checked = validate_structure(demos, task)
    actions = np.concatenate([t.actions for t in checked])
    outside = int(np.sum(np.abs(actions) > 1.0 + ACTION_TOLERANCE))
    if outside == 0:
        return checked
    largest = float(np.max(np.abs(actions)))
    if clip_actions:
        logger.info("%s: clipped %d action values to [-1, 1] (max |a| was %.4g)", where(checked.source), outside,
                    largest)
        clipped = [replace(t, actions=np.clip(t.actions, -1.0, 1.0)) for t in checked]
        return replace(checked, trajectories=clipped, meta={**checked.meta, "clipped_actions": outside})
    logger.warning(
        "%s: %d action values lie outside [-1, 1] (max |a| = %.4g); actions should be normalized, "
        "pass clip_actions=True (CLI: --clip-actions) to clip them",
        where(checked.source), outside, largest,
    )
    return checked


def _checked_trajectory(traj: Trajectory, source: str, index: int) -> Trajectory:
    """Shapes, lengths, finiteness and dtypes of one trajectory."""

    def fail(field: str, problem: str) -> NppacError:
        return NppacError(f"{where(source, index, field)}: {problem}")

    steps = len(traj.actions)
    if steps == 0:
        raise fail("actions", "is empty (0 steps); drop this trajectory")
    arrays: dict[str, np.ndarray] = {}
    for name in (*_STATE_FIELDS, "actions"):
        value = getattr(traj, name)
        if value.ndim != 2:
            raise fail(name, f"must have shape (steps, dims), found {value.shape}")
        arrays[name] = value
    for name in ("rewards", *_STEP_BOOL_FIELDS):
        value = getattr(traj, name)
        if value.ndim != 1:
            raise fail(name, f"must have shape (steps,), found {value.shape}")
        arrays[name] = value
    for name, value in arrays.items():
        if len(value) != steps:
            raise fail(name, f"has {len(value)} steps but 'actions' has {steps}; each step needs one entry")
    if traj.next_observations.shape != traj.observations.shape:
        shapes = traj.next_observations.shape, traj.observations.shape
        raise fail("next_observations", "has shape {} but 'observations' has {}".format(*shapes))
    for name in (*_STATE_FIELDS, *_STEP_FLOAT_FIELDS):
        bad = ~np.isfinite(arrays[name])
        if bad.any():
            first = int(np.argwhere(bad)[0][0])
            raise fail(name, f"has {int(bad.sum())} NaN/Inf values (first at step {first}); repair or drop those steps")
    for name in _STEP_BOOL_FIELDS:
        if arrays[name].dtype != bool and not np.isin(arrays[name], (0, 1)).all():
            raise fail(name, "holds values other than 0/1; it must be a per-step boolean flag")
    infos = {}
    for key, value in traj.infos.items():
        value = np.asarray(value)
        if value.dtype.hasobject or value.ndim == 0:
            raise fail(f"infos.{key}", f"must be a numeric per-step array, found dtype {value.dtype}, shape {value.shape}")
        if len(value) != steps:
            raise fail(f"infos.{key}", f"has {len(value)} steps but 'actions' has {steps}")
        infos[key] = value.astype(bool) if key == "success" else value
    return Trajectory(
        observations=arrays["observations"].astype(np.float32),
        actions=arrays["actions"].astype(np.float32),
        rewards=arrays["rewards"].astype(np.float32),
        terminals=arrays["terminals"].astype(bool),
        timeouts=arrays["timeouts"].astype(bool),
        next_observations=arrays["next_observations"].astype(np.float32),
        infos=infos,
    )


def _check_consistent(trajectories: list[Trajectory], source: str, task: Task | None) -> None:
    """Every trajectory has the dimensions (and info keys) of the first, and those of the task."""
    first = trajectories[0]
    for i, traj in enumerate(trajectories):
        for name, dim in (("observations", first.observations.shape[1]), ("actions", first.actions.shape[1])):
            got = getattr(traj, name).shape[1]
            if got != dim:
                raise NppacError(f"{where(source, i, name)}: has {got} dims but trajectory 0 has {dim}")
        if sorted(traj.infos) != sorted(first.infos):
            raise NppacError(
                f"{where(source, i, 'infos')}: has keys {sorted(traj.infos)} but trajectory 0 has {sorted(first.infos)}"
            )
    if task is None:
        return
    for name, want in (("observations", task.obs_dim), ("actions", task.act_dim)):
        got = getattr(first, name).shape[1]
        if got != want:
            raise NppacError(
                f"{where(source, 0, name)}: has {got} dims but task {task.name!r} expects {want}; "
                "check --task or the file"
            )


def inspect_demos(demos: Demonstrations, task: str | None = None) -> dict[str, Any]:
    """Sizes, dimensions and episode-return statistics of a validated set.

    ``return_std`` is the population standard deviation of the episode returns. On a
    binary task (``task`` or ``demos.task``) ``success_rate`` is the fraction of
    trajectories that succeed by DAPG's convention (:meth:`Task.episode_success`),
    read from ``infos["success"]`` when present, else from the binary reward
    (r = 0 exactly when the goal holds); ``success_from`` says which.
    """
    returns = demos.returns
    summary: dict[str, Any] = {
        "source": demos.source,
        "format": demos.format,
        "task": task or demos.task,
        "n_trajectories": len(demos),
        "n_transitions": demos.n_transitions,
        "obs_dim": demos.obs_dim,
        "act_dim": demos.act_dim,
        "return_mean": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "return_min": float(np.min(returns)),
        "return_max": float(np.max(returns)),
    }
    if summary["task"] is not None:
        spec = get_task(summary["task"])
        if spec.reward == "binary":
            summary.update(_success_rate(demos, spec))
    return summary


def _success_rate(demos: Demonstrations, task: Task) -> dict[str, Any]:
    if all("success" in t.infos for t in demos):
        flags, origin = [t.infos["success"] for t in demos], "infos"
    elif all(np.isin(t.rewards, (0.0, -1.0)).all() for t in demos):
        flags, origin = [t.rewards == 0.0 for t in demos], "rewards"
    else:
        logger.warning(
            "%s: no success flags and the rewards are not binary (0/-1), so no success rate for task %r",
            where(demos.source), task.name,
        )
        return {}
    rate = float(np.mean([task.episode_success(f) for f in flags]))
    return {"success_rate": rate, "success_from": origin}
