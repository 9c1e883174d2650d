"""KL-regularized soft actor-critic: N-PPAC (GP prior), PPAC-NN (NN prior) and SAC (no prior).

DESIGN.md §3, with the paper's names:

    critic target:  y = r + γ (1 − done) [ min_k Q̄_k(s′, a′) − α (log π(a′|s′) − log π0(a′|s′)) ],  a′ ~ π(·|s′)
    critic loss:    Σ_k E (Q_k(s, a) − y)²
    actor loss:     E [ α (log π(a|s) − log π0(a|s)) − min_k Q_k(s, a) ],  a = f_φ(ε; s)

log π0 is read from the (μ0, σ0) cached in the replay batch, never from the prior itself; with no prior log π0 ≡ 0
and the losses are SAC's. The cached σ0 is the prior's predictive std as it predicted it (the GP's exact or LOVE
variance, ``prior_variance``); the σ0 convention (``prior_sigma``) is applied here, in :func:`prior_log_prob`.

The remedies beyond the paper (docs/remedies.md) are settings of this agent and live here: automatic α toward a named
KL target, layer-normalized critics, the KL anchored to the initialized policy (its frozen copy,
:meth:`KLSAC.kl_mean`) and the second actor (:mod:`nppac.agents.second_actor`: the critic target chooses, at s′,
between a′ and the second action). The loop reaches them only through the agent's hooks, :meth:`KLSAC.acting` and
:meth:`KLSAC.before_online`, and its ``state_dict``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import torch

from nppac.agents.base import Acting, ActorCritic, Metrics, adam, optimizer_step, soft_update
from nppac.agents.networks import Actor, ActorKind, freeze
from nppac.agents.second_actor import (
    SECOND_SHARE_TERM,
    SecondActor,
    SecondActorActing,
    SecondActorChoice,
    SecondActorSource,
    second_actor_target,
)
from nppac.data.replay import Batch
from nppac.distributions import gaussian_kl, gaussian_log_prob
from nppac.errors import NppacError

log = logging.getLogger(__name__)

SigmaConvention = Literal["std", "variance"]
SIGMA_CONVENTIONS: tuple[str, ...] = ("std", "variance")
"""How the cached σ0 scales π0 (``prior_sigma``; DESIGN.md §2, "The two conventions of the published code"):
std, π0 = N(μ0, σ0²), the math as written; variance, π0 = N(μ0, (σ0²)²), the published code's ``Normal(mean,
variance)``, σ0² in the place of σ0 (sharper where σ0 < 1: σ0 = 0.2 acts as 0.04)."""

PriorMean = Callable[[torch.Tensor], torch.Tensor]
"""clip(μ0(s), −1, 1) at states the replay buffer has not cached (collection, evaluation), on the states' device."""

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
"""What one gradient step with a prior (N-PPAC, PPAC-NN, the ablation) reports, in the order it computes them, with
human names for the non-finite message."""

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
"""What one gradient step without a prior (SAC) reports: with log π0 ≡ 0 the KL penalty is log π itself, the entropy
term, and is named for it (``log_pi_mean``, ``next_log_pi_mean``)."""


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
    prior_sigma: SigmaConvention = "std"
    """How the cached σ0 scales π0 (:data:`SIGMA_CONVENTIONS`): std, N(μ0, σ0²); variance, N(μ0, (σ0²)²)."""
    prior_variance: str = "exact"
    """Which GP variance the cached σ0 is the root of: exact (the posterior's) or love (the published code's LOVE
    estimate, far larger near the data). A prediction setting of the GP, applied where it predicts
    (``nppac.priors.use_variance``); named here so that the loss says which π0 it regularizes toward."""
    auto_alpha_target: str | None = None
    """Remedy: automatic α toward a named KL target: act-dim (the action dimension, the published trainer's automatic
    tuning with a GP prior) or init-kl (the KL policy initialization reached, :meth:`KLSAC.before_online`)."""
    critic_layernorm: bool = False
    """Remedy: layer-normalize the critics' hidden layers (RLPD)."""
    kl_anchor: str = "prior"
    """Remedy: the mean of the KL's reference online: prior (μ0) or init-actor (the initialized policy's mean action,
    frozen, with the prior's σ0)."""
    second_actor: str = "none"
    """Remedy: a second candidate action (:mod:`nppac.agents.second_actor`): none, prior-mean or init-actor."""
    second_actor_choice: str = "greedy"
    """How the second action is chosen in collection and in the critic target: greedy or softmax."""
    second_actor_temperature: float = 1.0
    """Temperature of the softmax choice, in the critics' units."""


def critic_target(reward: torch.Tensor, done: torch.Tensor, q_next_min: torch.Tensor, next_log_pi: torch.Tensor,
                  next_log_prior: torch.Tensor, alpha: torch.Tensor | float, gamma: float) -> torch.Tensor:
    """y = r + γ (1 − done) [min_k Q̄_k(s′, a′) − α (log π(a′|s′) − log π0(a′|s′))]."""
    return reward + gamma * (1.0 - done) * (q_next_min - alpha * (next_log_pi - next_log_prior))


def policy_loss(log_pi: torch.Tensor, log_prior: torch.Tensor, q_min: torch.Tensor,
                alpha: torch.Tensor | float) -> torch.Tensor:
    """E [α (log π(a|s) − log π0(a|s)) − min_k Q_k(s, a)]."""
    return (alpha * (log_pi - log_prior) - q_min).mean()


def prior_scale(sigma0: torch.Tensor, prior_sigma: SigmaConvention) -> torch.Tensor:
    """The standard deviation of π0 from the cached σ0 under the run's convention (:data:`SIGMA_CONVENTIONS`)."""
    # DESIGN.md §2: the published code builds π0 as Normal(μ0, variance), σ0² where the std belongs.
    return sigma0 ** 2 if prior_sigma == "variance" else sigma0


def prior_log_prob(action: torch.Tensor, prior_mean: torch.Tensor | None, sigma0: torch.Tensor | None,
                   prior_sigma: SigmaConvention) -> torch.Tensor:
    """log π0(a|s) = log N(a; μ0(s), scale(s)²) from cached (μ0(s), σ0(s)); 0 without a prior (SAC).

    scale = σ0 (``prior_sigma = "std"``) or σ0² (``"variance"``, the published code's), :func:`prior_scale`; σ0 is
    the GP's exact or LOVE predictive std as the prior predicted it (``prior_variance``). This is where the pathology
    enters: where an NN prior's σ0 collapses off the demonstrations, (a − μ0)²/σ0² and its gradient blow up
    (DESIGN.md §1, Proposition 1).
    """
    if prior_mean is None or sigma0 is None:
        return torch.zeros(action.shape[:-1], device=action.device, dtype=action.dtype)
    return gaussian_log_prob(action, prior_mean, prior_scale(sigma0, prior_sigma))


class KLSAC(ActorCritic):
    """The networks, optimizers and temperature of a KL-regularized SAC agent, and its remedies' state.

    The gradient step itself is :func:`kl_sac_update`; ``update`` is a shortcut to it. ``prior_mean`` gives
    clip(μ0(s)) at new states, for ``second_actor = "prior-mean"`` (it proposes in collection and evaluation).
    """

    saved = (*ActorCritic.saved, "log_alpha", "penalty_target", "alpha_opt", "init_actor")

    def __init__(self, obs_dim: int, act_dim: int, actor_kind: ActorKind, actor_hidden: tuple[int, ...],
                 critic_hidden: tuple[int, ...], config: KLSACConfig, device: str | torch.device = "cpu",
                 q_bounds: tuple[float, float] | None = None,
                 log_std_range: tuple[float, float] | None = None, prior_mean: PriorMean | None = None) -> None:
        super().__init__(obs_dim, act_dim, actor_kind, actor_hidden, critic_hidden, config.actor_lr,
                         config.critic_lr, device, q_bounds=q_bounds, log_std_range=log_std_range,
                         critic_layernorm=config.critic_layernorm)
        self.config = config
        self.metric_terms = KL_SAC_METRIC_TERMS if config.use_prior else SAC_METRIC_TERMS
        auto_alpha = config.auto_alpha or config.auto_alpha_target is not None
        self.log_alpha = torch.tensor(math.log(config.alpha), device=self.device, requires_grad=auto_alpha)
        self.alpha_opt = adam([self.log_alpha], config.alpha_lr, self.device) if auto_alpha else None
        target = float(act_dim) if config.auto_alpha_target == "act-dim" else float(config.penalty_target)
        self.penalty_target = torch.tensor(target, device=self.device)
        """Target of E[log π − log π0] for automatic α (a tensor: ``init-kl`` sets it after initialization)."""
        reads_init = config.kl_anchor == "init-actor" or config.second_actor == "init-actor"
        self.init_actor: Actor | None = freeze(self.actor) if reads_init else None
        """The initialized policy, frozen (:meth:`before_online` copies it), where a remedy reads it: the KL anchor
        and the second actor ``init-actor``. Saved in :meth:`state_dict`."""
        self.second_actor: SecondActor | None = None
        """The second candidate action of the critic target; None: the paper's target."""
        if config.second_actor != "none":
            self.use_second_actor(_second_actor(config, self.init_actor, prior_mean))

    def use_second_actor(self, second: SecondActor) -> None:
        """From now on the critic target chooses at s′ between the policy's a′ and ``second``'s action; the update
        also reports the share of s′ that took the second action (``next_second_share``)."""
        self.second_actor = second
        self.metric_terms = {**self.metric_terms, "next_second_share": SECOND_SHARE_TERM}

    def acting(self) -> Acting:
        """With a second actor, the rule that takes its action where the critics value it higher; else the actor."""
        if self.second_actor is None:
            return super().acting()
        return SecondActorActing(self.actor, self.critic, self.second_actor)

    def before_online(self, init_metrics: Mapping[str, float]) -> None:
        """Keep what the remedies read of the initialized policy: its frozen copy, and the KL it reached as the
        target of automatic α (``auto_alpha_target = "init-kl"``)."""
        if self.init_actor is not None:
            self.init_actor.load_state_dict(self.actor.state_dict())
        if self.config.kl_anchor == "init-actor":
            log.info("the online KL is anchored to the initialized policy's mean action, with the prior's σ0")
        if self.config.auto_alpha_target == "init-kl":
            if "init_kl" not in init_metrics:
                raise NppacError("auto_alpha_target=init-kl needs the KL measured by policy initialization; "
                                 "set init_epochs > 0 or choose auto_alpha_target=act-dim")
            self.penalty_target.fill_(init_metrics["init_kl"])
            log.info("automatic α targets the KL after initialization, %.3g", init_metrics["init_kl"])

    def kl_mean(self, obs: torch.Tensor, prior_mean: torch.Tensor | None) -> torch.Tensor | None:
        """The mean of the KL's reference at ``obs``: the cached μ0(s), or with ``kl_anchor = "init-actor"`` (a
        remedy beyond the paper) the frozen initialized policy's mean action μ_init(s), beside the prior's σ0."""
        if self.config.kl_anchor != "init-actor" or prior_mean is None or self.init_actor is None:
            return prior_mean
        with torch.no_grad():
            return self.init_actor.deterministic(obs)

    def update(self, batch: Batch) -> Metrics:
        """One gradient step on ``batch``; its ``metric_terms`` by name."""
        return kl_sac_update(self, batch)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Checkpoints of earlier versions hold no penalty_target: it keeps its value.
        super().load_state_dict({"penalty_target": self.penalty_target, **state})


def _second_actor(config: KLSACConfig, init_actor: Actor | None, prior_mean: PriorMean | None) -> SecondActor:
    """``second_actor``: the prior's mean action (``prior_mean`` at new states, the cached μ0 at s′) or the frozen
    initialized policy's, chosen by the configured rule."""
    propose = prior_mean if config.second_actor == "prior-mean" else None if init_actor is None \
        else init_actor.deterministic
    if propose is None:
        raise NppacError(f"second_actor={config.second_actor} needs the prior's mean action or the initialized policy")
    source: SecondActorSource = "prior-mean" if config.second_actor == "prior-mean" else "init-actor"
    choice: SecondActorChoice = "softmax" if config.second_actor_choice == "softmax" else "greedy"
    return SecondActor(source, propose, choice, config.second_actor_temperature)


def kl_sac_update(agent: KLSAC, batch: Batch) -> Metrics:
    """One gradient step of critics, actor and (optionally) α; no host syncs, no branching on values.

    Returns the :data:`KL_SAC_METRIC_TERMS` (without a prior: :data:`SAC_METRIC_TERMS`) by name, as tensors on the
    training device.
    """
    cfg = agent.config
    mu0, sigma0 = (agent.kl_mean(batch.obs, batch.prior_mean), batch.prior_std) if cfg.use_prior else (None, None)
    alpha = agent.log_alpha.detach().exp()
    critic = critic_step(agent, batch, alpha)

    # The actor's gradient flows through Q(s, f_φ(ε; s)); the critic's own weights need none.
    agent.critic.requires_grad_(False)
    action, log_pi = agent.actor.sample(batch.obs)
    log_prior = prior_log_prob(action, mu0, sigma0, cfg.prior_sigma)
    q_min = agent.critic(batch.obs, action).min(0).values
    actor_loss = policy_loss(log_pi, log_prior, q_min, alpha)
    policy_grad_norm = optimizer_step(agent.actor_opt, actor_loss, agent.actor.parameters())
    agent.critic.requires_grad_(True)

    penalty = (log_pi - log_prior).detach()
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
    next_mu0, next_sigma0 = (agent.kl_mean(batch.next_obs, batch.next_prior_mean), batch.next_prior_std) \
        if cfg.use_prior else (None, None)
    second_share = None
    with torch.no_grad():
        next_action, next_log_pi = agent.actor.sample(batch.next_obs)
        next_log_prior = prior_log_prob(next_action, next_mu0, next_sigma0, cfg.prior_sigma)
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
                      progress: Callable[[str, int, int], None] | None = None, *,
                      prior_sigma: SigmaConvention) -> list[float]:
    """Minimize KL(π_φ(·|s) ‖ π0(·|s)) over demonstration states before any interaction.

    The Gaussian head uses the closed form; the tanh head a one-sample estimate E_{a~π}[log π(a|s) − log π0(a|s)] (no
    closed form through the tanh). The prior is given as its cached (μ0, σ0) at ``states`` and the σ0 convention
    (:func:`policy_kl`). Each epoch visits the states once in a fresh permutation drawn from ``seed``, in
    mini-batches of ``batch_size``, with one Adam step each. ``progress(stage, completed, total)`` is called after
    each epoch. Returns the mean KL of each epoch.

    The loop is small steps bound by per-step overhead, so it avoids what costs without changing a number: each epoch
    gathers its permutation once (the mini-batches are then slices, in the same order), the optimizer is
    :func:`~nppac.agents.base.adam` (fused on the CPU), and the epoch sums stay on the device until the end (no host
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
            kl = policy_kl(actor, s, mu0, sigma0, prior_sigma)
            optimizer.zero_grad(set_to_none=True)
            kl.backward()
            optimizer.step()
            total += kl.detach() * len(s)
        sums.append(total)
        if progress is not None:
            progress("policy initialization", epoch + 1, epochs)
    return (torch.stack(sums) / len(states)).tolist() if sums else []


def policy_kl(actor: Actor, states: torch.Tensor, prior_mean: torch.Tensor, sigma0: torch.Tensor,
              prior_sigma: SigmaConvention) -> torch.Tensor:
    """Mean KL(π_φ(·|s) ‖ π0(·|s)) over ``states``, π0 = N(μ0, scale²) with scale = :func:`prior_scale` of the cached
    σ0: closed form for the Gaussian head, a one-sample estimate E_{a~π}[log π(a|s) − log π0(a|s)] for the tanh head."""
    if actor.kind == "gaussian_tanh_mean":
        mean, std = actor(states)
        return gaussian_kl(mean, std, prior_mean, prior_scale(sigma0, prior_sigma)).mean()
    action, log_pi = actor.sample(states)
    return (log_pi - prior_log_prob(action, prior_mean, sigma0, prior_sigma)).mean()
