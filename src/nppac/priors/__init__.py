"""Behavioral reference policies π0: the GP prior (non-parametric) and the NN prior (MLE baseline).

Both expose π0(·|s) = N(μ0(s), diag σ0²(s)) over normalized actions
(:class:`~nppac.priors.base.Prior`); :func:`combine_priors` makes the variance
ablation's mean-std prior (one prior's mean, another's σ0). Fit one with :func:`fit_prior`, reload it with
:func:`load_prior`, summarize it with :func:`prior_metrics`.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from nppac.data.demos import Demonstrations
from nppac.errors import NppacError
from nppac.priors.base import Prior
from nppac.priors.common import Progress
from nppac.priors.gp import GPConfig, GPPrior, VarianceEstimate
from nppac.priors.kernels import KERNELS
from nppac.priors.kinds import PRIOR_KINDS, load_prior
from nppac.priors.mean_std import MeanStdPrior, combine_priors
from nppac.priors.metrics import OFFSETS, check_fitted, mean_action, offset_states, prior_metrics
from nppac.priors.nn import NNConfig, NNPrior, tanh_gaussian_log_prob


def make_prior(kind: str, **settings: Any) -> Prior:
    """An unfitted prior of ``kind`` whose config takes ``settings`` (field names of GPConfig / NNConfig)."""
    if kind not in PRIOR_KINDS:
        raise NppacError(f"unknown prior kind {kind!r}; choose one of: {', '.join(PRIOR_KINDS)}")
    cls, config_cls = PRIOR_KINDS[kind]
    known = {f.name for f in fields(config_cls)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise NppacError(f"unknown {kind} prior setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(config_cls(**settings))


def fit_prior(demos: Demonstrations, kind: str, progress: Progress | None = None,
              from_gpytorch: str | Path | None = None, allow_narrow: bool = False,
              **settings: Any) -> tuple[Prior, dict[str, Any]]:
    """Fit a prior of ``kind`` to ``demos``; returns (prior, :func:`prior_metrics` + the fit summary under "fit").

    ``from_gpytorch`` (GP only): take the hyperparameters of that gpytorch checkpoint instead of learning them
    (:mod:`nppac.priors.gpytorch_import`); ``settings`` must then name the kernel. A prior that cannot be right is
    refused (:func:`~nppac.priors.metrics.check_fitted`; ``allow_narrow`` keeps one whose σ0 is narrow everywhere),
    and so is a fit that runs out of memory.
    """
    source = demos.source or "the demonstrations"
    try:
        if from_gpytorch is not None:
            from nppac.priors.gpytorch_import import import_gpytorch

            if kind != "gp":
                raise NppacError(f"a gpytorch checkpoint gives a GP prior, not a {kind} prior")
            settings = {k: v for k, v in settings.items() if k not in ("iters", "seed")}
            imported = import_gpytorch(from_gpytorch, demos, settings.pop("kernel", "matern52"), settings)
            prior: Prior = imported
            fit_info, where = dict(imported.fit_info), f"{from_gpytorch} conditioned on {source}"
        else:
            prior = make_prior(kind, **settings)
            fit_info, where = prior.fit(demos, progress=progress), f"the {kind} prior fitted on {source}"
        check_fitted(prior, demos, where, allow_narrow)
        metrics = prior_metrics(prior, demos)
    except (RuntimeError, MemoryError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if not (isinstance(err, (MemoryError, torch.OutOfMemoryError)) or "not enough memory" in reason
                or "out of memory" in reason):
            raise
        fix = ("learn on fewer states (--fit-subset), condition on fewer inducing states (--max-exact, "
               "--num-inducing), or fit" if kind == "gp" else "fit")
        raise NppacError(f"fitting the {kind} prior on {len(demos.states)} states from {source} ran out of memory "
                         f"({reason[:200]}); {fix} on fewer demonstrations") from None
    metrics["fit"] = fit_info
    return prior, metrics


def use_variance(prior: Prior, estimate: VarianceEstimate, rank: int = 100, seed: int = 0) -> bool:
    """Make a GP prior (or a mean-std prior's GP σ0) predict the ``estimate`` variance (exact or love).

    Returns whether σ0 comes from a GP that now uses it; NN priors have no LOVE estimate and keep their σ0.
    """
    target = prior.std_prior if isinstance(prior, MeanStdPrior) else prior
    if isinstance(target, GPPrior):
        target.set_variance(estimate, rank=rank, seed=seed)
        return True
    return False


__all__ = ["GPConfig", "GPPrior", "KERNELS", "MeanStdPrior", "NNConfig", "NNPrior", "OFFSETS", "PRIOR_KINDS",
           "combine_priors", "Prior", "fit_prior", "load_prior", "make_prior", "mean_action", "offset_states",
           "prior_metrics", "tanh_gaussian_log_prob", "use_variance"]
