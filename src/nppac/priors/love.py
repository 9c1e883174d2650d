"""LOVE: the GP's predictive variance as gpytorch 1.0.1's ``fast_pred_var()`` estimates it.

The published N-PPAC reads σ0² from ``likelihood(model(s))`` under
``gpytorch.settings.fast_pred_var()`` (LOVE, Pleiss et al. 2018) with gpytorch 1.0.1.
That version takes no Kronecker shortcut there. It runs Lanczos, from a random start
vector, for at most ``max_root_decomposition_size`` = 100 iterations on the whole n·T
training covariance

    K = K_x ⊗ B + I_n ⊗ D,

keeps the inverse root R = Q V Λ^{-1/2} (n·T × k, K⁻¹ ≈ R Rᵀ, with Q the Lanczos basis
and T = V Λ Vᵀ its tridiagonal matrix), and predicts, for output j at a state s,

    σ²_LOVE,j(s) = B_jj − ‖Rᵀ c_j(s)‖² + D_j,      c_j(s) = k_x(s, X) ⊗ B_{j,:}.

A rank-k Krylov projection under-counts what the data explain, so near the data this
is far larger than the exact variance (87× at pen's demonstrations, DESIGN.md §2) and
far from them about equal to it.

Here Lanczos is linear_operator's (the library gpytorch runs on), driven by a
matrix–vector product that uses the Kronecker structure, K vec(V) = vec(K_x V B + V D)
for V (n × T): the n·T matrix is never formed. Since c_j(s) = Σ_l B_jl k_x(s, X) ⊗ e_l,
Rᵀ c_j(s) = k_x(s, X) W_j with W[i, j, :] = Σ_l B_jl R[(i, l), :], precomputed once
(:func:`love_root`), so a prediction costs one (b × n) @ (n × T·k) product.
"""

from __future__ import annotations

import torch
from linear_operator.utils.lanczos import lanczos_tridiag, lanczos_tridiag_to_diag

PUBLISHED_RANK = 100
"""gpytorch 1.0.1's ``max_root_decomposition_size``: the Lanczos iterations LOVE runs."""


def kronecker_matvec(kx: torch.Tensor, b: torch.Tensor, d: torch.Tensor):
    """v ↦ K v for K = K_x ⊗ B + I ⊗ D, on (n·T, c) blocks in row-major (state, action) order."""
    n, t = kx.shape[0], b.shape[0]

    def matvec(vectors: torch.Tensor) -> torch.Tensor:
        cols = vectors.shape[-1]
        grid = vectors.T.reshape(cols, n, t)
        out = torch.matmul(kx, grid) @ b + grid * d
        return out.reshape(cols, n * t).T

    return matvec


def love_root(kx: torch.Tensor, b: torch.Tensor, d: torch.Tensor, rank: int = PUBLISHED_RANK,
              seed: int = 0) -> torch.Tensor:
    """W (n, T, k): LOVE's inverse root of K, contracted with B (module docstring).

    ``rank`` Lanczos iterations (at most n·T) from a standard-normal start vector drawn
    with ``seed``; linear_operator's Lanczos reorthogonalizes fully and may stop early
    when the Krylov space is exhausted, so k ≤ ``rank``.
    """
    n, t = kx.shape[0], b.shape[0]
    size = n * t
    generator = torch.Generator().manual_seed(seed)
    start = torch.randn(size, 1, generator=generator, dtype=kx.dtype).to(kx.device)
    basis, tridiag = lanczos_tridiag(kronecker_matvec(kx, b, d), max_iter=min(rank, size), dtype=kx.dtype,
                                     device=kx.device, matrix_shape=torch.Size((size, size)), init_vecs=start)
    evals, evecs = lanczos_tridiag_to_diag(tridiag)
    # K is positive definite (D ≥ 1e-4), so Ritz values are too; drop any round-off casualty.
    keep = evals > evals.max() * 1e-12
    root = basis @ (evecs[:, keep] / evals[keep].sqrt())
    return torch.einsum("ilk,jl->ijk", root.reshape(n, t, -1), b)


def love_variance(kstar: torch.Tensor, root: torch.Tensor, b_diag: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """(batch, T) σ²_LOVE = B_jj − ‖k* W_j‖² + D_j for kernel rows ``kstar`` (batch, n) and ``root`` (n, T, k)."""
    n, t, k = root.shape
    projected = (kstar @ root.reshape(n, t * k)).reshape(len(kstar), t, k)
    return (b_diag - projected.pow(2).sum(-1)).clamp_min(0.0) + noise
