"""Stationary state kernels k_x(s, s') with ARD lengthscales and unit variance.

The output scale of the GP lives in the task covariance B (ICM), so every kernel
here has k_x(s, s) = 1. With r = ‖(s − s') / ℓ‖ (one lengthscale per dimension):

    rbf        exp(−r²/2)
    matern12   exp(−r)
    matern32   (1 + √3 r) exp(−√3 r)
    matern52   (1 + √5 r + 5r²/3) exp(−√5 r)
"""

from __future__ import annotations

import math
from typing import Literal, TypeGuard, get_args

import torch

from nppac.errors import NppacError

KernelName = Literal["rbf", "matern12", "matern32", "matern52"]
KERNELS: tuple[str, ...] = get_args(KernelName)


def check_kernel(name: str) -> KernelName:
    """Return ``name`` if it is a known kernel, else raise a one-line :class:`NppacError`."""
    if not _is_kernel(name):
        raise NppacError(f"unknown kernel {name!r}; choose one of: {', '.join(KERNELS)}")
    return name


def _is_kernel(name: str) -> TypeGuard[KernelName]:
    return name in KERNELS


def scaled_sq_dist(x1: torch.Tensor, x2: torch.Tensor, lengthscale: torch.Tensor) -> torch.Tensor:
    """r² = ‖(x1_i − x2_j) / ℓ‖², (n1, n2), through one matrix product (never an n1×n2×d tensor)."""
    a, b = x1 / lengthscale, x2 / lengthscale
    sq = a.pow(2).sum(-1, keepdim=True) + b.pow(2).sum(-1) - 2.0 * a @ b.T
    return sq.clamp_min(0.0)


def kernel_from_sq_dist(sq: torch.Tensor, name: KernelName) -> torch.Tensor:
    """k_x as a function of r² (module docstring)."""
    if name == "rbf":
        return torch.exp(-0.5 * sq)
    # The clamp keeps d√(r²)/d(r²) finite at duplicate states, where r = 0 exactly.
    r = sq.clamp_min(1e-30).sqrt()
    if name == "matern12":
        return torch.exp(-r)
    if name == "matern32":
        z = math.sqrt(3.0) * r
        return (1.0 + z) * torch.exp(-z)
    if name == "matern52":
        z = math.sqrt(5.0) * r
        return (1.0 + z + z.pow(2) / 3.0) * torch.exp(-z)
    raise NppacError(f"unknown kernel {name!r}; choose one of: {', '.join(KERNELS)}")


def kernel_matrix(x1: torch.Tensor, x2: torch.Tensor, lengthscale: torch.Tensor, name: KernelName) -> torch.Tensor:
    """K_x[i, j] = k_x(x1_i, x2_j) with ARD ``lengthscale`` (d,).

    Without autograd (prediction, conditioning) the same values come from in-place
    operations on one (n1, n2) buffer, which saves most of the elementwise passes'
    allocations: the kernel rows are a large share of a GP prediction's cost.
    """
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x1, x2, lengthscale)):
        return kernel_from_sq_dist(scaled_sq_dist(x1, x2, lengthscale), name)
    return _kernel_matrix_inplace(x1, x2, lengthscale, name)


def _kernel_matrix_inplace(x1: torch.Tensor, x2: torch.Tensor, lengthscale: torch.Tensor,
                           name: KernelName) -> torch.Tensor:
    check_kernel(name)
    a, b = x1 / lengthscale, x2 / lengthscale
    k = torch.addmm(b.pow(2).sum(-1)[None, :], a, b.T, alpha=-2.0).add_(a.pow(2).sum(-1, keepdim=True))
    k.clamp_min_(0.0)
    if name == "rbf":
        return k.mul_(-0.5).exp_()
    z = k.sqrt_()
    if name == "matern12":
        return z.neg_().exp_()
    z.mul_(math.sqrt(3.0) if name == "matern32" else math.sqrt(5.0))
    poly = z.add(1.0) if name == "matern32" else z.mul(1.0 / 3.0).add_(1.0).mul_(z).add_(1.0)
    return poly.mul_(z.neg_().exp_())
