"""Published GP reference policies: a gpytorch multitask GP's state dict as a :class:`GPPrior`.

The published N-PPAC saves its prior as the ``state_dict()`` of a gpytorch exact
multitask GP: a constant mean per action, an ICM task covariance (``IndexKernel``,
B = F Fᵀ + diag(softplus(raw_var))), an ARD state kernel on the raw (unstandardized)
states, and a multitask Gaussian likelihood with a per-action and a shared noise, each
softplus(raw) + 1e-4. That is nppac's GP model exactly, so the import maps each tensor
to its :class:`~nppac.priors.gp.ICMHyperparameters` counterpart and conditions on the
demonstrations the checkpoint was trained on. The state dict holds no kernel name:
the caller gives it. A ``ScaleKernel`` around the state kernel is folded into B.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from nppac.data.demos import Demonstrations
from nppac.errors import NppacError
from nppac.priors.common import check_positive, check_real
from nppac.priors.gp import DTYPE, GPConfig, GPPrior
from nppac.priors.kernels import KernelName, check_kernel

GPYTORCH_MIN_NOISE = 1e-4
"""gpytorch's default lower bound of a Gaussian likelihood's noises (``GreaterThan(1e-4)``)."""

_TASK = "covar_module.task_covar_module."
_DATA = "covar_module.data_covar_module."
_NOISE_SHARED = "likelihood.raw_noise"
_NOISE_TASK = ("likelihood.noise_covar.raw_noise", "likelihood.raw_task_noises")
"""The per-action noise's name in gpytorch 1.0 (the published code's) and in later versions."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A ``torch.save``d state dict of tensors, loaded without unpickling code (``weights_only``)."""
    path = Path(path)
    if not path.is_file():
        raise NppacError(f"{path} not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise NppacError(f"{path}: not a torch state dict of tensors (torch.load without unpickling code "
                         f"failed: {type(err).__name__}); pass the gpytorch model's saved state_dict()") from None
    if not isinstance(data, dict) or not data or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise NppacError(f"{path}: expected a gpytorch model's state dict (names → tensors), "
                         f"found a {type(data).__name__}")
    return {str(k): v for k, v in data.items()}


def _softplus(t: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.softplus(t.to(DTYPE))


def _require(state: dict[str, torch.Tensor], key: str | tuple[str, ...], path: Path) -> torch.Tensor:
    """The tensor under ``key`` (or the first of several names it has had across gpytorch versions)."""
    names = (key,) if isinstance(key, str) else key
    for name in names:
        if name in state:
            check_real(state[name], name, path)
            return state[name]
    raise NppacError(f"{path}: tensor {names[0]!r} is missing; this is not a gpytorch multitask GP "
                     "(MultitaskMean of ConstantMeans, MultitaskKernel, MultitaskGaussianLikelihood)")


def hyperparameters(state: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """The model's quantities from its raw parameters: mean, lengthscale, F, v, per-action and shared noise."""
    factor = _require(state, _TASK + "covar_factor", path).to(DTYPE)
    if factor.ndim != 2:
        raise NppacError(f"{path}: {_TASK}covar_factor has shape {tuple(factor.shape)}; expected (T, rank)")
    act_dim = factor.shape[0]
    var = _softplus(_require(state, _TASK + "raw_var", path)).reshape(-1)
    outputscale = torch.ones((), dtype=DTYPE)
    if _DATA + "raw_outputscale" in state:
        outputscale = _softplus(_require(state, _DATA + "raw_outputscale", path)).reshape(())
        raw_ls = _require(state, _DATA + "base_kernel.raw_lengthscale", path)
    else:
        raw_ls = _require(state, _DATA + "raw_lengthscale", path)
    means = [_require(state, (f"mean_module.base_means.{j}.constant", f"mean_module.base_means.{j}.raw_constant"),
                      path) for j in range(act_dim)]
    out = {
        "mean": torch.cat([m.reshape(1).to(DTYPE) for m in means]),
        "lengthscale": _softplus(raw_ls).reshape(-1),
        "w": factor * outputscale.sqrt(),
        "v": var * outputscale,
        "noise": _softplus(_require(state, _NOISE_TASK, path)).reshape(-1),
        "shared_noise": _softplus(_require(state, _NOISE_SHARED, path)).reshape(-1),
    }
    for name, length in (("v", act_dim), ("noise", act_dim), ("shared_noise", 1)):
        if out[name].numel() != length:
            raise NppacError(f"{path}: the {name} tensor has {out[name].numel()} entries; expected {length}")
    bad = [k for k, v in out.items() if not bool(torch.isfinite(v).all())]
    if bad:
        raise NppacError(f"{path}: non-finite values in the {bad[0]} parameters")
    # softplus(raw) rounds to 0 for raw below about −745: a zero lengthscale or variance has no logarithm.
    check_positive(path, {"lengthscale": out["lengthscale"], "task variance v": out["v"]},
                   "its raw value is so negative that softplus rounds it to 0; this checkpoint cannot be a fitted GP")
    return out


def import_gpytorch(path: str | Path, demos: Demonstrations, kernel: str,
                    settings: dict[str, Any] | None = None) -> GPPrior:
    """A fitted :class:`GPPrior` with the checkpoint's hyperparameters, conditioned on ``demos``.

    States are not standardized (the published model's lengthscales are in raw units).
    ``settings`` are further :class:`GPConfig` fields (e.g. ``variance="love"``, ``device``).
    """
    path = Path(path)
    name: KernelName = check_kernel(kernel)
    hyper = hyperparameters(read_state_dict(path), path)
    obs_dim, act_dim = demos.states.shape[1], demos.actions.shape[1]
    if hyper["lengthscale"].numel() != obs_dim or hyper["mean"].numel() != act_dim:
        raise NppacError(f"{path}: the checkpoint is a GP from {hyper['lengthscale'].numel()}-dim states to "
                         f"{hyper['mean'].numel()} actions, but {demos.source or 'the demonstrations'} has "
                         f"{obs_dim}-dim states and {act_dim}-dim actions")
    config = GPConfig(kernel=name, rank=hyper["w"].shape[1], iters=0, min_noise=GPYTORCH_MIN_NOISE,
                      **(settings or {}))
    prior = GPPrior(config, obs_dim, act_dim)
    h = prior.hyper
    with torch.no_grad():
        h.mean.copy_(hyper["mean"])
        h.log_lengthscale.copy_(hyper["lengthscale"].log())
        h.w.copy_(hyper["w"])
        h.log_v.copy_(hyper["v"].log())
        # nppac's D_j = (min + e^{log_noise_j}) + (min + e^{log_shared}): gpytorch's softplus(raw) + 1e-4 each.
        h.log_noise.copy_(hyper["noise"].clamp_min(math.ulp(0.0)).log())
        h.log_shared_noise.copy_(hyper["shared_noise"].clamp_min(math.ulp(0.0)).log())
    prior.condition(demos.states, demos.actions)  # the scaler stays the identity: raw states
    prior.fit_info = {"imported_from": str(path), "format": "gpytorch state dict", "kernel": name,
                      "conditioning": prior.conditioning, **prior.hyperparameter_summary()}
    return prior
