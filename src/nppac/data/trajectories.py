"""What a demonstration set holds: :class:`Trajectory` arrays and their metadata, which every check reads.

:class:`nppac.data.demos.Demonstrations` is this data with the constructors that check it
(``from_arrays``, ``checked``); the checks themselves (:mod:`nppac.data.validate`,
:mod:`nppac.data.relabel`) read the data alone and return a copy of the same class.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

FIELDS = ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations")


@dataclass
class Trajectory:
    """One episode of expert behaviour, float32 arrays of equal length T."""

    observations: np.ndarray
    """(T, obs_dim) states s_t."""
    actions: np.ndarray
    """(T, act_dim) actions a_t, normalized to [-1, 1]."""
    rewards: np.ndarray
    """(T,) rewards r_t."""
    terminals: np.ndarray
    """(T,) bool: the episode ended in a true terminal state after step t."""
    timeouts: np.ndarray
    """(T,) bool: the episode was cut by a time limit after step t (not terminal)."""
    next_observations: np.ndarray
    """(T, obs_dim) states s_{t+1}."""
    infos: dict[str, np.ndarray] = field(default_factory=dict)
    """Optional per-step extras, e.g. ``success`` for hand tasks."""

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def episode_return(self) -> float:
        return float(np.sum(self.rewards))


@dataclass
class TrajectorySet:
    """A set of trajectories with metadata (``source``, ``format``, ``task`` if known)."""

    trajectories: list[Trajectory]
    source: str = ""
    format: str = ""
    task: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Trajectory]:
        return iter(self.trajectories)

    def __len__(self) -> int:
        return len(self.trajectories)

    @property
    def n_transitions(self) -> int:
        return sum(len(t) for t in self.trajectories)

    @property
    def obs_dim(self) -> int:
        return int(self.trajectories[0].observations.shape[1])

    @property
    def act_dim(self) -> int:
        return int(self.trajectories[0].actions.shape[1])

    @property
    def returns(self) -> np.ndarray:
        return np.array([t.episode_return for t in self.trajectories], dtype=np.float64)

    def flat(self) -> dict[str, np.ndarray]:
        """All transitions concatenated: one array per field in :data:`FIELDS`."""
        return {k: np.concatenate([getattr(t, k) for t in self.trajectories]) for k in FIELDS}

    @property
    def states(self) -> np.ndarray:
        """(n, obs_dim) float32: every demonstrated state s_i (the prior's inputs)."""
        return np.concatenate([t.observations for t in self.trajectories]).astype(np.float32)

    @property
    def actions(self) -> np.ndarray:
        """(n, act_dim) float32: every demonstrated action a_i (the prior's targets)."""
        return np.concatenate([t.actions for t in self.trajectories]).astype(np.float32)


SameSet = TypeVar("SameSet", bound=TrajectorySet)
"""A check's input and output: a copy of the set it was given, of the same class."""
