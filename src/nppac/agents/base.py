"""What the training loop needs from an agent, and the actor-critic plumbing the agents share."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from nppac.agents.networks import Actor, ActorKind, TwinCritic
from nppac.data.replay import Batch

Metrics = dict[str, torch.Tensor]
"""What one gradient step reports: metric name → scalar device tensor, in the order it computes them."""


class Acting(Protocol):
    """How a run acts: it collects with ``sample`` (``sample(obs)[0]``, actions on the training device) and is
    evaluated by ``act`` (deterministic actions (n, act_dim) for observations (n, obs_dim)). A rule other than the
    actor's own (the second actor) reports what it did as progress columns (``columns``), read once per row."""

    columns: tuple[str, ...]

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]: ...

    def act(self, obs: np.ndarray) -> np.ndarray: ...

    def read(self) -> dict[str, float | None]:
        """The ``columns``' values since the last read (None: nothing to report); resets."""
        ...


class ActorActing:
    """The agent's actor as it is: its samples collect, its mean action is evaluated; nothing to report."""

    columns: tuple[str, ...] = ()

    def __init__(self, actor: Actor) -> None:
        self.actor = actor

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.actor.sample(obs)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.actor.act(obs)

    def read(self) -> dict[str, float | None]:
        return {}


class Agent(Protocol):
    """An algorithm's networks and optimizers, seen from the shared training loop.

    ``update`` returns its metrics by name as scalar tensors on ``device`` (no host syncs); ``metric_terms`` names
    them in the same order, each with a human description for the message when it becomes non-finite. The
    ``state_dict`` holds whatever the agent keeps (key ``actor``: the actor's weights). The hooks ``acting`` and
    ``before_online`` are where an algorithm differs from the loop's defaults (:class:`AgentHooks`).
    """

    metric_terms: dict[str, str]

    @property
    def actor(self) -> Actor: ...

    @property
    def device(self) -> torch.device: ...

    def update(self, batch: Batch) -> Metrics:
        """One gradient step; its metrics by name."""

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint needs to continue training (key ``actor``: the actor's weights)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""

    def acting(self) -> Acting:
        """How the run collects and is evaluated (asked once per run)."""

    def before_online(self, init_metrics: Mapping[str, float]) -> None:
        """Called once in a fresh run, after the policy was initialized toward π0 (or loaded) and before its first
        evaluation, with what the initialization measured (``init_kl``, …); a resumed run restores instead."""


class AgentHooks:
    """The defaults of the :class:`Agent` hooks (act with the actor itself; keep nothing of the initialization), and
    its ``state_dict``: the state of each part named in ``saved`` that the agent has (not None), in that order."""

    actor: Actor
    saved: tuple[str, ...] = ("actor", "actor_opt")

    def acting(self) -> Acting:
        return ActorActing(self.actor)

    def before_online(self, init_metrics: Mapping[str, float]) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        parts = ((name, getattr(self, name)) for name in self.saved)
        return {name: part.detach().clone() if isinstance(part, torch.Tensor) else part.state_dict()
                for name, part in parts if part is not None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.saved:
            part = getattr(self, name)
            if isinstance(part, torch.Tensor):
                with torch.no_grad():
                    part.copy_(state[name])
            elif part is not None:
                part.load_state_dict(state[name])


class ActorCritic(AgentHooks):
    """An actor, twin critics with Polyak-averaged targets, and their Adam optimizers.

    The part KL-SAC (nppac / ppac-nn / sac) and AWAC share; each adds its own update.
    """

    saved: tuple[str, ...] = ("actor", "critic", "critic_target", "actor_opt", "critic_opt")

    def __init__(self, obs_dim: int, act_dim: int, actor_kind: ActorKind, actor_hidden: tuple[int, ...],
                 critic_hidden: tuple[int, ...], actor_lr: float, critic_lr: float,
                 device: str | torch.device = "cpu", *, log_std_range: tuple[float, float] | None = None,
                 q_bounds: tuple[float, float] | None = None, actor_weight_decay: float = 0.0,
                 critic_layernorm: bool = False) -> None:
        self.device = torch.device(device)
        self.actor = Actor(obs_dim, act_dim, actor_hidden, actor_kind, log_std_range).to(self.device)
        self.critic = TwinCritic(obs_dim, act_dim, critic_hidden, bounds=q_bounds,
                                 layernorm=critic_layernorm).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = adam(self.actor.parameters(), actor_lr, self.device, weight_decay=actor_weight_decay)
        self.critic_opt = adam(self.critic.parameters(), critic_lr, self.device)

    def critic_regression(self, batch: Batch, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Regress Q_1, Q_2 on the (fixed) target y and step the critic optimizer.

        Returns (Q(s, a) before the step, the loss Σ_k E (Q_k(s, a) − y)², the critic gradient norm).
        """
        q = self.critic(batch.obs, batch.action)
        critic_loss = (q - y).pow(2).mean(-1).sum()
        critic_grad_norm = optimizer_step(self.critic_opt, critic_loss, self.critic.parameters())
        return q.detach(), critic_loss.detach(), critic_grad_norm


def adam(params: Iterable[torch.Tensor], lr: float, device: torch.device,
         weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam: fused on the CPU (the same result, faster), with its step counter on the device on CUDA.

    The CUDA variant is ``capturable``: no host syncs, so the step can sit in a CUDA graph.
    """
    if device.type == "cuda":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, capturable=True)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                   params: Iterable[nn.Parameter]) -> torch.Tensor:
    """Backpropagate ``loss``, step ``optimizer``; returns the gradient norm of ``params`` (a device tensor)."""
    params = list(params)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    optimizer.step()
    return norm


@torch.no_grad()
def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging of target networks: θ̄ ← (1 − τ) θ̄ + τ θ."""
    for target_param, param in zip(target.parameters(), source.parameters()):
        target_param.lerp_(param, tau)
