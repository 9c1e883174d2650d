"""A run's interaction with its environments: the capped environment, the collector, the deterministic evaluation."""

from __future__ import annotations

import math
from typing import Protocol

import gymnasium as gym
import numpy as np
import torch

from nppac.agents.networks import Actor
from nppac.tasks import BinaryRewardName, Task


class Policy(Protocol):
    """Anything evaluated like the agent: a deterministic action for one observation."""

    def act(self, obs: np.ndarray) -> np.ndarray: ...


def make_env(task: Task, horizon: int, seed: int, binary_reward: BinaryRewardName | None = None) -> gym.Env:
    """The task's environment, with the episode cap lowered to ``horizon`` when that is shorter.

    ``binary_reward`` names a hand task's reward values (default AWAC's −1/0, the evaluation's).
    """
    env = task.make_env(seed=seed, binary_reward=binary_reward or "minus_one_zero")
    if horizon < task.horizon:
        env = gym.wrappers.TimeLimit(env, max_episode_steps=horizon)
    return env


class Collector:
    """Steps the training environment across epochs, keeping the current episode between calls."""

    def __init__(self, env: gym.Env, act_dim: int, device: torch.device, timeout_terminal: bool = False) -> None:
        self.env, self.act_dim, self.device = env, act_dim, device
        self.timeout_terminal = timeout_terminal
        self.obs: np.ndarray | None = None
        self.episode_return = 0.0
        self.last_return = math.nan

    def collect(self, actor: Actor, n_steps: int, n_uniform: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """n_steps transitions: the first ``n_uniform`` with uniform-random actions, the rest sampled from π."""
        obs_buf, act_buf, rew_buf, next_buf, done_buf = [], [], [], [], []
        for t in range(n_steps):
            if self.obs is None:
                self.obs, _ = self.env.reset()
                self.episode_return = 0.0
            if t < n_uniform:
                action = rng.uniform(-1.0, 1.0, self.act_dim).astype(np.float32)
            else:
                with torch.no_grad():
                    obs_t = torch.as_tensor(self.obs, dtype=torch.float32, device=self.device).unsqueeze(0)
                    action = actor.sample(obs_t)[0][0].cpu().numpy()
                # The Gaussian head's samples can leave [−1, 1]: store what the environment executes.
                action = np.clip(action, -1.0, 1.0)
            next_obs, reward, terminated, truncated, _ = self.env.step(action)
            obs_buf.append(self.obs)
            act_buf.append(action)
            rew_buf.append(reward)
            next_buf.append(next_obs)
            # Bootstrap through time-limit truncation (only a true terminal state ends the return), unless the
            # run reproduces the published code, which stored the time limit as a terminal.
            done_buf.append(terminated or (truncated and self.timeout_terminal))
            self.episode_return += float(reward)
            self.obs = next_obs
            if terminated or truncated:
                self.last_return = self.episode_return
                self.obs = None
        return {"obs": np.asarray(obs_buf, np.float32), "action": np.asarray(act_buf, np.float32),
                "reward": np.asarray(rew_buf, np.float32), "next_obs": np.asarray(next_buf, np.float32),
                "done": np.asarray(done_buf, np.float32)}


def evaluate(policy: Policy, env: gym.Env, task: Task, episodes: int, horizon: int) -> tuple[float, float | None]:
    """Mean return of the deterministic policy (the mean action) and, for binary tasks, the success rate."""
    returns, successes = [], []
    for _ in range(episodes):
        obs, _ = env.reset()
        total, flags = 0.0, []
        for _ in range(horizon):
            obs, reward, terminated, truncated, info = env.step(policy.act(obs))
            total += float(reward)
            flags.append(bool(info.get("success", False)))
            if terminated or truncated:
                break
        returns.append(total)
        if task.reward == "binary":
            successes.append(task.episode_success(flags))
    return float(np.mean(returns)), (float(np.mean(successes)) if task.reward == "binary" else None)
