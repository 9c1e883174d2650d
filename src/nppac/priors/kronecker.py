"""Kronecker-structured algebra of the multi-output (ICM) GP, never densified.

The n·T targets Y (n×T, row i = the action at state i) have covariance

    Σ = K_x ⊗ B + I_n ⊗ D,          D = diag(noise variances)

(row-major vec, entry ((i,j),(i',j')) = K_x[i,i'] B[j,j'] + δ_ii' δ_jj' D_j). With
K_x = Q Λx Qᵀ and B̃ = D^{-1/2} B D^{-1/2} = P Λb Pᵀ,

    Σ = (I ⊗ D^{1/2}) (Q ⊗ P) (Λx ⊗ Λb + I) (Q ⊗ P)ᵀ (I ⊗ D^{1/2}),

so with the n×T grid of eigenvalues λx_i λb_l + 1:

    log det Σ = n Σ_j log D_j + Σ_{i,l} log(λx_i λb_l + 1)
    Ỹ = (Y − c) D^{-1/2},  R = Qᵀ Ỹ P,  Z = R / (λx λbᵀ + 1)
    A = Q Z Pᵀ D^{-1/2}                        (vec A = Σ^{-1} vec(Y − c))

When Q has only k < n orthonormal columns (a low-rank K_x, e.g. Nyström), the
remaining eigenvalues are 0 and their directions pass through unchanged:
A = [Ỹ + Q (Z − R) Pᵀ] D^{-1/2}, which equals the form above when k = n.

Gradients of L = log N(vec Y; c, Σ) w.r.t. the matrices (derived from
∂L/∂Σ = ½(vec A vec Aᵀ − Σ^{-1}), then verified against autograd of the dense L):

    ∂L/∂K_x = ½ [A B Aᵀ − Q diag(h) Qᵀ],        h_i = Σ_l λb_l / (λx_i λb_l + 1)
    ∂L/∂B   = ½ [Aᵀ K_x A − D^{-1/2} P diag(g) Pᵀ D^{-1/2}],  g_l = Σ_i λx_i / (λx_i λb_l + 1)
    ∂L/∂D_j = ½ [Σ_i A_ij² − D_j^{-1} Σ_l P_jl² e_l],         e_l = Σ_i 1 / (λx_i λb_l + 1)
    ∂L/∂c_j = Σ_i A_ij

They avoid back-propagating through ``torch.linalg.eigh``, whose gradient is NaN/Inf
when eigenvalues of K_x are (near-)degenerate (duplicate demonstration states).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class KroneckerSpectrum:
    """The eigen-structure of Σ = K_x ⊗ B + I ⊗ D (module docstring)."""

    q: torch.Tensor
    """(n, k) orthonormal eigenvectors of K_x (k = n exact, k < n low rank)."""
    lam_x: torch.Tensor
    """(k,) eigenvalues of K_x, ≥ 0."""
    p: torch.Tensor
    """(T, T) eigenvectors of B̃ = D^{-1/2} B D^{-1/2}."""
    lam_b: torch.Tensor
    """(T,) eigenvalues of B̃."""
    d: torch.Tensor
    """(T,) noise variances D."""

    @property
    def n(self) -> int:
        return self.q.shape[0]

    @property
    def denom(self) -> torch.Tensor:
        """(k, T) grid λx_i λb_l + 1."""
        return self.lam_x[:, None] * self.lam_b[None, :] + 1.0


def kronecker_spectrum(q: torch.Tensor, lam_x: torch.Tensor, b: torch.Tensor, d: torch.Tensor) -> KroneckerSpectrum:
    """Combine an eigendecomposition of K_x with that of D^{-1/2} B D^{-1/2}."""
    d_isqrt = d.rsqrt()
    lam_b, p = torch.linalg.eigh(d_isqrt[:, None] * b * d_isqrt[None, :])
    # Round-off can leave tiny negative eigenvalues of a PSD matrix; the model's are ≥ 0.
    return KroneckerSpectrum(q=q, lam_x=lam_x.clamp_min(0.0), p=p, lam_b=lam_b.clamp_min(0.0), d=d)


def solve(spec: KroneckerSpectrum, residual: torch.Tensor) -> torch.Tensor:
    """A (n×T) with vec A = Σ^{-1} vec(residual)."""
    d_isqrt = spec.d.rsqrt()
    y_t = residual * d_isqrt
    rot = spec.q.T @ y_t @ spec.p
    z = rot / spec.denom
    return (y_t + spec.q @ (z - rot) @ spec.p.T) * d_isqrt


def log_det(spec: KroneckerSpectrum) -> torch.Tensor:
    """log det Σ = n Σ_j log D_j + Σ_{i,l} log(λx_i λb_l + 1)."""
    return spec.n * spec.d.log().sum() + spec.denom.log().sum()


def log_marginal_likelihood(spec: KroneckerSpectrum, residual: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """log N(vec Y; vec c, Σ) = −½ vec(Y−c)ᵀ vec A − ½ log det Σ − ½ nT log 2π."""
    n_entries = residual.numel()
    return -0.5 * (residual * a).sum() - 0.5 * log_det(spec) - 0.5 * n_entries * math.log(2.0 * math.pi)


def condition(kx: torch.Tensor, b: torch.Tensor, d: torch.Tensor, c: torch.Tensor,
              y: torch.Tensor) -> tuple[KroneckerSpectrum, torch.Tensor, torch.Tensor]:
    """Exact conditioning: (spectrum, A, log marginal likelihood) from one eigendecomposition of K_x."""
    lam_x, q = torch.linalg.eigh(kx)
    spec = kronecker_spectrum(q, lam_x, b, d)
    residual = y - c
    a = solve(spec, residual)
    return spec, a, log_marginal_likelihood(spec, residual, a)


def matrix_gradients(spec: KroneckerSpectrum, b: torch.Tensor, a: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(∂L/∂K_x, ∂L/∂B, ∂L/∂D, ∂L/∂c) of the exact (k = n) marginal likelihood (module docstring)."""
    denom = spec.denom
    d_isqrt = spec.d.rsqrt()
    h = (spec.lam_b[None, :] / denom).sum(1)
    g = (spec.lam_x[:, None] / denom).sum(0)
    e = (1.0 / denom).sum(0)
    grad_kx = 0.5 * (a @ b @ a.T - (spec.q * h) @ spec.q.T)
    qa = spec.q.T @ a
    p_scaled = d_isqrt[:, None] * spec.p
    grad_b = 0.5 * (qa.T @ (spec.lam_x[:, None] * qa) - (p_scaled * g) @ p_scaled.T)
    grad_d = 0.5 * (a.pow(2).sum(0) - (spec.p.pow(2) @ e) / spec.d)
    return grad_kx, grad_b, grad_d, a.sum(0)


class _ExactMLL(torch.autograd.Function):
    """L(K_x, B, D, c) with the analytic matrix gradients in place of eigh's backward."""

    @staticmethod
    def forward(ctx, kx, b, d, c, y):
        spec, a, value = condition(kx, b, d, c, y)
        if any(ctx.needs_input_grad[:4]):
            ctx.save_for_backward(*matrix_gradients(spec, b, a))
        return value

    @staticmethod
    def backward(ctx, grad_output):
        grad_kx, grad_b, grad_d, grad_c = ctx.saved_tensors
        return grad_output * grad_kx, grad_output * grad_b, grad_output * grad_d, grad_output * grad_c, None


def exact_mll(kx: torch.Tensor, b: torch.Tensor, d: torch.Tensor, c: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Exact log marginal likelihood of the n·T targets ``y``, differentiable in K_x, B, D and c.

    ``kx`` (n×n) and ``b`` (T×T) must be symmetric, ``d`` (T,) positive; gradients
    flow into whatever produced them (the kernel's lengthscales, W, v, the noises).
    """
    return _ExactMLL.apply(kx, b, d, c, y)


def predictive_weights(spec: KroneckerSpectrum, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(g, g0) for the latent variance of output j at a new state with u = Qᵀ k*:

        k** B_jj − Σ_{i,l} u_i² w_jl² / (λx_i λb_l + 1),   w_j = Pᵀ D^{-1/2} B e_j,

    written as Σ_i u_i² g_ij with g_ij = Σ_l w_jl² / (λx_i λb_l + 1); g0_j = Σ_l w_jl²
    is its limit for λx_i → 0 (the directions a low-rank Q leaves out).
    """
    w_sq = (spec.p.T @ (spec.d.rsqrt()[:, None] * b)).pow(2)  # (l, j)
    return (1.0 / spec.denom) @ w_sq, w_sq.sum(0)
