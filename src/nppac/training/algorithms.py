"""The algorithm table of the training loop: how each name in :data:`nppac.agents.ALGOS` becomes an agent.

An entry builds the agent from a resolved :class:`~nppac.training.TrainConfig` and
says where the algorithm's use of the one shared loop differs: whether the
demonstrations are seeded into the replay buffer, how many gradient steps it takes
on them before interaction, how many uniform-random warm-up steps it starts with,
and whether it learns online at all. Add an algorithm by writing its agent in
``nppac/agents/``, naming its prior in ``ALGOS`` and adding an entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch

from nppac.agents.awac import AWAC, AWACConfig
from nppac.agents.base import Agent
from nppac.agents.bc import BC, BCConfig
from nppac.agents.kl_sac import ALGOS, KLSAC, KLSACConfig
from nppac.agents.sac_bc import SACBC, DemoSampler, SACBCConfig
from nppac.data.demos import Demonstrations

if TYPE_CHECKING:
    from nppac.training.config import TrainConfig

DemoLoader = Callable[[], Demonstrations]
"""Loads the run's demonstrations on first call (only algorithms that read them call it)."""


@dataclass(frozen=True)
class Algorithm:
    """How the shared loop runs one algorithm."""

    build: Callable[[TrainConfig, DemoLoader, torch.device], Agent]
    """The agent for a resolved config, its demonstrations on demand, and the training device."""
    seed_demos: bool = False
    """Default of ``seed_demos``: put D0 into the replay buffer before training."""
    offline_updates: int = 0
    """Default of ``offline_updates``: gradient steps on the seeded buffer before interaction."""
    warmup_steps: int = 1000
    """Default of ``warmup_steps``: uniform-random actions before the first update."""
    online_updates: bool = True
    """Whether it takes gradient steps while interacting (BC does not: it learns from D0 only)."""


def kl_sac_config(cfg: TrainConfig) -> KLSACConfig:
    """KL-SAC hyperparameters from a resolved config: with a prior for nppac / ppac-nn, without for sac, sac-bc."""
    use_prior = cfg.prior_kind is not None
    # Automatic α tracks E[log π − log π0]: −H̄ for SAC (log π0 ≡ 0), the KL target with a prior.
    target = cfg.target_kl if use_prior else -cfg.target_entropy  # type: ignore[operator]
    return KLSACConfig(gamma=cfg.gamma, tau=cfg.tau, alpha=cfg.alpha, auto_alpha=cfg.auto_alpha,  # type: ignore[arg-type]
                       penalty_target=float(target or 0.0), actor_lr=cfg.actor_lr, critic_lr=cfg.critic_lr,
                       alpha_lr=cfg.alpha_lr, use_prior=use_prior)


def _kl_sac(cfg: TrainConfig, demos: DemoLoader, device: torch.device) -> KLSAC:
    task = cfg.task_spec
    return KLSAC(task.obs_dim, task.act_dim, cfg.actor, cfg.actor_hidden, cfg.critic_hidden,  # type: ignore[arg-type]
                 kl_sac_config(cfg), device)


def _sac_bc(cfg: TrainConfig, demos: DemoLoader, device: torch.device) -> SACBC:
    d = demos()
    sampler = DemoSampler(torch.as_tensor(d.states, device=device), torch.as_tensor(d.actions, device=device))
    # As many demonstration pairs per step as replay transitions: both halves of the actor loss see equal batches.
    return SACBC(_kl_sac(cfg, demos, device), sampler,
                 SACBCConfig(bc_weight=cfg.bc_weight, demo_batch_size=cfg.batch_size))  # type: ignore[arg-type]


def _awac(cfg: TrainConfig, demos: DemoLoader, device: torch.device) -> AWAC:
    task = cfg.task_spec
    config = AWACConfig(gamma=cfg.gamma, tau=cfg.tau, actor_lr=cfg.actor_lr, critic_lr=cfg.critic_lr,
                        lam=cfg.awac_lambda, value_samples=cfg.awac_value_samples)
    return AWAC(task.obs_dim, task.act_dim, cfg.actor, cfg.actor_hidden, cfg.critic_hidden,  # type: ignore[arg-type]
                config, device)


def _bc(cfg: TrainConfig, demos: DemoLoader, device: torch.device) -> BC:
    task = cfg.task_spec
    return BC(task.obs_dim, task.act_dim, cfg.actor, cfg.actor_hidden,  # type: ignore[arg-type]
              BCConfig(lr=cfg.actor_lr), device)


ALGORITHMS: dict[str, Algorithm] = {
    "nppac": Algorithm(_kl_sac),
    "ppac-nn": Algorithm(_kl_sac),
    "sac": Algorithm(_kl_sac),
    "sac-bc": Algorithm(_sac_bc),
    # The pretrained policy explores from the first step: uniform-random actions would only dilute D0.
    "awac": Algorithm(_awac, seed_demos=True, offline_updates=25_000, warmup_steps=0),
    "bc": Algorithm(_bc, seed_demos=True, offline_updates=10_000, warmup_steps=0, online_updates=False),
}
"""Algorithm name (the keys of :data:`nppac.agents.ALGOS`) → how the loop runs it."""

