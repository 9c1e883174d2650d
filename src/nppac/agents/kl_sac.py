"""KL-regularized soft actor-critic: N-PPAC (GP prior), PPAC-NN (NN prior) and SAC (no prior).

DESIGN.md §3, with the paper's names:

    critic target:  y = r + γ (1 − done) [ min_k Q̄_k(s′, a′) − α (log π(a′|s′) − log π0(a′|s′)) ],  a′ ~ π(·|s′)
    critic loss:    Σ_k E (Q_k(s, a) − y)²
    actor loss:     E [ α (log π(a|s) − log π0(a|s)) − min_k Q_k(s, a) ],  a = f_φ(ε; s)

log π0 is read from the (μ0, σ0) cached in the replay batch, never from the prior
itself; with no prior log π0 ≡ 0 and the losses are SAC's. With a second actor
(:mod:`nppac.agents.second_actor`, a remedy beyond the paper) the critic target chooses, at s′,
between a′ and the second action.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from nppac.agents.base import ActorCritic, Metrics, adam, optimizer_step, soft_update
from nppac.agents.networks import Actor, ActorKind
from nppac.agents.second_actor import SECOND_SHARE_TERM, SecondActor, second_actor_target
from nppac.data.replay import Batch
from nppac.distributions import gaussian_kl, gaussian_log_prob
from nppac.errors import NppacError

KL_SAC_METRIC_TERMS: dict[str, str] = {
    "alpha": "temperature α",
    "next_kl_mean": "KL penalty (log π − log π0) at s′ in the critic target",
    "q_target": "critic target y",
    "q_mean": "Q-value estimate Q_k(s, a)",
    "critic_loss": "critic loss Σ_k (Q_k − y)²",
    "critic_grad_norm": "critic gradient",
    "kl_mean": "KL penalty (log π − log π0)",
    "prior_log_prob_mean": "prior log-density log π0(a|s)",
    "actor_loss": "actor loss",
    "policy_grad_norm": "policy gradient",
}
"""What one gradient step with a prior (N-PPAC, PPAC-NN, the ablation) reports, in the order it computes them,
with human names for the non-finite message."""

SAC_METRIC_TERMS: dict[str, str] = {
    "alpha": "temperature α",
    "next_log_pi_mean": "entropy term log π at s′ in the critic target",
    "q_target": "critic target y",
    "q_mean": "Q-value estimate Q_k(s, a)",
    "critic_loss": "critic loss Σ_k (Q_k − y)²",
    "critic_grad_norm": "critic gradient",
    "log_pi_mean": "policy log-density log π(a|s) (the negative entropy)",
    "prior_log_prob_mean": "prior log-density log π0(a|s) (≡ 0 without a prior)",
    "actor_loss": "actor loss",
    "policy_grad_norm": "policy gradient",
}
"""What one gradient step without a prior (SAC) reports: with log π0 ≡ 0 the KL penalty is log π itself,
the entropy term, and is named for it (``log_pi_mean``, ``next_log_pi_mean``)."""


@dataclass(frozen=True)
class KLSACConfig:
    """Hyperparameters of the KL-regularized SAC update."""

    gamma: float = 0.99
    """Discount γ."""
    tau: float = 0.005
    """Polyak rate of the target critics: Q̄ ← (1 − τ) Q̄ + τ Q."""
    alpha: float = 0.1
    """Temperature α (the initial value when ``auto_alpha``)."""
    auto_alpha: bool = False
    """Adapt α so that E[log π − log π0] tracks ``penalty_target``."""
    penalty_target: float = 0.0
    """Target of E[log π − log π0] for automatic α: −H̄ (= act_dim by default) for SAC, the target KL with a prior."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics."""
    alpha_lr: float = 3e-4
    """Adam learning rate of log α (automatic α only)."""
    use_prior: bool = True
    """Regularize toward the cached prior π0; False gives SAC (log π0 ≡ 0)."""
    actor_delay_updates: int = 0
    """The critics learn alone for this many updates before the actor's (and α's) first step."""
    critic_layernorm: bool = False
    """Layer-normalize the critics' hidden layers (RLPD)."""


def critic_target(reward: torch.Tensor, done: torch.Tensor, q_next_min: torch.Tensor, next_log_pi: torch.Tensor,
                  next_log_prior: torch.Tensor, alpha: torch.Tensor | float, gamma: float) -> torch.Tensor:
    """y = r + γ (1 − done) [min_k Q̄_k(s′, a′) − α (log π(a′|s′) − log π0(a′|s′))]."""
    return reward + gamma * (1.0 - done) * (q_next_min - alpha * (next_log_pi - next_log_prior))


def policy_loss(log_pi: torch.Tensor, log_prior: torch.Tensor, q_min: torch.Tensor,
                alpha: torch.Tensor | float) -> torch.Tensor:
    """E [α (log π(a|s) − log π0(a|s)) − min_k Q_k(s, a)]."""
    return (alpha * (log_pi - log_prior) - q_min).mean()


def prior_log_prob(action: torch.Tensor, prior_mean: torch.Tensor | None,
                   prior_std: torch.Tensor | None) -> torch.Tensor:
    """log π0(a|s) from cached (μ0(s), σ0(s)); 0 without a prior (SAC).

    This is where the pathology enters: where an NN prior's σ0 collapses off the
    demonstrations, (a − μ0)²/σ0² and its gradient blow up (DESIGN.md §1, Proposition 1).
    """
    if prior_mean is None or prior_std is None:
        return torch.zeros(action.shape[:-1], device=action.device, dtype=action.dtype)
    return gaussian_log_prob(action, prior_mean, prior_std)


class KLSAC(ActorCritic):
    """The networks, optimizers and temperature of a KL-regularized SAC agent.

    The gradient step itself is :func:`kl_sac_update`; ``update`` is a shortcut to it.
    """

    def __init__(self, obs_dim: int, act_dim: int, actor_kind: ActorKind, actor_hidden: tuple[int, ...],
                 critic_hidden: tuple[int, ...], config: KLSACConfig, device: str | torch.device = "cpu",
                 q_bounds: tuple[float, float] | None = None,
                 log_std_range: tuple[float, float] | None = None) -> None:
        super().__init__(obs_dim, act_dim, actor_kind, actor_hidden, critic_hidden, config.actor_lr,
                         config.critic_lr, device, q_bounds=q_bounds, log_std_range=log_std_range,
                         critic_layernorm=config.critic_layernorm)
        self.config = config
        self.metric_terms = KL_SAC_METRIC_TERMS if config.use_prior else SAC_METRIC_TERMS
        self.log_alpha = torch.tensor(math.log(config.alpha), device=self.device, requires_grad=config.auto_alpha)
        self.alpha_opt = adam([self.log_alpha], config.alpha_lr, self.device) if config.auto_alpha else None
        self.penalty_target = torch.tensor(float(config.penalty_target), device=self.device)
        """Target of E[log π − log π0] for automatic α (a tensor: a run may set it once initialization measured it)."""
        self.updates = 0
        """Gradient steps taken by :meth:`update` (the actor waits for ``actor_delay_updates`` of them)."""
        self.second_actor: SecondActor | None = None
        """The second candidate action of the critic target (:meth:`use_second_actor`); None: the paper's target."""

    def use_second_actor(self, second: SecondActor) -> None:
        """From now on the critic target chooses at s′ between the policy's a′ and ``second``'s action; the update
        also reports the share of s′ that took the second action (``next_second_share``)."""
        self.second_actor = second
        self.metric_terms = {**self.metric_terms, "next_second_share": SECOND_SHARE_TERM}

    def update(self, batch: Batch) -> Metrics:
        """One gradient step on ``batch``; its ``metric_terms`` by name."""
        metrics = kl_sac_update(self, batch, actor_step=self.updates >= self.config.actor_delay_updates)
        self.updates += 1
        return metrics

    def critic_update(self, batch: Batch) -> Metrics:
        """A policy-evaluation step: the critics regress on the KL-regularized target of the current policy,
        the actor and α stay as they are (the critic warm start). Same metrics as :meth:`update`."""
        return kl_sac_update(self, batch, actor_step=False)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["log_alpha"] = self.log_alpha.detach().clone()
        state["penalty_target"] = self.penalty_target.clone()
        state["updates"] = self.updates
        if self.alpha_opt is not None:
            state["alpha_opt"] = self.alpha_opt.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
            if "penalty_target" in state:
                self.penalty_target.copy_(state["penalty_target"])
        # Checkpoints from before the actor delay count every update as taken.
        self.updates = int(state.get("updates", self.config.actor_delay_updates))
        if self.alpha_opt is not None:
            self.alpha_opt.load_state_dict(state["alpha_opt"])


def kl_sac_update(agent: KLSAC, batch: Batch, actor_step: bool = True) -> Metrics:
    """One gradient step of critics, actor and (optionally) α; no host syncs, no branching on values.

    With ``actor_step=False`` only the critics (and their targets) learn; the actor's
    loss, penalty and prior density are still measured, its gradient norm reads 0.
    Returns the :data:`KL_SAC_METRIC_TERMS` (without a prior: :data:`SAC_METRIC_TERMS`) by name, as tensors
    on the training device.
    """
    cfg = agent.config
    prior_mean, prior_std = (batch.prior_mean, batch.prior_std) if cfg.use_prior else (None, None)
    alpha = agent.log_alpha.detach().exp()
    critic = critic_step(agent, batch, alpha)

    # The actor's gradient flows through Q(s, f_φ(ε; s)); the critic's own weights need none.
    agent.critic.requires_grad_(False)
    with torch.set_grad_enabled(actor_step):
        action, log_pi = agent.actor.sample(batch.obs)
        log_prior = prior_log_prob(action, prior_mean, prior_std)
        q_min = agent.critic(batch.obs, action).min(0).values
        actor_loss = policy_loss(log_pi, log_prior, q_min, alpha)
    if actor_step:
        policy_grad_norm = optimizer_step(agent.actor_opt, actor_loss, agent.actor.parameters())
    else:
        policy_grad_norm = torch.zeros((), device=agent.device)
    agent.critic.requires_grad_(True)

    penalty = (log_pi - log_prior).detach()
    if actor_step:
        temperature_step(agent, penalty)
    soft_update(agent.critic_target, agent.critic, cfg.tau)

    # Without a prior the penalty log π − 0 is the entropy term, reported under its own name.
    kl, next_kl = ("kl_mean", "next_kl_mean") if cfg.use_prior else ("log_pi_mean", "next_log_pi_mean")
    second = {} if critic.second_share is None else {"next_second_share": critic.second_share}
    return {
        next_kl: critic.next_penalty, "q_target": critic.y.mean(), "q_mean": critic.q.mean(),
        "critic_loss": critic.loss, "critic_grad_norm": critic.grad_norm, kl: penalty.mean(),
        "prior_log_prob_mean": log_prior.detach().mean(),
        "actor_loss": actor_loss.detach(), "policy_grad_norm": policy_grad_norm, "alpha": alpha, **second,
    }


class CriticStep(NamedTuple):
    """What :func:`critic_step` measured."""

    next_penalty: torch.Tensor
    """E[log π(a′|s′) − log π0(a′|s′)] at the policy's a′ (in every s′, whichever action the target took)."""
    y: torch.Tensor
    """The critic target, per transition."""
    q: torch.Tensor
    """Q_k(s, a) before the step, (2, batch)."""
    loss: torch.Tensor
    grad_norm: torch.Tensor
    second_share: torch.Tensor | None = None
    """With a second actor: the share of s′ whose target took the second action."""


def critic_step(agent: KLSAC, batch: Batch, alpha: torch.Tensor) -> CriticStep:
    """Regress Q_1, Q_2 on the KL-regularized target y and step the critic optimizer.

    With a second actor, y takes at each s′ the policy's a′ or the second action a′₂, whichever the target critics
    value higher (:func:`~nppac.agents.second_actor.second_actor_target`).
    """
    cfg = agent.config
    next_prior_mean, next_prior_std = (batch.next_prior_mean, batch.next_prior_std) if cfg.use_prior else (None, None)
    second_share = None
    with torch.no_grad():
        next_action, next_log_pi = agent.actor.sample(batch.next_obs)
        next_log_prior = prior_log_prob(next_action, next_prior_mean, next_prior_std)
        q_next_min = agent.critic_target(batch.next_obs, next_action).min(0).values
        if agent.second_actor is None:
            y = critic_target(batch.reward, batch.done, q_next_min, next_log_pi, next_log_prior, alpha, cfg.gamma)
        else:
            second = agent.second_actor
            q_second = agent.critic_target(batch.next_obs, second.at_next_states(batch)).min(0).values
            chosen = second.choose(q_next_min, q_second)
            y = second_actor_target(batch.reward, batch.done, q_next_min, next_log_pi - next_log_prior, q_second,
                                    chosen, alpha, cfg.gamma)
            second_share = chosen.float().mean()
    q, critic_loss, critic_grad_norm = agent.critic_regression(batch, y)
    return CriticStep((next_log_pi - next_log_prior).mean(), y, q, critic_loss, critic_grad_norm, second_share)


def temperature_step(agent: KLSAC, penalty: torch.Tensor) -> None:
    """With automatic α: one step on log α given the batch's (detached) log π − log π0; else nothing."""
    if agent.alpha_opt is None:
        return
    # α rises while E[log π − log π0] exceeds its target, and falls below it.
    alpha_loss = -(agent.log_alpha * (penalty - agent.penalty_target)).mean()
    agent.alpha_opt.zero_grad(set_to_none=True)
    alpha_loss.backward()
    agent.alpha_opt.step()


def initialize_policy(actor: Actor, states: torch.Tensor, prior_mean: torch.Tensor, prior_std: torch.Tensor,
                      epochs: int, batch_size: int = 64, lr: float = 3e-4, seed: int = 0,
                      progress: Callable[[str, int, int], None] | None = None) -> list[float]:
    """Minimize KL(π_φ(·|s) ‖ π0(·|s)) over demonstration states before any interaction.

    The Gaussian head uses the closed form; the tanh head a one-sample estimate
    E_{a~π}[log π(a|s) − log π0(a|s)] (no closed form through the tanh). The prior is
    given as its cached (μ0, σ0) at ``states``. Each epoch visits the states once in a
    fresh permutation drawn from ``seed``, in mini-batches of ``batch_size``, with one
    Adam step each. ``progress(stage, completed, total)`` is called after each epoch.
    Returns the mean KL of each epoch.

    The loop is small steps bound by per-step overhead, so it avoids what costs without
    changing a number: each epoch gathers its permutation once (the mini-batches are
    then slices, in the same order), the optimizer is :func:`~nppac.agents.base.adam`
    (fused on the CPU), and the epoch sums stay on the device until the end (no host
    sync inside the loop).
    """
    if not (len(states) == len(prior_mean) == len(prior_std)):
        raise NppacError(f"policy initialization: {len(states)} states but {len(prior_mean)} prior predictions")
    device = states.device
    optimizer = adam(actor.parameters(), lr, device)
    rng = np.random.default_rng(seed)
    sums = []
    for epoch in range(epochs):
        order = torch.as_tensor(rng.permutation(len(states)), device=device)
        batches = zip(states[order].split(batch_size), prior_mean[order].split(batch_size),
                      prior_std[order].split(batch_size))
        total = torch.zeros((), device=device)
        for s, mu0, sigma0 in batches:
            kl = policy_kl(actor, s, mu0, sigma0)
            optimizer.zero_grad(set_to_none=True)
            kl.backward()
            optimizer.step()
            total += kl.detach() * len(s)
        sums.append(total)
        if progress is not None:
            progress("policy initialization", epoch + 1, epochs)
    return (torch.stack(sums) / len(states)).tolist() if sums else []


def policy_kl(actor: Actor, states: torch.Tensor, prior_mean: torch.Tensor, prior_std: torch.Tensor) -> torch.Tensor:
    """Mean KL(π_φ(·|s) ‖ π0(·|s)) over ``states``: closed form for the Gaussian head, a one-sample estimate
    E_{a~π}[log π(a|s) − log π0(a|s)] for the tanh head."""
    if actor.kind == "gaussian_tanh_mean":
        mean, std = actor(states)
        return gaussian_kl(mean, std, prior_mean, prior_std).mean()
    action, log_pi = actor.sample(states)
    return (log_pi - gaussian_log_prob(action, prior_mean, prior_std)).mean()
