"""Summary numbers of a fitted prior, and the off-data probe states they use."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nppac.data.demos import Demonstrations
from nppac.errors import NppacError
from nppac.priors.base import Prior
from nppac.priors.common import as_numpy, check_predictions
from nppac.priors.gp import GPPrior

log = logging.getLogger(__name__)

OFFSETS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
"""Multiples c of the per-dimension state std used by ``std_offset``."""
SIGMA0_FLOOR = 0.05
"""A fitted prior whose median σ0 in some action dimension stays below this at the demonstrations and at every offset
of :data:`OFFSETS` is refused (unless allowed): on actions in [−1, 1] it pins the policy to μ0 everywhere, at a KL of
about 1/(2σ0²) ≥ 200 per unit of action error. A GP's σ0 is at least √(2·min_noise) = 0.014; fitted to a constant
action dimension it stays near 0.02 even 8 state-stds from the data. The published pen GP's widest σ0 is 0.20–0.65
per dimension."""
SIGMA0_NARROW = 0.1
"""Below this widest σ0 (but above :data:`SIGMA0_FLOOR`, or allowed) a fit is kept with a warning."""


@torch.no_grad()
def check_fitted(prior: Prior, demos: Demonstrations, where: str | Path, allow_narrow: bool = False) -> None:
    """Refuse a freshly fitted or imported prior that cannot be right: non-finite or non-positive parameters (where
    the prior can tell), a μ0 or σ0 at the demonstrations that is not finite and positive, or a σ0 narrower than
    :data:`SIGMA0_FLOOR` at the demonstrations and away from them (unless ``allow_narrow``; a warning then, as
    below :data:`SIGMA0_NARROW`)."""
    check_parameters = getattr(prior, "check_parameters", None)
    if check_parameters is not None:
        check_parameters(where)
    mean, std = prior.predict(torch.from_numpy(demos.states))
    check_predictions(where, mean, std, "demonstration state")
    at_data = std.median(0).values
    far = torch.stack([prior.predict(torch.from_numpy(offset_states(demos.states, c)))[1].median(0).values
                       for c in OFFSETS])
    widest = torch.maximum(at_data, far.max(0).values)
    dim = int(widest.argmin())
    value = float(widest[dim])
    if value >= SIGMA0_NARROW:
        return
    detail = (f"{where}: σ0 of action dim {dim} is at most {value:.3g} (median {float(at_data[dim]):.3g} at the "
              f"demonstrations, {float(far[-1, dim]):.3g} at {OFFSETS[-1]:g} state-stds from them; the demonstrated "
              f"actions' std in that dim is {float(demos.actions[:, dim].std()):.3g})")
    if value < SIGMA0_FLOOR and not allow_narrow:
        raise NppacError(f"{detail}: the prior would pin the policy to μ0 everywhere, at a KL of ~1/(2σ0²) per unit "
                         "of action error; drop constant action dims from the demonstrations, or keep it with "
                         "--allow-narrow-prior (allow_narrow=True)")
    log.warning("%s: a KL toward it grows as 1/(2σ0²) even far from the demonstrations; drop (near-)constant action "
                "dims from the demonstrations", detail)


def offset_states(states: np.ndarray | torch.Tensor, c: float, n: int = 512, seed: int = 0) -> np.ndarray:
    """``n`` probe states s_i + c · std(s) ⊙ ε, ε ~ N(0, I), around random demonstrated states s_i.

    ``std(s)`` is the per-dimension std of ``states``; the draw is fixed by ``seed``
    (the same states for every c, only the offset scales), float32 (n, obs_dim).
    """
    base = as_numpy(states).astype(np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(base), size=n)
    noise = rng.standard_normal((n, base.shape[1]))
    return (base[idx] + c * base.std(0) * noise).astype(np.float32)


def mean_action(prior: Prior, states: torch.Tensor) -> torch.Tensor:
    """The prior's deterministic action: μ0(s) (tanh(μ) for squashed priors), clipped to [−1, 1]."""
    mean = prior_mean(prior, states)
    return torch.tanh(mean) if getattr(prior, "squashed", False) else mean.clamp(-1.0, 1.0)


def prior_mean(prior: Prior, states: torch.Tensor) -> torch.Tensor:
    """μ0(s): by the prior's ``predict_mean`` where it has one (the GP's skips the variance), else ``predict``."""
    predict_mean = getattr(prior, "predict_mean", None)
    return predict_mean(states) if predict_mean is not None else prior.predict(states)[0]


@torch.no_grad()
def prior_metrics(prior: Prior, demos: Demonstrations) -> dict[str, Any]:
    """kind, n, dims, train_rmse, train_nll, mll_per_entry (GP), std_on_data, std_offset, fit_seconds.

    ``train_nll`` is the mean of −log π0(a_i|s_i) per action entry; ``mll_per_entry``
    the exact log marginal likelihood of all n·T targets divided by n·T (None for
    the NN); ``std_offset[c]`` the mean σ0 over :func:`offset_states` (c, seed 0).
    """
    states_np, actions_np = demos.states, demos.actions
    n, act_dim = actions_np.shape
    states, actions = torch.from_numpy(states_np), torch.from_numpy(actions_np)
    _, std = prior.predict(states)
    rmse = (mean_action(prior, states) - actions).pow(2).mean().sqrt()
    nll = -prior.log_prob(states, actions).sum() / (n * act_dim)
    mll = prior.log_marginal_likelihood(states_np, actions_np) / (n * act_dim) if isinstance(prior, GPPrior) else None
    std_offset = {
        f"{c:g}": float(prior.predict(torch.from_numpy(offset_states(states_np, c)))[1].mean()) for c in OFFSETS
    }
    return {
        "kind": prior.kind, "n": int(n), "obs_dim": int(states_np.shape[1]), "act_dim": int(act_dim),
        "train_rmse": float(rmse), "train_nll": float(nll), "mll_per_entry": mll,
        "std_on_data": float(std.mean()), "std_offset": std_offset, "fit_seconds": getattr(prior, "fit_seconds", None),
    }
