"""The NN reference policy: behavioral cloning by maximum likelihood (the pathological baseline).

An MLP maps a standardized state to a mean μ_ψ(s) and a log-std log σ_ψ(s) and is
trained to maximize Σ_i log N(a_i; μ_ψ(s_i), diag σ_ψ²(s_i)) (DESIGN.md §2). Nothing
keeps σ_ψ large away from the demonstrations: it collapses there, which is the
pathology the GP prior fixes.

Variants:

* ``gaussian``: π0 = N(μ_ψ, σ_ψ²) over the normalized actions.
* ``tanh_gaussian``: a = tanh(u), u ~ N(μ_ψ, σ_ψ²); ``log_prob`` is the exact density
  of a (with the Jacobian, log p(a) = log N(atanh a; μ, σ²) − Σ log(1 − a²)), while
  ``predict`` returns the *pre-squash* (μ_ψ, σ_ψ) and ``squashed`` is True, so
  consumers know that tanh(μ_ψ) is the mean action.
* ``fixed_std``: only the mean is learned (MLE is then least squares); σ = ``fixed_std``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from nppac.data.demos import Demonstrations
from nppac.devices import resolve_device
from nppac.distributions import gaussian_log_prob
from nppac.errors import NonFiniteError, NppacError
from nppac.priors.common import (
    Progress,
    check_data,
    check_positive,
    check_predictions,
    check_states,
    load_weights,
    loaded,
    read_fitted,
    saved_settings,
    write_saved,
)
from nppac.settings import typed_fields

Variant = Literal["gaussian", "tanh_gaussian", "fixed_std"]
_TANH_EPS = 1e-6
"""Demonstrated actions sit exactly at ±1; atanh needs them strictly inside."""


@dataclass
class NNConfig:
    """Settings of the MLE neural reference policy."""

    variant: Variant = "gaussian"
    """gaussian, tanh_gaussian or fixed_std (module docstring)."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the ReLU MLP."""
    lr: float = 1e-3
    """Adam learning rate."""
    batch_size: int = 256
    """Mini-batch size."""
    iters: int = 300
    """Maximum number of epochs."""
    patience: int = 20
    """Stop after this many epochs without a better held-out log-likelihood."""
    val_fraction: float = 0.1
    """Fraction of the demonstrations held out for early stopping."""
    fixed_std: float = 0.1
    """σ of the fixed_std variant."""
    log_std_min: float = -20.0
    """Lower clamp of the log-std head (low enough not to hide the collapse)."""
    log_std_max: float = 2.0
    """Upper clamp of the log-std head."""
    device: str = "cpu"
    """Device for training and prediction."""
    seed: int = 0
    """Seed of the weights, the split and the mini-batch order."""

    def __post_init__(self) -> None:
        typed_fields(self)  # the variant among its values

    def validate(self) -> NNConfig:
        """Check the values; raises :class:`NppacError` naming the bad field."""
        resolve_device(self.device)
        checks = {
            "hidden": len(self.hidden) >= 1 and min(self.hidden) >= 1,
            "lr": self.lr > 0, "batch_size": self.batch_size >= 1, "iters": self.iters >= 0,
            "patience": self.patience >= 1, "val_fraction": 0.0 <= self.val_fraction < 1.0,
            "fixed_std": self.fixed_std > 0, "log_std_max": self.log_std_min < self.log_std_max,
        }
        for name, ok in checks.items():
            if not ok:
                raise NppacError(f"NN setting {name}={getattr(self, name)!r} is invalid")
        return self


def hidden_layers(width: int, hidden: Sequence[int], activation: type[nn.Module]) -> tuple[nn.Sequential, int]:
    """Linear layers of the ``hidden`` widths from an input of ``width``, each followed by ``activation``: the trunk
    that a Gaussian's mean and log σ heads read, and its output width."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip([width, *hidden], hidden):
        layers += [nn.Linear(n_in, n_out), activation()]
    return nn.Sequential(*layers), hidden[-1] if hidden else width


class GaussianMLP(nn.Module):
    """Standardized state → (μ, log σ) through a ReLU MLP with two linear heads."""

    x_mean: torch.Tensor
    x_scale: torch.Tensor

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], learn_std: bool) -> None:
        super().__init__()
        self.trunk, width = hidden_layers(obs_dim, hidden, nn.ReLU)
        self.mean_head = nn.Linear(width, act_dim)
        self.log_std_head = nn.Linear(width, act_dim) if learn_std else None
        self.register_buffer("x_mean", torch.zeros(obs_dim))
        self.register_buffer("x_scale", torch.ones(obs_dim))

    def forward(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = self.trunk((states - self.x_mean) / self.x_scale)
        return self.mean_head(z), None if self.log_std_head is None else self.log_std_head(z)


def tanh_gaussian_log_prob(actions: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log p(a) for a = tanh(u), u ~ N(mean, diag std²): log N(atanh a) − Σ log(1 − a²)."""
    a = actions.clamp(-1.0 + _TANH_EPS, 1.0 - _TANH_EPS)
    return gaussian_log_prob(torch.atanh(a), mean, std) - torch.log1p(-a.pow(2)).sum(-1)


class NNPrior:
    """Behavioral reference policy π0 = an MLP Gaussian fitted by maximum likelihood.

    Build with an :class:`NNConfig`; :meth:`fit` sizes the network from the demonstrations.
    """

    kind = "nn"

    def __init__(self, config: NNConfig | None = None, obs_dim: int = 1, act_dim: int = 1) -> None:
        self.config = (config or NNConfig()).validate()
        self._build(obs_dim, act_dim)

    def _build(self, obs_dim: int, act_dim: int) -> None:
        """A fresh, unfitted network for the given dimensions (seeded)."""
        self.obs_dim, self.act_dim = obs_dim, act_dim
        with torch.random.fork_rng(devices=[]):  # seeded weights without touching the caller's RNG
            torch.manual_seed(self.config.seed)
            self.net = GaussianMLP(obs_dim, act_dim, self.config.hidden, self.config.variant != "fixed_std")
        self.net.to(self.config.device)
        self.fitted = False
        self.fit_seconds: float | None = None
        self.fit_info: dict[str, Any] = {}

    @property
    def squashed(self) -> bool:
        """True for tanh_gaussian: ``predict`` gives the pre-squash Gaussian, tanh(mean) is the mean action."""
        return self.config.variant == "tanh_gaussian"

    @property
    def device(self) -> torch.device:
        return self.net.mean_head.weight.device

    def _distribution(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(states)
        if log_std is None:
            return mean, torch.full_like(mean, self.config.fixed_std)
        return mean, log_std.clamp(self.config.log_std_min, self.config.log_std_max).exp()

    def _log_prob(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        density = tanh_gaussian_log_prob if self.squashed else gaussian_log_prob
        return density(actions, *self._distribution(states))

    def fit(self, demos: Demonstrations, progress: Progress | None = None) -> dict[str, Any]:
        """Maximize the log-likelihood with Adam on mini-batches, early-stopped on a held-out split."""
        start = time.perf_counter()
        cfg = self.config
        states_np, actions_np = check_data(demos.states, demos.actions)
        self._build(states_np.shape[1], actions_np.shape[1])
        dev = self.device
        scale = states_np.std(0)
        self.net.x_mean.copy_(torch.as_tensor(states_np.mean(0)))
        self.net.x_scale.copy_(torch.as_tensor(np.where(scale > 1e-6, scale, 1.0)))
        states, actions = torch.as_tensor(states_np, device=dev), torch.as_tensor(actions_np, device=dev)
        generator = torch.Generator().manual_seed(cfg.seed)
        order = torch.randperm(len(states), generator=generator)
        n_val = int(round(cfg.val_fraction * len(states))) if len(states) >= 10 else 0
        val, train = order[:n_val].to(dev), order[n_val:].to(dev)
        opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        best, best_state, best_epoch, epoch = -math.inf, copy.deepcopy(self.net.state_dict()), 0, 0
        stage = f"NN prior ({cfg.variant}, {len(train)} train / {n_val} held out)"
        for epoch in range(1, cfg.iters + 1):
            self.net.train()
            for batch in torch.split(train[torch.randperm(len(train), generator=generator).to(dev)], cfg.batch_size):
                loss = -self._log_prob(states[batch], actions[batch]).mean() / self.act_dim
                if not torch.isfinite(loss):
                    raise NonFiniteError(f"NN prior negative log-likelihood became {loss.item()} in epoch {epoch}; "
                                         "try a smaller lr")
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                held_out = val if n_val else train
                score = float(self._log_prob(states[held_out], actions[held_out]).mean()) / self.act_dim
            if score > best:
                best, best_state, best_epoch = score, copy.deepcopy(self.net.state_dict()), epoch
            if progress:
                progress(stage, epoch, cfg.iters)
            if epoch - best_epoch >= cfg.patience:
                break
        self.net.load_state_dict(best_state)
        self.net.eval()
        self.fitted = True
        self.fit_seconds = time.perf_counter() - start
        self.fit_info = {"variant": cfg.variant, "epochs": epoch, "best_epoch": best_epoch,
                         "held_out": n_val, "held_out_log_lik_per_entry": best, "fit_seconds": self.fit_seconds}
        return dict(self.fit_info)

    @torch.no_grad()
    def predict(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, σ), each (batch, act_dim), on the device and in the float dtype of ``states``.

        For ``tanh_gaussian`` these are the pre-squash Gaussian's (see ``squashed``).
        """
        if not self.fitted:
            raise NppacError("NN prior is not fitted: call fit() or load a saved prior first")
        check_states(states, self.obs_dim)
        out_dtype = states.dtype if states.is_floating_point() else torch.float32
        self.net.eval()
        parts = [self._distribution(block) for block in torch.split(states.to(self.device, torch.float32), 65536)]
        mean, std = (torch.cat(column).to(states.device, out_dtype) for column in zip(*parts))  # never no block
        return mean, std

    @torch.no_grad()
    def log_prob(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log π0(a|s) summed over action dimensions, (batch,): Gaussian, or tanh-Gaussian with its Jacobian."""
        mean, std = self.predict(states)
        density = tanh_gaussian_log_prob if self.squashed else gaussian_log_prob
        return density(actions.to(mean), mean, std)

    def check_parameters(self, where: str | Path) -> None:
        """Refuse a network with non-finite weights or a state scale that is not positive, or whose prediction at
        the center of its state scaler is not finite."""
        with torch.no_grad():
            check_positive(where, {"x_scale": self.net.x_scale}, "re-fit the prior")
            for name, tensor in self.net.state_dict().items():
                if not bool(torch.isfinite(tensor).all()):
                    raise NppacError(f"{where}: weights {name!r} hold NaN or Inf; re-fit the prior")
            check_predictions(where, *self.predict(self.net.x_mean[None]), "the mean demonstration state")

    def to(self, device: torch.device | str) -> NNPrior:
        """Move the network to ``device``; returns self."""
        self.net.to(device)
        return self

    def save(self, directory: str | Path) -> None:
        """Write ``settings.json`` and ``weights.safetensors`` (network and state scaler)."""
        write_saved(directory, saved_settings(self), dict(self.net.state_dict()))

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> NNPrior:
        """Read a prior written by :meth:`save`, onto ``device``."""
        prior, settings, tensors = read_fitted(cls, NNConfig, directory, device)
        load_weights(prior.net, tensors, directory)
        prior.net.eval()
        prior.fitted = True
        return loaded(prior, settings, directory, device)
