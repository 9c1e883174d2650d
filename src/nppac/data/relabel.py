"""The binary sparse reward of the hand tasks, written into demonstrations that carry another.

The hand tasks reward r_t = 0 when the goal holds after step t, else −1 (DESIGN.md §4). Human demonstrations often
carry another reward (the DAPG door set's dense reward), and a buffer seeded with them would mix two reward scales.
:func:`binary_rewards` keeps rewards already binary; else it relabels them from the task's predicate on the next
observation, else from per-step success flags (``infos["success"]``), else refuses the set.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from nppac.data.trajectories import SameSet
from nppac.data.validate import where
from nppac.errors import NppacError
from nppac.tasks import Task

logger = logging.getLogger(__name__)

SUCCESS_REWARD, FAILURE_REWARD = 0.0, -1.0
"""The binary sparse reward (AWAC): after a step the goal holds, or it does not."""
FROM_INFOS = "per-step success flags (infos['success'])"
"""``meta["reward_relabelled"]`` of a set relabelled from its success flags."""


def is_binary(rewards: np.ndarray) -> bool:
    """Whether every reward is the binary sparse reward's 0 or −1."""
    return bool(np.isin(rewards, (SUCCESS_REWARD, FAILURE_REWARD)).all())


def as_binary_reward(rewards: np.ndarray, name: str) -> np.ndarray:
    """Rewards labelled 0 (goal) / −1 (not) rewritten with the values of the binary reward ``name``
    (:data:`nppac.tasks.BINARY_REWARDS`): AWAC's labels for a run on N-PPAC's 0/1 protocol."""
    from nppac.tasks import BINARY_REWARDS

    success, failure = BINARY_REWARDS[name]
    if (success, failure) == (SUCCESS_REWARD, FAILURE_REWARD):
        return rewards
    if not is_binary(rewards):
        raise NppacError("rewards to relabel are not the binary reward's 0 / −1")
    return np.where(rewards == SUCCESS_REWARD, success, failure).astype(np.float32)


def binary_rewards(demos: SameSet, task: Task) -> SameSet:
    """``demos`` with the binary reward of ``task`` (module docs), ``infos["success"]`` and
    ``meta["reward_relabelled"]`` (what was read); dense tasks and binary rewards come back unchanged."""
    if task.reward != "binary" or all(is_binary(t.rewards) for t in demos):
        return demos
    if task.success_from_obs is not None:
        successes = [task.success_from_obs.holds(t.next_observations) for t in demos]
        origin = task.success_from_obs.description
    elif all("success" in t.infos for t in demos):
        successes = [t.infos["success"] for t in demos]
        origin = FROM_INFOS
    else:
        raise NppacError(
            f"{where(demos.source)}: the rewards are not binary (0/−1) and neither the observations "
            f"(task {task.name!r} has no success predicate on them) nor per-step success flags say when the "
            "goal holds; relabel the rewards to 0 (goal holds after the step) / −1 first, or load without a task"
        )
    trajectories = [
        replace(t, rewards=np.where(success, SUCCESS_REWARD, FAILURE_REWARD).astype(np.float32),
                infos={**t.infos, "success": np.asarray(success, dtype=bool)})
        for t, success in zip(demos, successes)
    ]
    reached = sum(bool(np.any(s)) for s in successes)
    logger.info("%s: rewards relabelled to the binary reward of %s from %s; %d of %d trajectories reach the goal",
                where(demos.source), task.name, origin, reached, len(demos))
    return replace(demos, trajectories=trajectories, meta={**demos.meta, "reward_relabelled": origin})
