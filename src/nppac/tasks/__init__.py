"""What can be solved: the task registry.

Each :class:`Task` carries its environment factory (seeded, actions normalized to
[-1, 1], horizon enforced, binary sparse reward for the Adroit hand tasks) and its
default hyperparameters (DESIGN.md §3) in one place. Add a task by appending to
``_TASKS`` below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from nppac.errors import NppacError

Kernel = Literal["rbf", "matern12", "matern32", "matern52"]
ActorKind = Literal["tanh_gaussian", "gaussian_tanh_mean"]


@dataclass(frozen=True)
class TaskDefaults:
    """Published per-task hyperparameters (DESIGN.md §3 table)."""

    alpha: float
    """KL (or entropy) temperature α."""
    kernel: Kernel
    """State kernel of the GP reference policy."""
    actor: ActorKind
    """Actor head: tanh-squashed Gaussian, or Gaussian with tanh on the mean."""
    actor_hidden: tuple[int, ...]
    """Hidden layer widths of the actor."""
    batch_size: int
    """Gradient-step mini-batch size."""
    init_epochs: int
    """Epochs of KL(π‖π0) policy initialization on demonstration states."""


LOCOMOTION = TaskDefaults(0.1, "rbf", "tanh_gaussian", (256, 256), 256, 400)
HAND = TaskDefaults(0.5, "matern12", "gaussian_tanh_mean", (256, 256, 256, 256), 1024, 400)


@dataclass(frozen=True)
class Task:
    """A registered task: environment, dimensions, reward kind and defaults."""

    name: str
    env_id: str
    obs_dim: int
    act_dim: int
    horizon: int
    reward: Literal["dense", "binary"]
    defaults: TaskDefaults
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    success_steps: int | None = None
    """Binary tasks: an episode succeeds when the goal holds in more than this many steps (DAPG)."""

    @property
    def family(self) -> Literal["locomotion", "hand"]:
        return "hand" if self.reward == "binary" else "locomotion"

    @property
    def eval_episodes(self) -> int:
        """Evaluation episodes per epoch: 5000 steps in all (DESIGN.md §3)."""
        return 5000 // self.horizon

    @property
    def bundled_demos(self) -> Path | None:
        """Path of the demonstration set shipped with nppac for this task, if any."""
        path = Path(str(resources.files("nppac") / "assets" / "demos" / f"{self.name}.npz"))
        return path if path.exists() else None

    def make_env(self, seed: int | None = None) -> gym.Env:
        """Build the environment; with ``seed`` it is reset once and its action space seeded."""
        if self.reward == "binary":
            import gymnasium_robotics

            gym.register_envs(gymnasium_robotics)
        env = gym.make(self.env_id, max_episode_steps=self.horizon, **self.env_kwargs)
        low, high = env.action_space.low, env.action_space.high
        if not (np.allclose(low, -1.0) and np.allclose(high, 1.0)):
            env = gym.wrappers.RescaleAction(env, -1.0, 1.0)
        if self.reward == "binary":
            env = BinaryReward(env)
        if seed is not None:
            env.reset(seed=seed)
            env.action_space.seed(seed)
        return env

    def episode_success(self, successes: np.ndarray | list[bool]) -> bool:
        """DAPG's convention: success when the goal holds in more than ``success_steps`` steps."""
        if self.success_steps is None:
            raise NppacError(f"task {self.name!r} has no success predicate (dense reward)")
        return int(np.sum(successes)) > self.success_steps

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "env_id": self.env_id,
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "horizon": self.horizon,
            "reward": self.reward,
        }


class BinaryReward(gym.Wrapper):
    """AWAC's binary sparse reward: 0 when the success predicate holds after the step, else −1.

    The environment's own reward is kept in ``info["dense_reward"]``.
    """

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        info["dense_reward"] = float(reward)
        success = bool(info.get("success", False))
        return obs, 0.0 if success else -1.0, terminated, truncated, info


_TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("halfcheetah", "HalfCheetah-v5", 17, 6, 1000, "dense", LOCOMOTION),
        Task("hopper", "Hopper-v5", 11, 3, 1000, "dense", LOCOMOTION),
        Task("walker2d", "Walker2d-v5", 17, 6, 1000, "dense", TaskDefaults(0.2, "rbf", "tanh_gaussian", (256, 256), 256, 400)),
        Task("ant", "Ant-v5", 27, 8, 1000, "dense", LOCOMOTION,
             env_kwargs={"include_cfrc_ext_in_observation": False}),
        Task("door-binary", "AdroitHandDoor-v1", 39, 28, 200, "binary", HAND, success_steps=25),
        Task("pen-binary", "AdroitHandPen-v1", 45, 24, 200, "binary",
             TaskDefaults(0.1, "matern52", "gaussian_tanh_mean", (256, 256, 256, 256), 1024, 550),
             success_steps=20),
        Task("relocate-binary", "AdroitHandRelocate-v1", 39, 30, 200, "binary", HAND, success_steps=25),
        Task("hammer-binary", "AdroitHandHammer-v1", 46, 26, 200, "binary", HAND, success_steps=25),
    ]
}


def list_tasks() -> list[Task]:
    """All registered tasks, locomotion first."""
    return list(_TASKS.values())


def get_task(name: str) -> Task:
    """Look a task up by name; unknown names raise a one-line :class:`NppacError`."""
    try:
        return _TASKS[name]
    except KeyError:
        raise NppacError(f"unknown task {name!r}; choose one of: {', '.join(_TASKS)}") from None
