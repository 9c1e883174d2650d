"""SAC+BC: soft actor-critic plus a behaviour-cloning log-likelihood term on demonstration batches.

DESIGN.md §6. The critic and the temperature are SAC's (:mod:`nppac.agents.kl_sac` without a prior); the actor loss
gains one term on (s, a) ~ D0:

    actor loss:  E_{s~buffer, a=f_φ(ε;s)} [ α log π(a|s) − min_k Q_k(s, a) ]  −  λ E_{(s,a)~D0} [ log π(a|s) ]

λ = 1 by default: the log-likelihood enters at unit weight beside SAC's terms. With hand-task rewards in {−1, 0} the
Q-values stay within ±1/(1 − γ) and the term keeps its pull; on dense locomotion rewards Q grows and the term weakens
relative to it, so λ is worth tuning there (``--set bc_weight=…``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from nppac.agents.base import Acting, Metrics, optimizer_step, soft_update
from nppac.agents.kl_sac import KLSAC, SAC_METRIC_TERMS, critic_step, policy_loss, temperature_step
from nppac.agents.networks import Actor, check_log_std_range
from nppac.data.replay import Batch
from nppac.errors import NppacError

SAC_BC_METRIC_TERMS: dict[str, str] = {
    **{k: SAC_METRIC_TERMS[k] for k in ("alpha", "next_log_pi_mean", "q_target", "q_mean", "critic_loss",
                                        "critic_grad_norm", "log_pi_mean")},
    "bc_log_likelihood": "behaviour-cloning log-likelihood log π(a|s) of demonstration actions",
    **{k: SAC_METRIC_TERMS[k] for k in ("actor_loss", "policy_grad_norm")},
}
"""SAC's metrics (log π0 ≡ 0, so no prior term) with the demonstrations' log-likelihood before the actor loss."""


@dataclass(frozen=True)
class SACBCConfig:
    """Hyperparameters SAC+BC adds to SAC's."""

    bc_weight: float = 1.0
    """Weight λ of the behaviour-cloning term −λ E_D0[log π(a|s)] in the actor loss."""
    demo_batch_size: int = 256
    """Demonstration pairs (s, a) per gradient step."""
    log_std_range: tuple[float, float] | None = None
    """The actor's log σ as SAC's (:class:`~nppac.training.algorithms.KLSACSettings`; hand tasks: −6,0)."""

    def validate(self) -> SACBCConfig:
        """Raise a one-line :class:`NppacError` for an impossible setting; returns self."""
        check_log_std_range(self.log_std_range)
        if not self.bc_weight >= 0:
            raise NppacError(f"sac-bc setting bc_weight={self.bc_weight!r} is out of range: must be ≥ 0")
        if not self.demo_batch_size >= 1:
            raise NppacError(f"sac-bc setting demo_batch_size={self.demo_batch_size!r} is out of range: must be ≥ 1")
        return self


class DemoSampler:
    """The demonstration pairs (s, a) as tensors on the training device, drawn uniformly with replacement.

    Indices come from torch's RNG on the device with a constant bound, so sampling needs no host sync and can sit
    inside a captured gradient step.
    """

    def __init__(self, obs: torch.Tensor, action: torch.Tensor) -> None:
        if len(obs) == 0 or len(obs) != len(action):
            raise NppacError(f"demonstrations for SAC+BC need equally many states and actions (≥ 1), "
                             f"got {len(obs)} states and {len(action)} actions")
        self.obs, self.action = obs, action

    def __len__(self) -> int:
        return len(self.obs)

    def sample(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(self.obs), (batch_size,), device=self.obs.device)
        return self.obs[idx], self.action[idx]


def sac_bc_policy_loss(log_pi: torch.Tensor, q_min: torch.Tensor, alpha: torch.Tensor | float,
                       bc_log_likelihood: torch.Tensor, bc_weight: float) -> torch.Tensor:
    """E [α log π(a|s) − min_k Q_k(s, a)] − λ E_D0[log π(a_demo|s_demo)]."""
    return policy_loss(log_pi, torch.zeros_like(log_pi), q_min, alpha) - bc_weight * bc_log_likelihood


def demo_log_likelihood(actor: Actor, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """E log π(a|s) over demonstration pairs.

    For the tanh head :meth:`Actor.log_prob` clamps the actions to ±(1 − 1e-6) before atanh: demonstrations clipped
    to the action bounds would otherwise map to ±∞.
    """
    return actor.log_prob(obs, action).mean()


class SACBC:
    """A SAC agent (no prior) composed with the demonstration set its actor also clones."""

    metric_terms = SAC_BC_METRIC_TERMS

    def __init__(self, sac: KLSAC, demos: DemoSampler, config: SACBCConfig) -> None:
        if sac.config.use_prior:
            raise NppacError("SAC+BC builds on SAC without a prior: pass a KLSAC with use_prior=False")
        self.sac, self.demos, self.config = sac, demos, config

    @property
    def actor(self) -> Actor:
        return self.sac.actor

    @property
    def device(self) -> torch.device:
        return self.sac.device

    def update(self, batch: Batch) -> Metrics:
        """One gradient step on ``batch`` and a demonstration batch; its :data:`SAC_BC_METRIC_TERMS` by name."""
        return sac_bc_update(self, batch)

    def state_dict(self) -> dict[str, Any]:
        """SAC's networks, optimizers and α (the demonstrations are read again on resume)."""
        return self.sac.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sac.load_state_dict(state)

    def acting(self) -> Acting:
        return self.sac.acting()

    def before_online(self, init_metrics: Mapping[str, float]) -> None:
        self.sac.before_online(init_metrics)


def sac_bc_update(agent: SACBC, batch: Batch) -> Metrics:
    """SAC's critic and α steps; the actor step adds −λ E_D0[log π(a|s)]. No host syncs."""
    sac = agent.sac
    alpha = sac.log_alpha.detach().exp()
    critic = critic_step(sac, batch, alpha)

    sac.critic.requires_grad_(False)
    action, log_pi = sac.actor.sample(batch.obs)
    q_min = sac.critic(batch.obs, action).min(0).values
    # Drawn after SAC's own samples, so that with λ = 0 the step is SAC's, random numbers included.
    demo_obs, demo_action = agent.demos.sample(agent.config.demo_batch_size)
    bc_log_likelihood = demo_log_likelihood(sac.actor, demo_obs, demo_action)
    actor_loss = sac_bc_policy_loss(log_pi, q_min, alpha, bc_log_likelihood, agent.config.bc_weight)
    policy_grad_norm = optimizer_step(sac.actor_opt, actor_loss, sac.actor.parameters())
    sac.critic.requires_grad_(True)

    penalty = log_pi.detach()  # log π − log π0 with log π0 ≡ 0
    temperature_step(sac, penalty)
    soft_update(sac.critic_target, sac.critic, sac.config.tau)

    return {
        "next_log_pi_mean": critic.next_penalty, "q_target": critic.y.mean(), "q_mean": critic.q.mean(),
        "critic_loss": critic.loss, "critic_grad_norm": critic.grad_norm, "log_pi_mean": penalty.mean(),
        "policy_grad_norm": policy_grad_norm,
        "alpha": alpha, "bc_log_likelihood": bc_log_likelihood.detach(), "actor_loss": actor_loss.detach(),
    }
