"""What a demonstration set must satisfy, and a summary of what it holds.

:func:`validate_structure` refuses whatever would break training later, naming the file, the trajectory and the
field. :func:`validate` adds the action range: actions are meant to lie in [−1, 1] (DESIGN.md §2; every task's
environment is rescaled to it), so values beyond it are reported, and clipped on request (the environment executes
clip(a)) unless more than ``max_clipped`` of them lie outside: that many are more likely in another unit than noise.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from nppac.data.trajectories import SameSet, Trajectory, TrajectorySet
from nppac.errors import NppacError
from nppac.tasks import Task, get_task

logger = logging.getLogger(__name__)

ACTION_TOLERANCE = 1e-3
"""Actions may exceed [−1, 1] by this much (float round-off of rescaled actions) unreported."""
MAX_CLIPPED_ACTIONS = 0.1
"""Largest share of action values outside [−1, 1] that learning clips (with a warning) rather than refuses.

The published DAPG door set has 5.6 % outside (up to 1.37), which is kept; a set recorded in
the environment's own units (a box of [−2, 2], say) has far more.
"""

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


def dtype_problem(dtype: np.dtype) -> str | None:
    """Why an array of ``dtype`` cannot hold demonstration data; None for bool, integer and real floats."""
    if dtype == np.dtype(bool) or np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating):
        return None
    if np.issubdtype(dtype, np.complexfloating):
        return f"holds complex numbers (dtype {dtype}); only real values can be read"
    return f"is not numeric (dtype {dtype})"


def as_flags(value: np.ndarray, place: str) -> np.ndarray:
    """A per-step 0/1 flag (terminal, time-out, success) as bool; any other value (0.5, 7) is refused."""
    if value.ndim != 1:
        raise NppacError(f"{place}: must have shape (steps,), found {value.shape}")
    if value.dtype != bool and not np.isin(value, (0, 1)).all():
        bad = value[~np.isin(value, (0, 1))].flat[0].item()
        raise NppacError(f"{place}: holds values other than 0/1 (e.g. {bad!r}); it must be a per-step boolean flag")
    return value.astype(bool)


def real_array(value: Any, source: str, index: int | None, field: str) -> np.ndarray:
    """A real-valued array, or an error naming the field (ragged lists, objects, strings, complex, scalars)."""
    try:
        array = np.asarray(value)
    except ValueError:
        raise NppacError(f"{where(source, index, field)}: is ragged (steps of different sizes)") from None
    if array.dtype.hasobject:
        raise NppacError(f"{where(source, index, field)}: is not numeric (dtype {array.dtype}); ragged steps?")
    problem = dtype_problem(array.dtype)
    if problem is not None:
        raise NppacError(f"{where(source, index, field)}: {problem}")
    if array.ndim == 0:
        raise NppacError(f"{where(source, index, field)}: is a single value, expected one entry per step")
    return array


def per_step(array: np.ndarray) -> np.ndarray:
    """(T, 1) columns, as rlkit stores rewards and terminals, become (T,)."""
    return array[:, 0] if array.ndim == 2 and array.shape[1] == 1 else array


def step_flags(value: Any, source: str, index: int | None, field: str) -> np.ndarray:
    """A per-step 0/1 flag of any reader as bool (:func:`nppac.data.validate.as_flags`)."""
    return as_flags(per_step(real_array(value, source, index, field)), where(source, index, field))


def validate_structure(demos: SameSet, task: str | None = None) -> SameSet:
    """A checked copy with float32 arrays and bool flags; ``task`` (default ``demos.task``) checks the dimensions.
    Action values are judged by :func:`validate`."""
    task_name = task or demos.task
    spec = None
    if task_name:
        try:
            spec = get_task(task_name)
        except NppacError as err:
            if task is not None:
                raise
            # A set saved for a user's own task, read where that task is not registered.
            logger.warning("%s: saved for task %r, which is not known here (%s); its dimensions are not checked "
                           "against a task", where(demos.source), task_name, str(err).split(";")[0])
            task_name = None
    if spec is not None and task is not None and demos.task and demos.task != task:
        _check_same_environment(demos, spec)
    if len(demos) == 0:
        raise NppacError(f"{where(demos.source)}: no trajectories; the set holds no demonstrations")
    checked = [_checked_trajectory(traj, demos.source, i) for i, traj in enumerate(demos)]
    _check_consistent(checked, demos.source, spec)
    return replace(demos, trajectories=checked, task=task_name, meta=dict(demos.meta))


def _check_same_environment(demos: SameSet, spec: Task) -> None:
    """Refuse a set saved for another task whose environment is not ``spec``'s (its id up to the version): same
    dimensions do not make walker2d's demonstrations halfcheetah's. A stored task unknown here is not judged."""
    try:
        saved = get_task(str(demos.task))
    except NppacError:
        return
    family = [re.sub(r"-v\d+$", "", t.env_id.rpartition(":")[2]) for t in (saved, spec)]
    if family[0] != family[1]:
        raise NppacError(f"{where(demos.source)}: saved for task {saved.name!r} ({saved.env_id}), not for "
                         f"{spec.name!r} ({spec.env_id}); give {spec.name}'s demonstrations")


def validate(demos: SameSet, task: str | None = None, clip_actions: bool = False,
             max_clipped: float = 1.0) -> SameSet:
    """:func:`validate_structure`, then the action range: values farther than :data:`ACTION_TOLERANCE` outside
    [−1, 1] are warned about, or with ``clip_actions`` clipped, unless their share exceeds ``max_clipped``."""
    checked = validate_structure(demos, task)
    actions = np.concatenate([t.actions for t in checked])
    stats = action_range(actions)
    outside = stats["actions_outside"]
    if outside == 0:
        return checked
    place = where(checked.source)
    found = (f"{outside} action values lie outside [-1, 1] (max |a| = {stats['action_max_abs']:.4g}; "
             f"{percent(stats['actions_outside_share'])} of {actions.size})")
    if not clip_actions:
        logger.warning("%s: %s; actions should be normalized, pass clip_actions=True (CLI: --clip-actions) to clip "
                       "them", place, found)
        return checked
    if stats["actions_outside_share"] > max_clipped:
        raise NppacError(
            f"{place}: {found}, more than the {percent(max_clipped)} that learning clips: are they in the "
            "environment's own units? Normalize them to [-1, 1] (Demonstrations.from_arrays(..., "
            "action_space=env.action_space) rescales them), or, to learn from them clipped, raise "
            "max_clipped_actions (nppac train: --set max_clipped_actions=1; nppac prior fit: --max-clipped-actions 1)")
    logger.warning("%s: %s; clipped to [-1, 1], the actions the environment executes", place, found)
    clipped = [replace(t, actions=np.clip(t.actions, -1.0, 1.0)) for t in checked]
    return replace(checked, trajectories=clipped, meta={**checked.meta, "clipped_actions": outside})


def percent(share: float) -> str:
    """A share as a percentage with three significant digits: 6.67%, 0.0278%, 100%."""
    return f"{100 * share:.3g}%"


def action_range(actions: np.ndarray) -> dict[str, Any]:
    """The range of ``actions`` and how many values (and what share of them) lie beyond the task's box [−1, 1]
    by more than :data:`ACTION_TOLERANCE`."""
    outside = int(np.sum(np.abs(actions) > 1.0 + ACTION_TOLERANCE))
    return {"action_min": float(np.min(actions)), "action_max": float(np.max(actions)),
            "action_max_abs": float(np.max(np.abs(actions))), "actions_outside": outside,
            "actions_outside_share": outside / actions.size}


def _checked_trajectory(traj: Trajectory, source: str, index: int) -> Trajectory:
    """Shapes, lengths, finiteness and dtypes of one trajectory."""

    def fail(field: str, problem: str) -> NppacError:
        return NppacError(f"{where(source, index, field)}: {problem}")

    if np.ndim(traj.actions) >= 1 and len(traj.actions) == 0:
        raise fail("actions", "is empty (0 steps); drop this trajectory")
    arrays: dict[str, np.ndarray] = {}
    for name in ("actions", *_STATE_FIELDS):
        arrays[name] = _field(traj, name, 2, fail)
    steps = len(arrays["actions"])
    for name in ("actions", *_STATE_FIELDS):
        if arrays[name].shape[1] == 0:
            raise fail(name, f"has shape {arrays[name].shape}: no values per step")
    for name in ("rewards", *_STEP_BOOL_FIELDS):
        arrays[name] = _field(traj, name, 1, fail)
    for name, value in arrays.items():
        if len(value) != steps:
            raise fail(name, f"has {len(value)} steps but 'actions' has {steps}; each step needs one entry")
    if traj.next_observations.shape != traj.observations.shape:
        shapes = traj.next_observations.shape, traj.observations.shape
        raise fail("next_observations", "has shape {} but 'observations' has {}".format(*shapes))
    for name in (*_STATE_FIELDS, *_STEP_FLOAT_FIELDS):
        # Finite after the cast: 1e300 is finite in float64 and Inf in float32 (reported just below).
        with np.errstate(over="ignore"):
            arrays[name] = arrays[name].astype(np.float32)
        bad = ~np.isfinite(arrays[name])
        if bad.any():
            first = int(np.argwhere(bad)[0][0])
            raise fail(name, f"has {int(bad.sum())} NaN/Inf values (first at step {first}) once stored as float32; "
                             "repair or drop those steps")
    for name in _STEP_BOOL_FIELDS:
        arrays[name] = as_flags(arrays[name], where(source, index, name))
    infos = {}
    for key, value in traj.infos.items():
        value = np.asarray(value)
        problem = dtype_problem(value.dtype)
        if problem is not None or value.ndim == 0:
            raise fail(f"infos.{key}", problem or f"must be a per-step array, found shape {value.shape}")
        if len(value) != steps:
            raise fail(f"infos.{key}", f"has {len(value)} steps but 'actions' has {steps}")
        infos[key] = as_flags(value, where(source, index, f"infos.{key}")) if key == "success" else value
    return replace(traj, **arrays, infos=infos)


def _field(traj: Trajectory, name: str, ndim: int, fail: Callable[[str, str], NppacError]) -> np.ndarray:
    """One field of a trajectory as a real-valued array of ``ndim`` dimensions."""
    value = np.asarray(getattr(traj, name))
    problem = dtype_problem(value.dtype)
    if problem is not None:
        raise fail(name, problem)
    if value.ndim != ndim:
        want = "(steps, dims)" if ndim == 2 else "(steps,)"
        raise fail(name, f"must have shape {want}, found {value.shape}")
    return value


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


def inspect_demos(demos: TrajectorySet, task: str | None = None) -> dict[str, Any]:
    """Sizes, dimensions, episode returns (``return_std`` the population std) and action range of a validated set.

    On a binary task ``success_rate`` is the share of trajectories that succeed by DAPG's convention
    (:meth:`Task.episode_success`), read from ``infos["success"]``, else from the binary reward; ``success_from``
    says which. ``reward_relabelled``: what a set relabelled on loading took its reward from.
    """
    returns = demos.returns
    summary: dict[str, Any] = {
        "source": demos.source, "format": demos.format, "task": task or demos.task, "n_trajectories": len(demos),
        "n_transitions": demos.n_transitions, "obs_dim": demos.obs_dim, "act_dim": demos.act_dim,
        "return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
        "return_min": float(np.min(returns)), "return_max": float(np.max(returns)),
    }
    summary.update({k: v for k, v in action_range(demos.actions).items() if k != "action_max_abs"})
    if "reward_relabelled" in demos.meta:
        summary["reward_relabelled"] = demos.meta["reward_relabelled"]
    if summary["task"] is not None:
        spec = get_task(summary["task"])
        if spec.reward == "binary":
            summary.update(_success_rate(demos, spec))
    return summary


def _success_rate(demos: TrajectorySet, task: Task) -> dict[str, Any]:
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
