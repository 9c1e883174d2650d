"""A run's interaction with its environments: the capped environment, the collector, the deterministic evaluation."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import gymnasium as gym
import numpy as np
import torch

from nppac.priors.common import Progress
from nppac.tasks import BinaryRewardName, Task

EVAL_WIDTH = 10
"""Evaluation episodes stepped side by side at most (an Adroit environment holds about 8 MB)."""
EVAL_SEED_OFFSET = 10_000
"""A run's evaluation environment is seeded with its seed plus this (its training environment with the seed)."""


class Policy(Protocol):
    """Anything evaluated like the agent: deterministic actions (n, act_dim) for observations (n, obs_dim)."""

    def act(self, obs: np.ndarray) -> np.ndarray: ...


class Explorer(Protocol):
    """Anything that collects like the agent's actor: ``sample(obs)[0]`` is a batch of actions for a batch of states,
    on the training device."""

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]: ...


def make_env(task: Task, horizon: int, seed: int | None,
             binary_reward: BinaryRewardName | None = None, render_mode: str | None = None) -> gym.Env:
    """The task's environment, with the episode cap lowered to ``horizon`` when that is shorter.

    ``binary_reward`` names a hand task's reward values (default AWAC's −1/0, the evaluation's).
    """
    env = task.make_env(seed=seed, binary_reward=binary_reward or "minus_one_zero", render_mode=render_mode)
    if horizon < task.horizon:
        env = gym.wrappers.TimeLimit(env, max_episode_steps=horizon)
    return env


def eval_envs(task: Task, horizon: int, seed: int, episodes: int) -> list[gym.Env]:
    """The evaluation environment (seeded) and the copies that let up to :data:`EVAL_WIDTH` of its ``episodes`` run
    side by side (:func:`evaluate` seeds each of their episodes from the first one's generator)."""
    width = max(1, min(episodes, EVAL_WIDTH))
    return [make_env(task, horizon, seed), *(make_env(task, horizon, None) for _ in range(width - 1))]


class Collector:
    """Steps the training environment across epochs, keeping the current episode between calls."""

    def __init__(self, env: gym.Env, act_dim: int, device: torch.device, timeout_terminal: bool = False) -> None:
        self.env, self.act_dim, self.device = env, act_dim, device
        self.timeout_terminal = timeout_terminal
        self.obs: np.ndarray | None = None
        self.episode_return = 0.0
        self.last_return = math.nan

    def collect(self, actor: Explorer, n_steps: int, n_uniform: int, rng: np.random.Generator,
                on_step: Callable[[int], bool | None] | None = None) -> dict[str, np.ndarray]:
        """n_steps transitions: the first ``n_uniform`` with uniform-random actions, the rest sampled from ``actor``
        (π, or the run's acting rule). ``on_step(t)`` is called after the t-th step; False ends the collection there
        (fewer transitions come back)."""
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
            if on_step is not None and on_step(t + 1) is False:
                break
        return {"obs": np.asarray(obs_buf, np.float32), "action": np.asarray(act_buf, np.float32),
                "reward": np.asarray(rew_buf, np.float32), "next_obs": np.asarray(next_buf, np.float32),
                "done": np.asarray(done_buf, np.float32)}


@dataclass(frozen=True)
class Evaluation:
    """Per-episode results of a deterministic evaluation, in episode order."""

    returns: list[float]
    successes: list[bool] | None
    """Binary tasks: whether each episode succeeded (the task's criterion); None for dense rewards."""

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def min_return(self) -> float:
        """The worst episode's return: a mean that falls because one episode fails outright shows here."""
        return float(np.min(self.returns))

    @property
    def success_rate(self) -> float | None:
        return None if self.successes is None else float(np.mean(self.successes))


EVAL_PROGRESS_EVERY = 100
"""Steps of an evaluation between its ``progress`` calls."""


def evaluate(policy: Policy, envs: gym.Env | Sequence[gym.Env], task: Task, episodes: int, horizon: int,
             progress: Progress | None = None, stage: str = "evaluation") -> Evaluation:
    """``episodes`` episodes of the deterministic policy (the mean action), stepped side by side in ``envs``.

    The episodes are exactly those the first environment alone would give one after another: its generator carries
    the evaluation's random stream, and episode i starts from the state that i resets of it alone would have left
    (the tasks draw random numbers only at a reset, so stepping the others in between changes nothing). Each step
    asks the policy once, for all running episodes; the first environment's generator ends where the
    one-after-another evaluation leaves it, so a checkpoint written afterwards resumes the same stream.
    ``progress(stage, step, total)`` counts steps of the horizon, ``horizon`` per group of episodes stepped side by
    side.
    """
    envs = [envs] if isinstance(envs, gym.Env) else list(envs)
    total = horizon * math.ceil(episodes / len(envs))
    stream = envs[0].unwrapped.np_random.bit_generator.state
    returns: list[float] = []
    successes: list[bool] = []
    for first in range(0, episodes, len(envs)):
        wave = envs[:min(len(envs), episodes - first)]
        obs = []
        for env in wave:
            env.unwrapped.np_random.bit_generator.state = stream
            obs.append(env.reset()[0])
            stream = env.unwrapped.np_random.bit_generator.state
        totals = [0.0] * len(wave)
        flags: list[list[bool]] = [[] for _ in wave]
        running = list(range(len(wave)))
        for t in range(horizon):
            if not running:
                break
            if progress is not None and t % EVAL_PROGRESS_EVERY == 0:
                progress(stage, first // len(envs) * horizon + t, total)
            actions = policy.act(np.stack([obs[i] for i in running]))
            still = []
            for i, action in zip(running, actions):
                obs[i], reward, terminated, truncated, info = wave[i].step(action)
                totals[i] += float(reward)
                flags[i].append(bool(info.get("success", False)))
                if not (terminated or truncated):
                    still.append(i)
            running = still
        returns.extend(totals)
        if task.reward == "binary":
            successes.extend(task.episode_success(f) for f in flags)
    envs[0].unwrapped.np_random.bit_generator.state = stream
    if progress is not None:
        progress(stage, total, total)
    return Evaluation(returns, successes if task.reward == "binary" else None)
