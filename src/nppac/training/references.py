"""What a learning curve should be read against: the demonstrations' return and the prior's mean action.

A curve that climbs from 458 to 2,222 on halfcheetah looks like learning until one sees that the prior's mean action
alone scores 5,558. Every run therefore writes ``references.json`` when it starts, and every learning-curve figure
draws these lines.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nppac.data.demos import Demonstrations
from nppac.data.validate import inspect_demos
from nppac.priors.base import Prior
from nppac.priors.common import Progress
from nppac.priors.metrics import mean_action
from nppac.tasks import Task
from nppac.training.envs import eval_envs, evaluate, make_env


class _MeanAction:
    """The prior's mean action as a policy with the actor's ``act`` interface."""

    def __init__(self, prior: Prior) -> None:
        self.prior = prior

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        states = torch.as_tensor(np.asarray(obs, dtype=np.float32))
        return mean_action(self.prior, states).cpu().numpy()


class UniformPolicy:
    """Uniform-random actions in [−1, 1]: the floor of the demonstration-normalized score."""

    def __init__(self, act_dim: int, seed: int) -> None:
        self.act_dim, self.rng = act_dim, np.random.default_rng(seed)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, (len(obs), self.act_dim)).astype(np.float32)


def random_policy_return(task: Task, episodes: int, horizon: int, seed: int, progress: Progress | None = None) -> float:
    """The uniform-random policy's mean return, evaluated like the agent (seeded: the same number every time).

    One environment, episodes one after another: the policy's draws then come in the same order whatever the
    evaluation's width.
    """
    env = make_env(task, horizon, seed)
    try:
        return evaluate(UniformPolicy(task.act_dim, seed), env, task, episodes, horizon, progress,
                        "reference: the uniform-random policy").mean_return
    finally:
        env.close()


def references(task: Task, demos: Demonstrations | None, prior: Prior | None, episodes: int, horizon: int,
               seed: int, progress: Progress | None = None) -> dict[str, Any]:
    """The demonstrations' mean return (and success rate), the prior's mean action evaluated like the agent, and, on
    dense-reward tasks, the uniform-random policy's return (with the demonstrations', the ends of the normalized
    score of :mod:`nppac.experiments.aggregate`)."""
    out: dict[str, Any] = {"task": task.name}
    if task.reward != "binary":
        out["random"] = {"return": random_policy_return(task, episodes, horizon, seed, progress), "episodes": episodes}
    if demos is not None:
        summary = inspect_demos(demos, task.name)
        out["demos"] = {"return": summary["return_mean"], "success": summary.get("success_rate"),
                        "trajectories": summary["n_trajectories"]}
    if prior is not None:
        envs = eval_envs(task, horizon, seed, episodes)
        try:
            evaluation = evaluate(_MeanAction(prior), envs, task, episodes, horizon, progress,
                                  "reference: the prior's mean action")
        finally:
            for env in envs:
                env.close()
        out["prior_mean_action"] = {"kind": prior.kind, "return": evaluation.mean_return,
                                    "success": evaluation.success_rate, "episodes": episodes}
    return out
