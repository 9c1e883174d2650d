"""BC: behavioural cloning, the "prior's mean action" baseline of DESIGN.md §6.

The actor is fitted to the demonstrations by maximum likelihood, exactly as the NN
prior is, but with the actor's own head, and its mean action is the policy:

    actor loss:  −E_{(s,a)~D0} [ log π(a|s) ]

The training loop runs these steps only before interaction, on the replay buffer
seeded with D0 (``offline_updates``), and none online: BC never learns from its own
rollouts, it is evaluated after every epoch like the other algorithms so that its
curve sits on the same axes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from nppac.agents.base import Metrics, adam, optimizer_step
from nppac.agents.networks import Actor, ActorKind
from nppac.data.replay import Batch

BC_METRIC_TERMS: dict[str, str] = {
    "bc_log_likelihood": "behaviour-cloning log-likelihood log π(a|s) of demonstration actions",
    "action_mse": "mean-action error (μ(s) − a)²",
    "policy_grad_norm": "policy gradient",
}
"""What one BC step reports, in the order it computes them, with human names for the non-finite message."""


@dataclass(frozen=True)
class BCConfig:
    """Hyperparameters of behavioural cloning."""

    lr: float = 3e-4
    """Adam learning rate of the actor."""


def bc_loss(actor: Actor, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """−E log π(a|s) (for the tanh head the actions are clamped to ±(1 − 1e-6) before atanh)."""
    return -actor.log_prob(obs, action).mean()


class BC:
    """An actor and its optimizer, trained by :func:`bc_update`."""

    metric_terms = BC_METRIC_TERMS

    def __init__(self, obs_dim: int, act_dim: int, actor_kind: ActorKind, actor_hidden: tuple[int, ...],
                 config: BCConfig, device: str | torch.device = "cpu") -> None:
        self.config = config
        self.device = torch.device(device)
        self.actor = Actor(obs_dim, act_dim, actor_hidden, actor_kind).to(self.device)
        self.actor_opt = adam(self.actor.parameters(), config.lr, self.device)

    def update(self, batch: Batch) -> Metrics:
        """One maximum-likelihood step on the (s, a) of ``batch``; its :data:`BC_METRIC_TERMS` by name."""
        return bc_update(self, batch)

    def state_dict(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "actor_opt": self.actor_opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.actor_opt.load_state_dict(state["actor_opt"])


def bc_update(agent: BC, batch: Batch) -> Metrics:
    """One gradient step of −E log π(a|s) on the batch's (s, a); no host syncs."""
    loss = bc_loss(agent.actor, batch.obs, batch.action)
    with torch.no_grad():
        action_mse = (agent.actor.deterministic(batch.obs) - batch.action).pow(2).mean()
    policy_grad_norm = optimizer_step(agent.actor_opt, loss, agent.actor.parameters())
    return {"bc_log_likelihood": -loss.detach(), "action_mse": action_mse, "policy_grad_norm": policy_grad_norm}
