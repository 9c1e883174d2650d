"""BC: behavioural cloning, the "prior's mean action" baseline of DESIGN.md §6.

The actor is fitted to the demonstrations by maximum likelihood, exactly as the NN prior is, but with the actor's own
head, and its mean action is the policy:

    actor loss:  −E_{(s,a)~D0} [ log π(a|s) ]

The policy's log σ is one learned value per action dimension, independent of the state, in [−6, 0] (the policy of the
public AWAC code, whose BC pretraining uses it). With a state-dependent σ(s) maximum likelihood is unstable: σ
collapses on the demonstrations it fits and the others' log-likelihood and gradients explode (on pen, a mean
log-likelihood of −3.5·10⁶ and gradient norms of 10⁹ over the first 5,000 steps, and a mean action 0.18 off in
squared error); with a shared σ the mean's loss is a scaled squared error. ``log_std_range=None`` gives the
state-dependent head.

The training loop runs these steps only before interaction, on the replay buffer seeded with D0
(``offline_updates``), and none online: BC never learns from its own rollouts, it is evaluated after every epoch like
the other algorithms so that its curve sits on the same axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nppac.agents.base import AgentHooks, Metrics, adam, optimizer_step
from nppac.agents.networks import Actor, ActorKind
from nppac.data.replay import Batch
from nppac.errors import NppacError

BC_METRIC_TERMS: dict[str, str] = {
    "bc_log_likelihood": "behaviour-cloning log-likelihood log π(a|s) of demonstration actions",
    "action_mse": "mean-action error (μ(s) − a)²",
    "policy_grad_norm": "policy gradient",
}
"""What one BC step reports, in the order it computes them, with human names for the non-finite message."""


@dataclass(frozen=True)
class BCConfig:
    """Hyperparameters of behavioural cloning."""

    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    log_std_range: tuple[float, float] | None = (-6.0, 0.0)
    """State-independent log σ kept in this range (rlkit's AWAC policy); None: a state-dependent σ(s) head."""

    def validate(self) -> BCConfig:
        """Raise a one-line :class:`NppacError` for an impossible setting; returns self."""
        if self.log_std_range is not None and not self.log_std_range[0] < self.log_std_range[1]:
            raise NppacError(f"bc setting log_std_range={self.log_std_range!r} must be low,high with low < high")
        return self


def bc_loss(actor: Actor, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """−E log π(a|s) (for the tanh head the actions are clamped to ±(1 − 1e-6) before atanh)."""
    return -actor.log_prob(obs, action).mean()


class BC(AgentHooks):
    """An actor and its optimizer, trained by :func:`bc_update`."""

    metric_terms = BC_METRIC_TERMS

    def __init__(self, obs_dim: int, act_dim: int, actor_kind: ActorKind, actor_hidden: tuple[int, ...],
                 config: BCConfig, device: str | torch.device = "cpu") -> None:
        self.config = config
        self.device = torch.device(device)
        self.actor = Actor(obs_dim, act_dim, actor_hidden, actor_kind, config.log_std_range).to(self.device)
        self.actor_opt = adam(self.actor.parameters(), config.actor_lr, self.device)

    def update(self, batch: Batch) -> Metrics:
        """One maximum-likelihood step on the (s, a) of ``batch``; its :data:`BC_METRIC_TERMS` by name."""
        return bc_update(self, batch)


def bc_update(agent: BC, batch: Batch) -> Metrics:
    """One gradient step of −E log π(a|s) on the batch's (s, a); no host syncs."""
    loss = bc_loss(agent.actor, batch.obs, batch.action)
    with torch.no_grad():
        action_mse = (agent.actor.deterministic(batch.obs) - batch.action).pow(2).mean()
    policy_grad_norm = optimizer_step(agent.actor_opt, loss, agent.actor.parameters())
    return {"bc_log_likelihood": -loss.detach(), "action_mse": action_mse, "policy_grad_norm": policy_grad_norm}
