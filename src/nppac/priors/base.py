"""The interface every behavioral reference policy π0 implements."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from nppac.data.demos import Demonstrations
from nppac.priors.common import Progress


@runtime_checkable
class Prior(Protocol):
    """π0(·|s) = N(μ0(s), diag σ0²(s)) over normalized actions in [-1, 1]^T.

    ``squashed`` is True only for the tanh-Gaussian NN variant: ``predict`` then gives
    the pre-tanh Gaussian, tanh(μ0) is the mean action and ``log_prob`` includes the
    tanh Jacobian.
    """

    @property
    def kind(self) -> str: ...

    @property
    def obs_dim(self) -> int: ...

    @property
    def act_dim(self) -> int: ...

    @property
    def squashed(self) -> bool: ...

    @property
    def fit_seconds(self) -> float | None: ...

    def fit(self, demos: Demonstrations, progress: Progress | None = None) -> dict[str, Any]:
        """Fit to the demonstrations, reporting ``progress(stage, completed, total)``; returns a summary of fit
        metrics."""
        ...

    def predict(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std), each (batch, act_dim), on the device of ``states`` (which may be any device)."""
        ...

    def log_prob(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log π0(a|s) summed over action dimensions, shape (batch,)."""
        ...

    def to(self, device: torch.device | str) -> Prior:
        """Move the prior's computations to ``device``; returns the prior."""
        ...

    def save(self, directory: str | Path) -> None:
        """Write ``settings.json`` and ``weights.safetensors`` into ``directory``."""
        ...
