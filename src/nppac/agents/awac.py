"""AWAC: advantage-weighted actor-critic (Nair et al. 2020), the offline-then-online baseline of DESIGN.md §6.

With the paper's names, on a replay batch (s, a, r, s′) — the buffer is seeded with the demonstrations and pretrained
on them offline before interaction (the loop's ``offline_updates``), then keeps learning online:

    critic target:  y = r + γ (1 − done) min_k Q̄_k(s′, a′),  a′ ~ π(·|s′) clipped to [−1, 1]
    critic loss:    Σ_k E (Q_k(s, a) − y)²
    advantage:      A(s, a) = min_k Q_k(s, a) − V(s),  V(s) = min_k Q_k(s, μ_φ(s))
    weights:        w = softmax_batch(min(A, c) / λ)
    actor loss:     −Σ_i w_i log π(a_i|s_i)

The constants are the public AWAC hand-task configuration (rlkit ``examples/awac/hand``), named in
:class:`AWACConfig`: λ = 0.5, score clip c = 0.5, V at the policy's mean action, a state-independent log σ in [−6, 0]
that starts at −3, policy weight decay 1e-4, no entropy term (α = 0), 25,000 offline steps on batches of 128. Two
choices are not rlkit's: sampled a′ are clipped to the action box the environment executes (as CORL's AWAC does;
rlkit queries the critic at unclipped Gaussian samples), and on the binary hand tasks the critics are clamped to the
returns' range [−1/(1 − γ), 0] (rlkit's hand critics end in ``Clamp(max=0)``, the upper half of it). A and V use the
critic before this step's update, as Q(s, a) in the critic loss does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nppac.agents.base import ActorCritic, Metrics, optimizer_step, soft_update
from nppac.agents.networks import ActorKind
from nppac.data.replay import Batch
from nppac.errors import NppacError

AWAC_METRIC_TERMS: dict[str, str] = {
    "q_target": "critic target y",
    "q_mean": "Q-value estimate Q_k(s, a)",
    "critic_loss": "critic loss Σ_k (Q_k − y)²",
    "critic_grad_norm": "critic gradient",
    "advantage_mean": "AWAC advantage A = Q(s, a) − V(s)",
    "advantage_std": "spread of the AWAC advantage over the batch",
    "awac_weight_max": "AWAC advantage weights softmax(A/λ)",
    "awac_weight_ess": "effective sample size of the AWAC weights",
    "policy_std": "policy standard deviation σ_φ",
    "replay_log_likelihood": "log π(a|s) of replay actions",
    "actor_loss": "AWAC actor loss",
    "policy_grad_norm": "policy gradient",
}
"""What one AWAC step reports, in the order it computes them, with human names for the non-finite message.

``awac_weight_max`` is n · max_i w_i over a batch of n: 1 when the weights are uniform (plain behaviour cloning), n
when one transition takes all the weight. ``awac_weight_ess`` is the effective sample size 1 / (n Σ w_i²), as a
fraction of the batch: 1 for uniform weights, 1/n for one-hot weights.
"""


@dataclass(frozen=True)
class AWACConfig:
    """Hyperparameters of the AWAC update; defaults are the public hand-task configuration (module docstring)."""

    gamma: float = 0.99
    """Discount γ."""
    tau: float = 0.005
    """Polyak rate of the target critics."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics."""
    lam: float = 0.5
    """Temperature λ of the weights softmax(A/λ) (rlkit hand ``beta=0.5``)."""
    score_clip: float = 0.5
    """Upper clip of the advantage before the softmax (rlkit hand ``clip_score=0.5``)."""
    value_at_mean: bool = True
    """V(s) = min_k Q_k(s, μ_φ(s)) at the mean action (rlkit hand ``awr_use_mle_for_vf=True``); False samples a ~ π."""
    clip_next_action: bool = True
    """Clip sampled actions a′ (and those of V) to the action box [−1, 1] that the environment executes.

    CORL's AWAC clips; rlkit's does not (its critics are then queried outside every stored action)."""
    actor_weight_decay: float = 1e-4
    """Adam weight decay of the policy (rlkit hand ``policy_weight_decay=1e-4``)."""
    log_std_range: tuple[float, float] = (-6.0, 0.0)
    """State-independent log σ_φ kept in this range, starting at its middle (rlkit ``std_architecture="values"``)."""

    def validate(self) -> AWACConfig:
        """Raise a one-line :class:`NppacError` for an impossible setting; returns self."""
        lo, hi = self.log_std_range
        rules = {"lam": (self.lam > 0, "> 0"),
                 "score_clip": (self.score_clip == self.score_clip, "a number (inf: no clip)"),
                 "actor_weight_decay": (self.actor_weight_decay >= 0, "≥ 0"),
                 "log_std_range": (lo < hi, "low,high with low < high")}
        bad = next((name for name, (ok, _) in rules.items() if not ok), None)
        if bad is not None:
            raise NppacError(f"awac setting {bad}={getattr(self, bad)!r} is out of range: must be {rules[bad][1]}")
        return self


def advantage_weights(advantage: torch.Tensor, lam: float, score_clip: float = float("inf")) -> torch.Tensor:
    """w_i = exp(min(A_i, c)/λ) / Σ_j exp(min(A_j, c)/λ) over the batch."""
    return torch.softmax(advantage.clamp(max=score_clip) / lam, dim=0)


def awac_policy_loss(log_pi: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """−Σ_i w_i log π(a_i|s_i) with the weights held fixed."""
    return -(weights.detach() * log_pi).sum()


class AWAC(ActorCritic):
    """The actor, twin critics with Polyak targets and optimizers of an AWAC agent; the step is :func:`awac_update`."""

    metric_terms = AWAC_METRIC_TERMS

    def __init__(self, obs_dim: int, act_dim: int, actor_kind: ActorKind, actor_hidden: tuple[int, ...],
                 critic_hidden: tuple[int, ...], config: AWACConfig, device: str | torch.device = "cpu",
                 q_bounds: tuple[float, float] | None = None) -> None:
        super().__init__(obs_dim, act_dim, actor_kind, actor_hidden, critic_hidden, config.actor_lr,
                         config.critic_lr, device, log_std_range=config.log_std_range, q_bounds=q_bounds,
                         actor_weight_decay=config.actor_weight_decay)
        self.config = config

    def update(self, batch: Batch) -> Metrics:
        """One gradient step on ``batch``; its :data:`AWAC_METRIC_TERMS` by name."""
        return awac_update(self, batch)


def awac_update(agent: AWAC, batch: Batch) -> Metrics:
    """One AWAC gradient step of critics and actor; no host syncs, no branching on values."""
    cfg = agent.config
    with torch.no_grad():
        next_action, _ = agent.actor.sample(batch.next_obs)
        if cfg.clip_next_action:
            next_action = next_action.clamp(-1.0, 1.0)
        q_next_min = agent.critic_target(batch.next_obs, next_action).min(0).values
        y = batch.reward + cfg.gamma * (1.0 - batch.done) * q_next_min
    # One actor forward at s serves V(s) (its mean action, detached) and the actor loss.
    mean, std = agent.actor(batch.obs)
    with torch.no_grad():
        if cfg.value_at_mean:
            policy_action = agent.actor.mean_action(mean.detach())
        else:
            policy_action, _ = agent.actor.sample(batch.obs)
            if cfg.clip_next_action:
                policy_action = policy_action.clamp(-1.0, 1.0)
        value = agent.critic(batch.obs, policy_action).min(0).values

    q, critic_loss, critic_grad_norm = agent.critic_regression(batch, y)

    advantage = q.min(0).values - value
    weights = advantage_weights(advantage, cfg.lam, cfg.score_clip)
    log_pi = agent.actor.log_density(mean, std, batch.action)
    actor_loss = awac_policy_loss(log_pi, weights)
    policy_grad_norm = optimizer_step(agent.actor_opt, actor_loss, agent.actor.parameters())

    soft_update(agent.critic_target, agent.critic, cfg.tau)
    n = len(weights)
    return {
        "q_target": y.mean(), "q_mean": q.mean(), "critic_loss": critic_loss, "critic_grad_norm": critic_grad_norm,
        "advantage_mean": advantage.mean(), "advantage_std": advantage.std(correction=0),
        "awac_weight_max": weights.max() * n, "awac_weight_ess": 1.0 / (n * weights.pow(2).sum()),
        "replay_log_likelihood": log_pi.detach().mean(), "actor_loss": actor_loss.detach(),
        "policy_grad_norm": policy_grad_norm, "policy_std": std.detach().mean(),
    }
