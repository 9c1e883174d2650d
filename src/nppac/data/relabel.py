"""The binary sparse reward of the hand tasks, written into demonstrations that carry another.

The hand tasks reward r_t = 0 when the task's success predicate holds after step t,
else −1 (DESIGN.md §4); the environment gives exactly that online. Human
demonstrations often carry another reward (the DAPG door set: the dense door reward,
returns near 800), and a replay buffer seeded with them would mix two reward scales.
:func:`binary_rewards` makes them agree, for demonstrations loaded for a binary task:

1. rewards already binary (every r in {0, −1}) are the set's own labels and are kept;
2. else the rewards are relabelled from the task's predicate on the next observation
   (:attr:`nppac.tasks.Task.success_from_obs`), where the observation carries it;
3. else from per-step success flags (``infos["success"]``), where the set has them;
4. else the set is refused: no label could be trusted.

Relabelled sets get ``infos["success"]`` from the same predicate and
``meta["reward_relabelled"]`` saying what was read.
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
    """``demos`` with the binary reward of ``task`` (a validated set; module docs for the rules).

    Dense tasks and sets whose rewards are already binary come back unchanged.
    """
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
