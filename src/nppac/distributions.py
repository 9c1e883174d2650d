"""Diagonal-Gaussian densities shared by the priors, the agent and the diagnostics."""

from __future__ import annotations

import math

import torch

_LOG_2PI = math.log(2.0 * math.pi)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag std²), summed over the last dimension."""
    z = (x - mean) / std
    return (-0.5 * z.pow(2) - std.log() - 0.5 * _LOG_2PI).sum(-1)


def gaussian_kl(mean_p: torch.Tensor, std_p: torch.Tensor, mean_q: torch.Tensor, std_q: torch.Tensor) -> torch.Tensor:
    """KL(N(mean_p, std_p²) ‖ N(mean_q, std_q²)) for diagonal Gaussians, summed over the last dimension."""
    var_ratio = (std_p / std_q).pow(2)
    return 0.5 * (var_ratio + ((mean_p - mean_q) / std_q).pow(2) - 1.0 - var_ratio.log()).sum(-1)
