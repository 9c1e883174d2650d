"""AWAC: advantage-weighted actor-critic (Nair et al. 2020), the offline-then-online baseline of DESIGN.md §6.

With the paper's names, on a replay batch (s, a, r, s′) — the buffer is seeded with the
demonstrations and pretrained on them offline before interaction (the loop's
``offline_updates``), then keeps learning online:

    critic target:  y = r + γ (1 − done) min_k Q̄_k(s′, a′),  a′ ~ π(·|s′)
    critic loss:    Σ_k E (Q_k(s, a) − y)²
    advantage:      A(s, a) = min_k Q_k(s, a) − V(s),  V(s) = (1/m) Σ_j min_k Q_k(s, a_j),  a_j ~ π(·|s)
    weights:        w = softmax_batch(A / λ)
    actor loss:     −Σ_i w_i log π(a_i|s_i)

The critic is SAC's without the entropy bonus (the published AWAC runs with α = 0).
The weights are normalized over the batch by a softmax, as published, rather than
clipped: they sum to 1, so the actor loss is a weighted log-likelihood at the scale
of plain behaviour cloning (uniform weights give −E log π), and exp never overflows.
A and V use the critic before this step's update, as Q(s, a) in the critic loss does.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

from nppac.agents.base import adam, optimizer_step, soft_update
from nppac.agents.networks import Actor, ActorKind, TwinCritic
from nppac.data.replay import Batch

AWAC_METRICS: tuple[str, ...] = (
    "q_target", "q_mean", "critic_loss", "critic_grad_norm",
    "advantage_mean", "awac_weight_max", "replay_log_likelihood", "actor_loss", "policy_grad_norm",
)
"""What one AWAC step reports, in the order it computes them (the first non-finite one is the culprit).

``awac_weight_max`` is n · max_i w_i over a batch of n: 1 when the weights are
uniform (plain behaviour cloning), n when one transition takes all the weight.
"""

AWAC_METRIC_TERMS: dict[str, str] = {
    "q_target": "critic target y",
    "q_mean": "Q-value estimate Q_k(s, a)",
    "critic_loss": "critic loss Σ_k (Q_k − y)²",
    "critic_grad_norm": "critic gradient",
    "advantage_mean": "AWAC advantage A = Q(s, a) − V(s)",
    "awac_weight_max": "AWAC advantage weights softmax(A/λ)",
    "replay_log_likelihood": "log π(a|s) of replay actions",
    "actor_loss": "AWAC actor loss",
    "policy_grad_norm": "policy gradient",
}
"""Human names of the metrics, for the one-line non-finite message."""


@dataclass(frozen=True)
class AWACConfig:
    """Hyperparameters of the AWAC update."""

    gamma: float = 0.99
    """Discount γ."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics."""
    lam: float = 1.0
    """Temperature λ of the advantage weights softmax(A/λ) (published hand-task setting: 1)."""
    value_samples: int = 1
    """Actions a_j ~ π(·|s) averaged in the estimate of V(s) (published: 1)."""


def advantage_weights(advantage: torch.Tensor, lam: float) -> torch.Tensor:
    """w_i = exp(A_i/λ) / Σ_j exp(A_j/λ) over the batch."""
    return torch.softmax(advantage / lam, dim=0)


def awac_policy_loss(log_pi: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """−Σ_i w_i log π(a_i|s_i) with the weights held fixed."""
    return -(weights.detach() * log_pi).sum()


class AWAC:
    """The actor, twin critics with Polyak targets and optimizers of an AWAC agent; the step is :func:`awac_update`."""

    metrics = AWAC_METRICS
    metric_terms = AWAC_METRIC_TERMS

    def __init__(self, obs_dim: int, act_dim: int, actor_kind: ActorKind, actor_hidden: tuple[int, ...],
                 critic_hidden: tuple[int, ...], config: AWACConfig, device: str | torch.device = "cpu") -> None:
        self.config = config
        self.device = torch.device(device)
        self.actor = Actor(obs_dim, act_dim, actor_hidden, actor_kind).to(self.device)
        self.critic = TwinCritic(obs_dim, act_dim, critic_hidden).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = adam(self.actor.parameters(), config.actor_lr, self.device)
        self.critic_opt = adam(self.critic.parameters(), config.critic_lr, self.device)

    def update(self, batch: Batch) -> torch.Tensor:
        """One gradient step on ``batch``; the :data:`AWAC_METRICS` as one device tensor."""
        return awac_update(self, batch)

    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])


def awac_update(agent: AWAC, batch: Batch) -> torch.Tensor:
    """One AWAC gradient step of critics and actor; no host syncs, no branching on values."""
    cfg = agent.config
    m = cfg.value_samples
    with torch.no_grad():
        next_action, _ = agent.actor.sample(batch.next_obs)
        q_next_min = agent.critic_target(batch.next_obs, next_action).min(0).values
        y = batch.reward + cfg.gamma * (1.0 - batch.done) * q_next_min
        obs_m = batch.obs.repeat(m, 1)
        policy_action, _ = agent.actor.sample(obs_m)
        value = agent.critic(obs_m, policy_action).min(0).values.view(m, -1).mean(0)

    q = agent.critic(batch.obs, batch.action)
    critic_loss = (q - y).pow(2).mean(-1).sum()  # Σ_k E (Q_k(s, a) − y)²
    critic_grad_norm = optimizer_step(agent.critic_opt, critic_loss, agent.critic.parameters())

    advantage = q.detach().min(0).values - value
    weights = advantage_weights(advantage, cfg.lam)
    log_pi = agent.actor.log_prob(batch.obs, batch.action)
    actor_loss = awac_policy_loss(log_pi, weights)
    policy_grad_norm = optimizer_step(agent.actor_opt, actor_loss, agent.actor.parameters())

    soft_update(agent.critic_target, agent.critic, cfg.tau)

    return torch.stack([
        y.mean(), q.detach().mean(), critic_loss.detach(), critic_grad_norm,
        advantage.mean(), weights.max() * len(weights), log_pi.detach().mean(), actor_loss.detach(), policy_grad_norm,
    ])
