"""Proposition 1 as a measurement: the actor-loss gradient norm against σ0 (DESIGN.md §1, §5.2).

The actor loss (DESIGN.md §3) for a reparameterized policy a = f_φ(ε; s) = μ_φ(s) + σ_φ(s) ε is

    J_π(φ) = E_s [ α (log π_φ(a|s) − log π0(a|s)) − min_k Q_k(s, a) ],

and log π0(a|s) = −½ Σ_i ((a_i − μ0,i)/σ0,i)² − Σ_i log σ0,i + const, so

    ∇_φ [−α log π0(a|s)] = α Σ_i (a_i − μ0,i)/σ0,i² · ∇_φ a_i :

for fixed |a − μ0| the gradient norm grows like 1/σ0² as σ0 → 0. The probes below hold
the critic term at zero: it does not depend on σ0, so it would only add a floor.

Two measurements:

* :func:`sigma0_sweep` — synthetic: μ0 is placed so that every sampled action sits at
  a fixed distance from it, and σ0 sweeps a log-spaced range.
* :func:`offset_probe` — a fitted prior's own (μ0, σ0) at demonstration states and at
  states pushed ``c`` per-dimension standard deviations away (``offset_states``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nppac.diagnostics.inputs import LabelledPrior
from nppac.distributions import gaussian_log_prob
from nppac.errors import NppacError
from nppac.priors.nn import hidden_layers

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
"""The actor's log-std clamp (DESIGN.md §3)."""


class GaussianPolicy(nn.Module):
    """A small online policy π_φ(a|s) = N(μ_φ(s), diag σ_φ(s)²) with tanh hidden layers."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        self.body, width = hidden_layers(obs_dim, hidden, nn.Tanh)
        self.mean_head = nn.Linear(width, act_dim)
        self.log_std_head = nn.Linear(width, act_dim)

    def forward(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ_φ(s), σ_φ(s)), each (batch, act_dim)."""
        h = self.body(states)
        return self.mean_head(h), self.log_std_head(h).clamp(LOG_STD_MIN, LOG_STD_MAX).exp()


def actor_loss(
    policy: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], states: torch.Tensor, eps: torch.Tensor,
    prior_mean: torch.Tensor, prior_std: torch.Tensor, alpha: float,
) -> torch.Tensor:
    """J_π(φ) with a = μ_φ(s) + σ_φ(s) ε and the critic term held at zero."""
    from nppac.agents.kl_sac import policy_loss

    mean, std = policy(states)
    a = mean + std * eps
    log_pi = gaussian_log_prob(a, mean, std)
    log_prior = gaussian_log_prob(a, prior_mean, prior_std)
    return policy_loss(log_pi, log_prior, torch.zeros_like(log_pi), alpha)


@dataclass(frozen=True)
class ProbeConfig:
    """Settings of both gradient probes."""

    alpha: float = 0.1
    """KL temperature α in the actor loss."""
    distance: float = 0.5
    """Sweep: |a_i − μ0,i| for every action dimension i."""
    sigma0: tuple[float, ...] = tuple(float(x) for x in np.logspace(-3, 0, 13))
    """Sweep: the σ0 values (shared by all action dimensions)."""
    offsets: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
    """Offset probe: noise levels c of ``offset_states`` (0 = the demonstration states)."""
    n_states: int = 512
    """States per sweep point and per offset level."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden widths of the probe policy."""
    seed: int = 0
    """Seeds the policy's weights, ε and the state sampling."""

    def __post_init__(self) -> None:
        if not self.alpha > 0:
            raise NppacError(f"--alpha {self.alpha}: use a positive temperature")
        if min(self.sigma0) <= 0:
            raise NppacError(f"σ0 sweep {self.sigma0}: every σ0 must be positive")
        if min(self.offsets) < 0:
            raise NppacError(f"offsets {self.offsets}: use non-negative multiples of the state std")


@dataclass(frozen=True)
class SweepResult:
    """‖∇_φ J_π(φ)‖ at fixed |a − μ0| for each σ0."""

    sigma0: np.ndarray
    grad_norm: np.ndarray

    @property
    def reference(self) -> np.ndarray:
        """The analytic scaling ∝ 1/σ0², anchored at the smallest σ0."""
        i = int(np.argmin(self.sigma0))
        return self.grad_norm[i] * (self.sigma0[i] / self.sigma0) ** 2

    def loglog_slope(self, n_smallest: int = 4) -> float:
        """Least-squares slope of log ‖∇‖ against log σ0 over the ``n_smallest`` σ0 (≈ −2)."""
        order = np.argsort(self.sigma0)[:n_smallest]
        return float(np.polyfit(np.log(self.sigma0[order]), np.log(self.grad_norm[order]), 1)[0])

    def to_json(self) -> dict[str, Any]:
        return {"sigma0": self.sigma0.tolist(), "grad_norm": self.grad_norm.tolist(),
                "reference_inverse_square": self.reference.tolist(), "loglog_slope_small_sigma0": self.loglog_slope()}


@dataclass(frozen=True)
class OffsetLevel:
    """Per-state gradient norms of the actor loss under a fitted prior at one offset level."""

    offset: float
    sigma0_mean: float
    """Mean of the prior's σ0 over states and action dimensions."""
    grad_norms: np.ndarray = field(repr=False)
    """(n_states,) ‖∇_φ‖ of each state's loss term."""
    batch_grad_norm: float
    """‖∇_φ J_π(φ)‖ of the loss averaged over the states (what training logs)."""

    def to_json(self) -> dict[str, Any]:
        q10, q50, q90 = np.quantile(self.grad_norms, [0.1, 0.5, 0.9])
        return {"offset": self.offset, "sigma0_mean": self.sigma0_mean,
                "grad_norm_mean": float(self.grad_norms.mean()), "grad_norm_median": float(q50),
                "grad_norm_q10": float(q10), "grad_norm_q90": float(q90), "batch_grad_norm": self.batch_grad_norm}


@dataclass(frozen=True)
class OffsetProbe:
    """One prior's offset levels."""

    label: str
    source: str
    levels: list[OffsetLevel]

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "source": self.source, "levels": [lv.to_json() for lv in self.levels]}


def _grad_norm(loss: torch.Tensor, policy: nn.Module) -> float:
    grads = torch.autograd.grad(loss, list(policy.parameters()))
    return float(torch.sqrt(sum((g.pow(2).sum() for g in grads), torch.zeros((), device=loss.device))))


def _sample(states: np.ndarray, n: int, generator: torch.Generator) -> torch.Tensor:
    index = torch.randint(len(states), (n,), generator=generator)
    return torch.as_tensor(states, dtype=torch.float32)[index]


def sweep_grad_norms(
    policy: nn.Module, states: torch.Tensor, eps: torch.Tensor,
    sigma0: Sequence[float], distance: float, alpha: float,
) -> np.ndarray:
    """‖∇_φ J_π(φ)‖ for each σ0, with μ0 placed so that every a_i − μ0,i = ``distance``."""
    with torch.no_grad():
        mean, std = policy(states)
        # μ0 is a constant (no gradient flows into it) at a fixed offset from the sampled action.
        prior_mean = mean + std * eps - distance
    norms = []
    for s0 in sigma0:
        loss = actor_loss(policy, states, eps, prior_mean, torch.full_like(prior_mean, s0), alpha)
        norms.append(_grad_norm(loss, policy))
    return np.asarray(norms)


def sigma0_sweep(states: np.ndarray, act_dim: int, config: ProbeConfig = ProbeConfig()) -> SweepResult:
    """:func:`sweep_grad_norms` for a freshly initialized probe policy on ``config.n_states`` of ``states``."""
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    policy = GaussianPolicy(states.shape[1], act_dim, config.hidden)
    s = _sample(states, config.n_states, generator)
    eps = torch.randn(config.n_states, act_dim, generator=generator)
    norms = sweep_grad_norms(policy, s, eps, config.sigma0, config.distance, config.alpha)
    return SweepResult(np.asarray(config.sigma0, dtype=np.float64), norms)


def _per_state_grad_norms(policy: nn.Module, states: torch.Tensor, eps: torch.Tensor,
                          prior_mean: torch.Tensor, prior_std: torch.Tensor, alpha: float) -> np.ndarray:
    from torch.func import functional_call, grad, vmap

    params = {k: v.detach() for k, v in policy.named_parameters()}

    def one_state(p: dict[str, torch.Tensor], s: torch.Tensor, e: torch.Tensor,
                  m0: torch.Tensor, s0: torch.Tensor) -> torch.Tensor:
        def with_params(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return functional_call(policy, p, (x,))

        return actor_loss(with_params, s[None], e[None], m0[None], s0[None], alpha)

    grads = vmap(grad(one_state), in_dims=(None, 0, 0, 0, 0))(params, states, eps, prior_mean, prior_std)
    squared = sum(g.flatten(1).pow(2).sum(1) for g in grads.values())
    return squared.sqrt().numpy()


def offset_probe(
    labelled: LabelledPrior, states: np.ndarray, config: ProbeConfig = ProbeConfig(),
    progress: Callable[[], None] | None = None,
) -> OffsetProbe:
    """Gradient norms with the prior's own (μ0, σ0) at each offset level (``progress`` per level)."""
    from nppac.priors import offset_states

    torch.manual_seed(config.seed)
    policy = GaussianPolicy(states.shape[1], labelled.prior.act_dim, config.hidden)
    levels = []
    for c in config.offsets:
        s = torch.as_tensor(offset_states(states, c, n=config.n_states, seed=config.seed), dtype=torch.float32)
        generator = torch.Generator().manual_seed(config.seed)
        eps = torch.randn(len(s), labelled.prior.act_dim, generator=generator)
        with torch.no_grad():
            prior_mean, prior_std = (t.detach().float().cpu() for t in labelled.prior.predict(s))
        per_state = _per_state_grad_norms(policy, s, eps, prior_mean, prior_std, config.alpha)
        batch = _grad_norm(actor_loss(policy, s, eps, prior_mean, prior_std, config.alpha), policy)
        levels.append(OffsetLevel(float(c), float(prior_std.double().mean()), per_state, batch))
        if progress is not None:
            progress()
    return OffsetProbe(labelled.label, labelled.source, levels)


def plot_gradients(sweep: SweepResult, probes: Sequence[OffsetProbe], config: ProbeConfig, path: str | Path) -> Path:
    """Three panels: the σ0 sweep with its 1/σ0² reference; per-offset gradient norms; per-offset σ0."""
    from nppac.diagnostics import style

    with style.context():
        fig, axes = style.subplots(3)
        ax_sweep, ax_grad, ax_std = axes[0]

        ax_sweep.loglog(sweep.sigma0, sweep.grad_norm, "o-", color=style.COLORS[0], label="measured")
        ax_sweep.loglog(sweep.sigma0, sweep.reference, "--", color="gray", label=r"$\propto 1/\sigma_0^2$ (analytic)")
        ax_sweep.set_xlabel(r"prior std $\sigma_0$")
        ax_sweep.set_ylabel(r"actor-loss gradient norm $\|\nabla_\phi J_\pi(\phi)\|$")
        ax_sweep.set_title(
            rf"Proposition 1: $|a_i - \mu_{{0,i}}| = {config.distance:g}$, $\alpha = {config.alpha:g}$" + "\n"
            + rf"log-log slope at small $\sigma_0$: {sweep.loglog_slope():.2f}"
        )
        ax_sweep.legend()

        x = np.arange(len(config.offsets))
        ticks = ["data" if c == 0 else f"{c:g}" for c in config.offsets]
        for i, probe in enumerate(probes):
            color = style.COLORS[i % len(style.COLORS)]
            summary = [lv.to_json() for lv in probe.levels]
            # The median, not the mean: a few states with σ0 → 0 dominate the mean by orders of magnitude.
            median = [d["grad_norm_median"] for d in summary]
            ax_grad.fill_between(x, [d["grad_norm_q10"] for d in summary], [d["grad_norm_q90"] for d in summary],
                                 color=color, alpha=0.2, linewidth=0)
            ax_grad.plot(x, median, "o-", color=color, label=probe.label)
            ax_std.plot(x, [lv.sigma0_mean for lv in probe.levels], "o-", color=color, label=probe.label)
        ax_grad.set_ylabel("per-state gradient norm (median, 10–90 %)")
        ax_grad.set_title("Gradient norm under the fitted prior")
        ax_std.set_ylabel(r"prior std $\sigma_0$ (mean over states, actions)")
        ax_std.set_title("Prior std away from the data")
        for ax in (ax_grad, ax_std):
            ax.set_yscale("log")
            ax.set_xticks(x, ticks)
            ax.set_xlabel("state offset c (per-dim data std)")
            ax.legend()
        return style.save_figure(fig, path)
