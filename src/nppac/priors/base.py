"""The interface every behavioral reference policy π0 implements."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from nppac.data.demos import Demonstrations


@runtime_checkable
class Prior(Protocol):
    """π0(·|s) = N(μ0(s), diag σ0²(s)) over normalized actions in [-1, 1]^T.

    ``squashed`` is True only for the tanh-Gaussian NN variant: ``predict`` then gives
    the pre-tanh Gaussian, tanh(μ0) is the mean action and ``log_prob`` includes the
    tanh Jacobian.
    """

    kind: str
    obs_dim: int
    act_dim: int
    squashed: bool
    fit_seconds: float | None

    def fit(self, demos: Demonstrations) -> dict[str, Any]:
        """Fit to the demonstrations; returns a summary of fit metrics."""

    def predict(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std), each (batch, act_dim), on the device of ``states``."""

    def log_prob(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log π0(a|s) summed over action dimensions, shape (batch,)."""

    def to(self, device: torch.device | str) -> Prior:
        """Move the prior's computations to ``device``; returns the prior."""

    def save(self, directory: str | Path) -> None:
        """Write ``settings.json`` and ``weights.safetensors`` into ``directory``."""
