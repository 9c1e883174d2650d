"""The GP reference policy: exact multi-output GP regression s → a (DESIGN.md §2).

π0(·|s) = N(μ0(s), diag σ0²(s)) is the observed predictive distribution of a GP with

    mean        c_j (one constant per action dimension)
    covariance  k((s,i),(s',j)) = k_x(s,s') B_ij,  B = W Wᵀ + diag(v)   (ICM, W ∈ R^{T×r})
    likelihood  a_ij = f_j(s_i) + ε,  ε ~ N(0, D_j),  D_j = noise_j + shared noise (each ≥ 1e-4)

on standardized states. Far from the demonstrations σ0²(s) → B_jj + D_j (the prior
variance); at them it shrinks toward the noise D_j. The hyperparameters maximize the
exact log marginal likelihood (:mod:`nppac.priors.kronecker`) on a random subset of at
most ``fit_subset`` states, after which the posterior conditions exactly on all of
them with one eigendecomposition of K_x (or, beyond ``max_exact`` states, on a
Nyström/DTC approximation with ``num_inducing`` states, see :func:`_inducing_posterior`).

Fast prediction keeps only the eigen-components that matter to σ0 (the rest enter through ‖k*‖² g0_j),
chosen once on probe states (:func:`_fast_components`), most of them applied in float32 (:class:`Posterior`);
``predict(..., exact=True)`` keeps every component, in float64.
"""

from __future__ import annotations

import copy
import hashlib
import math
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeGuard

import numpy as np
import torch
from torch import nn

import nppac.priors.kronecker as kronecker
from nppac.data.demos import Demonstrations
from nppac.devices import resolve_device
from nppac.distributions import gaussian_log_prob
from nppac.errors import NonFiniteError, NppacError
from nppac.priors.common import (
    Progress,
    check_data,
    check_positive,
    check_predictions,
    check_shapes,
    check_states,
    load_weights,
    loaded,
    read_fitted,
    saved_settings,
    write_saved,
)
from nppac.priors.kernels import KernelName, kernel_matrix
from nppac.priors.love import PUBLISHED_RANK, love_root, love_variance
from nppac.settings import typed_fields

VarianceEstimate = Literal["exact", "love"]
Conditioning = Literal["auto", "exact", "inducing"]
VARIANCE_ESTIMATES: tuple[str, ...] = ("exact", "love")


def is_variance_estimate(name: str) -> TypeGuard[VarianceEstimate]:
    return name in VARIANCE_ESTIMATES


DTYPE = torch.float64

_NO_TAIL = torch.empty(0)
"""Default of :attr:`Posterior.proj_tail`: no further components (replaced by an empty (m, 0) block)."""
PLATEAU_WINDOW = 100
"""Iterations over which Adam's progress is compared with ``GPConfig.tol``."""
_CHUNK_ELEMENTS = 1 << 21
"""Cross-covariance entries per prediction chunk (16 MB in float64): bounds predict's memory and keeps
its elementwise passes closer to cache."""


@dataclass
class GPConfig:
    """Settings of the GP reference policy."""

    kernel: KernelName = "matern52"
    """State kernel k_x: rbf, matern12, matern32 or matern52 (ARD lengthscales)."""
    rank: int = 1
    """Rank r of W in the task covariance B = W Wᵀ + diag(v) (published: 1)."""
    optimizer: Literal["adam", "lbfgs"] = "adam"
    """Marginal-likelihood optimizer (published: Adam)."""
    iters: int = 1000
    """Optimizer iterations (L-BFGS: function evaluations) (published: 1000)."""
    lr: float = 0.1
    """Adam learning rate on the log-scale / unconstrained hyperparameters (published: 0.1)."""
    tol: float = 1e-3
    """Adam stops once 100 iterations raised the best MLL per entry by less than this (0: run all ``iters``)."""
    fit_subset: int = 500
    """Learn hyperparameters on at most this many random states (0: all); the posterior uses all."""
    min_noise: float = 1e-4
    """Lower bound of each noise variance (per action dimension and shared)."""
    conditioning: Conditioning = "auto"
    """Posterior on all states: exact, Nyström/DTC inducing points, or exact up to ``max_exact`` states."""
    max_exact: int = 20000
    """With conditioning="auto", larger sets use inducing points."""
    num_inducing: int = 2000
    """Number of inducing states (a random subset of the demonstrations)."""
    predict_rtol: float = 2e-3
    """Fast prediction keeps the fewest eigen-components whose σ0 is within this relative error on probe states
    (0: all)."""
    device: str = "cpu"
    """Device for fitting and prediction (cpu or cuda)."""
    seed: int = 0
    """Seed of the subset, the inducing states and the initialization of W."""
    variance: VarianceEstimate = "exact"
    """Which predictive variance σ0² is: the exact posterior's, or LOVE's (gpytorch 1.0.1's ``fast_pred_var``,
    the published code's; :mod:`nppac.priors.love`). The mean is the exact posterior mean either way."""
    love_rank: int = PUBLISHED_RANK
    """Lanczos iterations of the LOVE estimate (published: 100)."""
    love_seed: int = 0
    """Seed of LOVE's random Lanczos start vector."""

    def __post_init__(self) -> None:
        typed_fields(self)  # the kernel, optimizer, conditioning and variance among their values

    def exact_on(self, n: int) -> bool:
        """Whether the posterior on ``n`` states is exact (else on inducing states)."""
        return self.conditioning == "exact" or (self.conditioning == "auto" and n <= self.max_exact)

    def validate(self) -> GPConfig:
        """Check the values; raises :class:`NppacError` naming the bad field."""
        resolve_device(self.device)
        checks = {
            "rank": self.rank >= 1, "iters": self.iters >= 0, "lr": self.lr > 0, "tol": self.tol >= 0,
            "fit_subset": self.fit_subset >= 0, "min_noise": self.min_noise > 0,
            "max_exact": self.max_exact >= 1, "num_inducing": self.num_inducing >= 1,
            "predict_rtol": self.predict_rtol >= 0, "love_rank": self.love_rank >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise NppacError(f"GP setting {name}={getattr(self, name)!r} is invalid")
        return self


class ICMHyperparameters(nn.Module):
    """Constant mean c, ARD lengthscales ℓ, task covariance B = W Wᵀ + diag(v) and noises D.

    Positive quantities are stored as logarithms so that Adam's steps are relative.
    """

    def __init__(self, obs_dim: int, act_dim: int, rank: int, min_noise: float) -> None:
        super().__init__()
        self.min_noise = min_noise
        self.mean = nn.Parameter(torch.zeros(act_dim, dtype=DTYPE))
        self.log_lengthscale = nn.Parameter(torch.zeros(obs_dim, dtype=DTYPE))
        self.w = nn.Parameter(torch.zeros(act_dim, rank, dtype=DTYPE))
        self.log_v = nn.Parameter(torch.zeros(act_dim, dtype=DTYPE))
        self.log_noise = nn.Parameter(torch.zeros(act_dim, dtype=DTYPE))
        self.log_shared_noise = nn.Parameter(torch.zeros(1, dtype=DTYPE))

    @property
    def lengthscale(self) -> torch.Tensor:
        return self.log_lengthscale.exp()

    @property
    def task_covariance(self) -> torch.Tensor:
        """B = W Wᵀ + diag(v)."""
        return self.w @ self.w.T + torch.diag(self.log_v.exp())

    @property
    def noise(self) -> torch.Tensor:
        """D_j = noise_j + shared noise, each at least ``min_noise``."""
        return (self.min_noise + self.log_noise.exp()) + (self.min_noise + self.log_shared_noise.exp())

    @torch.no_grad()
    def initialize(self, y: torch.Tensor, generator: torch.Generator) -> None:
        """Data-scaled start: c = mean(y); ℓ = √d on standardized states; B_jj ≈ var_j; D_j ≈ 0.1 var_j."""
        var = y.var(0).clamp_min(10 * self.min_noise) if len(y) > 1 else torch.ones_like(self.mean)
        self.mean.copy_(y.mean(0))
        self.log_lengthscale.fill_(0.5 * math.log(self.log_lengthscale.numel()))
        # W must start off zero: B = W Wᵀ has zero gradient in W at W = 0.
        noise_w = torch.randn(self.w.shape, generator=generator, dtype=DTYPE).to(self.w.device)
        self.w.copy_(0.3 * var.sqrt()[:, None] * noise_w)
        self.log_v.copy_((0.5 * var).log())
        self.log_noise.copy_((0.1 * var).log())
        self.log_shared_noise.fill_(math.log(0.01 * var.mean().item()))


@dataclass
class Posterior:
    """What prediction needs: μ0 = c + k* M, latent variance B_jj − [‖·‖² g0_j + Σ_i u_i² Δg_i], u = k* U.

    ``k*`` is the kernel row against ``basis`` (all training states, or the inducing states).
    The kept components are a float64 head U_h and, for exact posteriors, a float32 tail
    U_t: u_t = (k* − (k* U_h) U_hᵀ) U_t. Since U_t ⟂ U_h this equals k* U_t, but the
    residual is orders of magnitude smaller than k*, so float32's relative rounding error
    costs little absolute accuracy there, while the product runs at twice the float64 rate.
    """

    basis: torch.Tensor
    """(m, d) standardized states the cross-covariance k* is taken against."""
    mean_weights: torch.Tensor
    """(m, T) M: μ0(s) = c + k* M."""
    proj: torch.Tensor
    """(m, h) U_h: the leading kept eigen-components, float64."""
    delta_g: torch.Tensor
    """(k, T) g_ij − g0_j for the kept components: the h of U_h, then the k − h of U_t."""
    g0: torch.Tensor
    """(T,) g0_j = Σ_l w_jl²."""
    b_diag: torch.Tensor
    """(T,) B_jj (k** = 1 for the unit-variance state kernels)."""
    noise: torch.Tensor
    """(T,) D_j."""
    mean: torch.Tensor
    """(T,) c."""
    tail_from_kernel: bool
    """Exact: the left-out components carry ‖k*‖² − ‖u‖² (so use ‖k*‖²); Nyström: they carry nothing (use ‖u‖²)."""
    proj_tail: torch.Tensor = _NO_TAIL
    """(m, k − h) U_t: further kept components in float32 (exact posteriors only; orthogonal to U_h)."""

    _TENSORS = ("basis", "mean_weights", "proj", "delta_g", "g0", "b_diag", "noise", "mean", "proj_tail")

    def __post_init__(self) -> None:
        if self.proj_tail is _NO_TAIL:
            self.proj_tail = self.proj.new_zeros((self.proj.shape[0], 0), dtype=torch.float32)

    @property
    def rank(self) -> int:
        """Number of kept eigen-components, head and tail."""
        return self.proj.shape[1] + self.proj_tail.shape[1]

    def predict(self, kstar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, observed variance) for a (b, m) block of kernel rows."""
        act_dim, head = self.mean_weights.shape[1], self.proj.shape[1]
        if head <= _JOINT_HEAD:  # one pass over k* for both skinny products
            both = kstar @ torch.cat([self.mean_weights, self.proj], 1)
            mean, u = self.mean + both[:, :act_dim], both[:, act_dim:]
        else:
            mean, u = self.mean + kstar @ self.mean_weights, kstar @ self.proj
        total = torch.linalg.vector_norm(kstar, dim=1).pow(2) if self.tail_from_kernel else u.pow(2).sum(1)
        quad = total[:, None] * self.g0 + u.pow(2) @ self.delta_g[:head]
        if self.proj_tail.shape[1]:
            residual = torch.addmm(kstar, u, self.proj.T, alpha=-1.0)
            tail = self.proj_tail
            if torch.get_float32_matmul_precision() != "highest":
                tail = tail.to(residual.dtype)  # TF32 / bfloat16 products would round the residual away
            u_tail = (residual.to(tail.dtype) @ tail).to(u.dtype)
            quad = quad + u_tail.pow(2) @ self.delta_g[head:]
        return mean, (self.b_diag - quad).clamp_min(0.0) + self.noise

    def predict_mean(self, kstar: torch.Tensor) -> torch.Tensor:
        """The mean alone for a (b, m) block of kernel rows: one skinny product, none of the variance's."""
        return self.mean + kstar @ self.mean_weights

    def tensors(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name in self._TENSORS}

    def to(self, device: torch.device | str) -> Posterior:
        moved = {name: t.to(device) for name, t in self.tensors().items()}
        return Posterior(**moved, tail_from_kernel=self.tail_from_kernel)


def _exact_posterior(x: torch.Tensor, y: torch.Tensor, hyper: ICMHyperparameters, kernel: KernelName,
                     predict_rtol: float, generator: torch.Generator) -> tuple[Posterior, float]:
    """Condition exactly on all n states; ``predict_rtol=0`` keeps every eigen-component."""
    b, d, c = hyper.task_covariance, hyper.noise, hyper.mean
    kx = kernel_matrix(x, x, hyper.lengthscale, kernel)
    spec, a, mll = kronecker.condition(kx, b, d, c, y)
    del kx
    g, g0 = kronecker.predictive_weights(spec, b)
    posterior = Posterior(
        basis=x, mean_weights=a @ b, proj=spec.q, delta_g=g - g0,
        g0=g0, b_diag=torch.diagonal(b).clone(), noise=d, mean=c.clone(), tail_from_kernel=True,
    )
    if predict_rtol > 0:
        keep, head = _fast_components(posterior, lambda s: kernel_matrix(s, x, hyper.lengthscale, kernel),
                                      predict_rtol, generator)
        posterior.proj = spec.q[:, keep[:head]].contiguous()
        posterior.proj_tail = spec.q[:, keep[head:]].to(torch.float32).contiguous()
        posterior.delta_g = posterior.delta_g[keep].contiguous()
    return posterior, float(mll)


_JOINT_HEAD = 256
"""Up to this many float64 components, μ0's weights and the components share one product with k*."""
PROBE_SCALES = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
"""Displacements of the probe states that calibrate fast prediction: at, between and away from the data."""
TRUNCATION_SHARE = 0.75
"""Share of ``predict_rtol`` given to dropping components (checked on probe states)."""
ROUNDING_SHARE = 1.0 - TRUNCATION_SHARE
"""Share of ``predict_rtol`` float32 rounding of the tail may cost on probe states (the two add up to it)."""


def _fast_components(posterior: Posterior, kernel_rows: Callable[[torch.Tensor], torch.Tensor], rtol: float,
                     generator: torch.Generator, probes_per_scale: int = 200) -> tuple[torch.Tensor, int]:
    """(indices of the kept eigen-components, how many of them lead in float64) for σ0 within ``rtol``.

    Probes: random training states displaced by ``PROBE_SCALES`` standardized units of
    Gaussian noise. Components are added by decreasing max_j |Δg_ij|; every left-out
    one lowers the variance by u_i² |Δg_ij| ≥ 0, so the error only shrinks as
    components are added and a bisection finds the smallest k within
    ``TRUNCATION_SHARE × rtol``. Then the float64 head doubles from 16 until the mixed
    head/float32-tail prediction (:class:`Posterior`) is within ``ROUNDING_SHARE × rtol``
    of the all-float64 one with the same components on the same probes; if none below
    k/3 is, every kept component stays float64.
    """
    x = posterior.basis
    n = len(x)
    # Probes near the data matter most: there σ0 is a small difference of large terms.
    scales = torch.tensor(PROBE_SCALES, dtype=DTYPE, device=x.device).repeat_interleave(probes_per_scale)
    picks = torch.randint(n, (len(scales),), generator=generator).to(x.device)
    noise = torch.randn((len(picks), x.shape[1]), generator=generator, dtype=DTYPE).to(x.device)
    kstar = kernel_rows(x[picks] + scales[:, None] * noise)
    order = posterior.delta_g.abs().max(1).values.argsort(descending=True)
    u = (kstar @ posterior.proj)[:, order]  # reorder the (probes, n) product, not the n×n Q
    u_sq = u.pow(2)
    delta_g = posterior.delta_g[order]
    base = kstar.pow(2).sum(1, keepdim=True) * posterior.g0

    def std(quad: torch.Tensor) -> torch.Tensor:
        return ((posterior.b_diag - base - quad).clamp_min(0.0) + posterior.noise).sqrt()

    def error(quad: torch.Tensor, reference: torch.Tensor) -> float:
        return float(((std(quad) - reference).abs() / reference).max())

    exact = std(u_sq @ delta_g)
    low, high = 0, n
    while low < high:
        mid = (low + high) // 2
        if error(u_sq[:, :mid] @ delta_g[:mid], exact) <= TRUNCATION_SHARE * rtol:
            high = mid
        else:
            low = mid + 1
    keep, truncated = order[:high], std(u_sq[:, :high] @ delta_g[:high])
    head = 16
    # The head costs two float64 products (u_h and the residual), the tail one float32 product at
    # about twice the rate: mixing pays only while 2h + (k − h)/2 < k, i.e. h < k/3.
    while 3 * head < high:
        residual = kstar - u[:, :head] @ posterior.proj[:, keep[:head]].T
        u_tail = (residual.to(torch.float32) @ posterior.proj[:, keep[head:]].to(torch.float32)).to(DTYPE)
        quad = u_sq[:, :head] @ delta_g[:head] + u_tail.pow(2) @ delta_g[head:high]
        if error(quad, truncated) <= ROUNDING_SHARE * rtol:
            return keep, head
        head *= 2
    return keep, high


def _inducing_posterior(x: torch.Tensor, y: torch.Tensor, hyper: ICMHyperparameters, kernel: KernelName,
                        num_inducing: int, generator: torch.Generator) -> tuple[Posterior, float]:
    """Nyström/DTC: K_x ≈ K_nm K_mm^{-1} K_mn with m random training states as inducing points.

    With K_mm = L Lᵀ and Φ = K_nm L^{-ᵀ}, ΦᵀΦ = V S Vᵀ gives the rank-m eigenvectors
    Q = Φ V S^{-1/2} of the approximate K_x, and the Kronecker algebra applies as for
    the exact model. Prediction projects k* the same way (k̃* = K_nm K_mm^{-1} k_m*, so
    u = Qᵀ k̃* = S^{1/2} Vᵀ L^{-1} k_m*) and keeps the exact prior variance k** B_jj
    (the deterministic-training-conditional predictive). Cost O(n m²), memory O(n m).
    """
    b, d, c = hyper.task_covariance, hyper.noise, hyper.mean
    ls = hyper.lengthscale
    idx = torch.randperm(len(x), generator=generator)[:num_inducing].to(x.device)
    z = x[idx]
    kmm = kernel_matrix(z, z, ls, kernel)
    # Duplicate demonstration states make K_mm singular; the jitter is far below any noise level.
    chol = torch.linalg.cholesky(kmm + 1e-6 * torch.eye(len(z), dtype=DTYPE, device=x.device))
    phi = torch.linalg.solve_triangular(chol, kernel_matrix(z, x, ls, kernel), upper=False).T
    s, v = torch.linalg.eigh(phi.T @ phi)
    keep = s > 1e-10 * s.max()
    s, v = s[keep], v[:, keep]
    q = phi @ (v / s.sqrt())
    spec = kronecker.kronecker_spectrum(q, s, b, d)
    residual = y - c
    a = kronecker.solve(spec, residual)
    mll = kronecker.log_marginal_likelihood(spec, residual, a)
    g, g0 = kronecker.predictive_weights(spec, b)
    # M = K_mm^{-1} K_mn A B = L^{-ᵀ} Φᵀ A B and U = L^{-ᵀ} V S^{1/2}.
    weights = torch.linalg.solve_triangular(chol.T, torch.cat([phi.T @ (a @ b), v * s.sqrt()], 1), upper=True)
    posterior = Posterior(
        basis=z, mean_weights=weights[:, :b.shape[0]], proj=weights[:, b.shape[0]:],
        delta_g=g - g0, g0=g0, b_diag=torch.diagonal(b).clone(), noise=d, mean=c.clone(), tail_from_kernel=False,
    )
    return posterior, float(mll)


def _fingerprint(states: np.ndarray, actions: np.ndarray) -> str:
    """Identifies the conditioning data, so its marginal likelihood is not recomputed."""
    h = hashlib.sha1()
    for arr in (states, actions):
        h.update(np.ascontiguousarray(arr, dtype=np.float32).tobytes())
    return h.hexdigest()


LEARN_MATRICES = 13
"""n×n float64 matrices the marginal likelihood's learning step holds at once on m states (measured: peak
resident memory 12.7 m² · 8 bytes): the kernel and its autograd intermediates, eigh's input, output and workspace,
the analytic gradients."""
EXACT_MATRICES = 6
"""n×n float64 matrices exact conditioning holds at once (measured 5.4): K_x, eigh's eigenvectors and workspace
(2 n²), the kept components, their bytes when the prior is saved."""
INDUCING_MATRICES = 3
"""n×m float64 matrices Nyström conditioning holds at once (measured 3.0): K_mn, Φ, Q."""


def fit_memory(n: int, config: GPConfig) -> dict[str, tuple[int, str]]:
    """Bytes and a description of the two large steps of a GP fit on ``n`` states: ``learn`` (the marginal
    likelihood on the subset) and ``condition`` (exact up to ``max_exact`` states, else Nyström)."""
    m = 0 if config.iters == 0 else n if config.fit_subset == 0 else min(n, config.fit_subset)
    steps = {"learn": (LEARN_MATRICES * m * m * 8, f"learning on {m} states ({LEARN_MATRICES} {m}×{m} float64 "
                                                   "matrices)")}
    if config.exact_on(n):
        steps["condition"] = (EXACT_MATRICES * n * n * 8, f"exact conditioning ({EXACT_MATRICES} {n}×{n} float64 "
                                                         "matrices)")
    else:
        k = min(n, config.num_inducing)
        steps["condition"] = (INDUCING_MATRICES * n * k * 8, f"conditioning on {k} inducing states "
                                                             f"({INDUCING_MATRICES} {n}×{k} float64 matrices)")
    return steps


def available_memory(device: torch.device) -> int | None:
    """Bytes a fit may still allocate on ``device``: free GPU memory, or on the CPU the least of the system's
    MemAvailable, the room left under the address-space limit (``ulimit -v``) and under the cgroup's memory.max."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    room: list[int] = []
    try:
        meminfo = Path("/proc/meminfo").read_text()
        room += [int(line.split()[1]) * 1024 for line in meminfo.splitlines() if line.startswith("MemAvailable:")]
        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit != resource.RLIM_INFINITY:
            status = Path("/proc/self/status").read_text()
            used = [int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmSize:")]
            room.append(limit - (used[0] if used else 0))
        cgroup_max = Path("/sys/fs/cgroup/memory.max")
        if cgroup_max.is_file() and cgroup_max.read_text().strip() != "max":
            current = Path("/sys/fs/cgroup/memory.current")
            room.append(int(cgroup_max.read_text()) - (int(current.read_text()) if current.is_file() else 0))
    except (OSError, ValueError):
        pass
    return min(room) if room else None


def check_fit_memory(n: int, config: GPConfig) -> None:
    """Refuse, before any work, a fit on ``n`` states whose largest step needs more memory than is available,
    saying which setting makes it fit."""
    steps = fit_memory(n, config)
    need, what = max(steps.values())
    room = available_memory(resolve_device(config.device))
    if room is None or need <= room:
        return
    raise NppacError(f"a GP fit on {n} states needs about {_size(need)} for {what}, but only {_size(room)} "
                     f"are available; {_memory_advice(n, config, steps, room)}")


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{max(n_bytes, 0) / 2**20:.2g} MiB"


def _memory_advice(n: int, config: GPConfig, steps: dict[str, tuple[int, str]], room: int) -> str:
    room = max(room, 0)
    advice = []
    if steps["learn"][0] > room:
        advice.append(f"learn on fewer states (--fit-subset {max(1, math.isqrt(room // (LEARN_MATRICES * 8)))})")
    if steps["condition"][0] > room:
        inducing = max(1, min(config.num_inducing, room // (INDUCING_MATRICES * 8 * n)))
        advice.append(f"condition on inducing states (--max-exact {n - 1} --num-inducing {inducing})"
                      if config.exact_on(n)
                      else f"condition on fewer inducing states (--num-inducing {inducing})")
    return " and ".join(advice) + ", or fit on fewer demonstrations"


class GPPrior:
    """Behavioral reference policy π0 = the observed predictive of a multi-output exact GP.

    Build with a :class:`GPConfig`, then :meth:`fit` on demonstrations; or
    :meth:`load` a saved one. :meth:`predict` is batched, chunked and runs on the
    device the prior lives on (:meth:`to`), returning tensors on the input's device.
    """

    kind = "gp"
    squashed = False

    def __init__(self, config: GPConfig | None = None, obs_dim: int = 0, act_dim: int = 0) -> None:
        self.config = (config or GPConfig()).validate()
        self._build(obs_dim, act_dim)

    def _build(self, obs_dim: int, act_dim: int) -> None:
        """A fresh, unfitted model for the given dimensions."""
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.hyper = ICMHyperparameters(obs_dim, act_dim, self.config.rank, self.config.min_noise)
        self.hyper.to(self.config.device)
        self.x_mean = torch.zeros(obs_dim, dtype=DTYPE, device=self.config.device)
        self.x_scale = torch.ones(obs_dim, dtype=DTYPE, device=self.config.device)
        self.x_train: torch.Tensor | None = None
        self.y_train: torch.Tensor | None = None
        self.posterior: Posterior | None = None
        self.conditioning: str = ""
        self.fit_seconds: float | None = None
        self.fit_info: dict[str, Any] = {}
        self._train_mll: tuple[str, float] | None = None
        self._full_posterior: Posterior | None = None
        self._love: torch.Tensor | None = None

    # ---------------------------------------------------------------- fitting
    @property
    def device(self) -> torch.device:
        return self.hyper.mean.device

    def standardize(self, states: torch.Tensor) -> torch.Tensor:
        """(s − mean) / scale with the scaler of the training states, float64 on the prior's device."""
        return (states.to(self.device, DTYPE) - self.x_mean) / self.x_scale

    def fit(self, demos: Demonstrations, progress: Progress | None = None) -> dict[str, Any]:
        """Learn the hyperparameters (on a subset), then condition on every demonstration."""
        start = time.perf_counter()
        states, actions = check_data(demos.states, demos.actions)
        check_fit_memory(len(states), self.config)
        self._build(states.shape[1], actions.shape[1])
        dev = self.device
        mean = states.mean(0, dtype=np.float64)
        scale = states.std(0, dtype=np.float64)
        # Constant state dimensions carry no information; scale 1 leaves them at 0.
        self.x_mean = torch.as_tensor(mean, dtype=DTYPE, device=dev)
        self.x_scale = torch.as_tensor(np.where(scale > 1e-8, scale, 1.0), dtype=DTYPE, device=dev)
        x, y = self.standardize(torch.from_numpy(states)), torch.as_tensor(actions, dtype=DTYPE, device=dev)
        generator = torch.Generator().manual_seed(self.config.seed)
        n = len(x)
        m = n if self.config.fit_subset in (0, None) or self.config.fit_subset >= n else self.config.fit_subset
        subset = torch.randperm(n, generator=generator)[:m].to(dev)
        self.hyper.initialize(y[subset], generator)
        history = self._optimize(x[subset], y[subset], progress)
        learned = time.perf_counter()
        if progress:
            progress(f"conditioning on {n} states", 0, 1)
        self._condition(x, y, _fingerprint(states, actions), generator)
        posterior = self._fitted()[0]
        if progress:
            progress(f"conditioning on {n} states", 1, 1)
        self.fit_seconds = time.perf_counter() - start
        self.fit_info = {
            "optimizer": self.config.optimizer, "iterations": history["iterations"], "subset": m,
            "subset_mll_per_entry": history["best_mll_per_entry"],
            "mll_per_entry": self._train_mll[1] / (n * self.act_dim) if self._train_mll else None,
            "conditioning": self.conditioning, "predict_rank": posterior.rank,
            "predict_float64_rank": int(posterior.proj.shape[1]),
            **self.hyperparameter_summary(), "learn_seconds": learned - start,
            "condition_seconds": self.fit_seconds - (learned - start), "fit_seconds": self.fit_seconds,
        }
        return dict(self.fit_info)

    def _subset_mll(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.hyper
        kx = kernel_matrix(x, x, h.lengthscale, self.config.kernel)
        return kronecker.exact_mll(kx, h.task_covariance, h.noise, h.mean, y)

    def _optimize(self, x: torch.Tensor, y: torch.Tensor, progress: Progress | None) -> dict[str, Any]:
        """Maximize the exact marginal likelihood per entry, L / (m T), on the states ``x``."""
        cfg, entries = self.config, y.numel()
        params = list(self.hyper.parameters())
        stage = f"GP hyperparameters ({cfg.optimizer}, {len(x)} states)"
        evals, best, best_params = 0, -math.inf, copy.deepcopy(self.hyper.state_dict())

        def objective() -> torch.Tensor:
            nonlocal evals, best, best_params
            for p in params:
                p.grad = None
            loss = -self._subset_mll(x, y) / entries
            if not torch.isfinite(loss):
                raise NonFiniteError(f"GP marginal likelihood became {loss.item()} at iteration {evals}; "
                                     "try a smaller --iters or lr, or another kernel")
            loss.backward()
            evals += 1
            if -loss.item() > best:
                best = -loss.item()
                best_params = copy.deepcopy(self.hyper.state_dict())
            if progress:
                progress(stage, evals, cfg.iters)
            return loss

        if cfg.iters > 0 and cfg.optimizer == "adam":
            adam = torch.optim.Adam(params, lr=cfg.lr)
            trace: list[float] = []
            for _ in range(cfg.iters):
                objective()
                adam.step()
                trace.append(best)
                # The published 1000 iterations spend their second half creeping the noise toward its floor.
                if cfg.tol > 0 and len(trace) > PLATEAU_WINDOW and trace[-1] - trace[-1 - PLATEAU_WINDOW] < cfg.tol:
                    break
        elif cfg.iters > 0:
            lbfgs = torch.optim.LBFGS(params, lr=1.0, max_iter=cfg.iters, max_eval=cfg.iters,
                                      line_search_fn="strong_wolfe", tolerance_grad=1e-7, tolerance_change=1e-10)
            lbfgs.step(objective)
        if progress and evals:
            progress(stage, evals, evals)
        # Adam oscillates around the optimum at lr 0.1: keep the best iterate seen.
        self.hyper.load_state_dict(best_params)
        if not math.isfinite(best):
            with torch.no_grad():
                best = float(self._subset_mll(x, y)) / entries
        return {"iterations": evals, "best_mll_per_entry": best}

    @torch.no_grad()
    def _condition(self, x: torch.Tensor, y: torch.Tensor, fingerprint: str, generator: torch.Generator) -> None:
        self.x_train, self.y_train = x, y
        self._full_posterior = self._love = None
        if self.config.exact_on(len(x)):
            self.conditioning = "exact"
            self.posterior, mll = _exact_posterior(x, y, self.hyper, self.config.kernel, self.config.predict_rtol,
                                                   generator)
        else:
            self.conditioning = "inducing"
            self.posterior, mll = _inducing_posterior(x, y, self.hyper, self.config.kernel,
                                                      self.config.num_inducing, generator)
        self._train_mll = (fingerprint, mll)

    def condition(self, states: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor) -> None:
        """Condition on (states, actions) with the current hyperparameters and scaler (no learning)."""
        states_np, actions_np = check_data(states, actions)
        if states_np.shape[1] != self.obs_dim or actions_np.shape[1] != self.act_dim:
            raise NppacError(f"GP prior expects {self.obs_dim}-dim states and {self.act_dim}-dim actions, "
                             f"got {states_np.shape[1]} and {actions_np.shape[1]}")
        check_fit_memory(len(states_np), replace(self.config, iters=0))
        x = self.standardize(torch.as_tensor(states_np))
        y = torch.as_tensor(actions_np, dtype=DTYPE, device=self.device)
        self._condition(x, y, _fingerprint(states_np, actions_np), torch.Generator().manual_seed(self.config.seed))

    def check_parameters(self, where: str | Path) -> None:
        """Refuse a GP whose positive quantities (lengthscales, B's diagonal terms v, noises, state scales) are not
        finite and > 0, or whose predictions at (up to 256 of) its training states are not finite."""
        h = self.hyper
        with torch.no_grad():
            check_positive(where, {"lengthscale": h.lengthscale, "v": h.log_v.exp(), "noise": h.noise,
                                   "x_scale": self.x_scale}, "the GP cannot be conditioned with it")
            if self.x_train is not None and len(self.x_train):
                states = self.x_train[:256] * self.x_scale + self.x_mean
                check_predictions(where, *self.predict(states), "training state")

    def hyperparameter_summary(self) -> dict[str, float]:
        """A few numbers that describe the learned model (for logs and metrics.json)."""
        h = self.hyper
        with torch.no_grad():
            ls, b, d = h.lengthscale, h.task_covariance, h.noise
            return {
                "lengthscale_median": float(ls.median()), "lengthscale_min": float(ls.min()),
                "b_diag_mean": float(torch.diagonal(b).mean()), "noise_mean": float(d.mean()),
                "noise_min": float(d.min()),
            }

    # ------------------------------------------------------------- prediction
    def _fitted(self) -> tuple[Posterior, torch.Tensor, torch.Tensor]:
        """The posterior and the (standardized) states and actions it is conditioned on."""
        if self.posterior is None or self.x_train is None or self.y_train is None:
            raise NppacError("GP prior is not fitted: call fit() or load a saved prior first")
        return self.posterior, self.x_train, self.y_train

    def set_variance(self, estimate: VarianceEstimate, rank: int | None = None, seed: int | None = None) -> GPPrior:
        """Choose which predictive variance :meth:`predict` returns (exact or LOVE's); returns self.

        LOVE's root is computed on the first prediction that needs it and kept.
        """
        config = replace(self.config, variance=estimate, love_rank=self.config.love_rank if rank is None else rank,
                         love_seed=self.config.love_seed if seed is None else seed).validate()
        if config != self.config:
            self._love = None
        self.config = config
        return self

    @torch.no_grad()
    def _love_root(self) -> torch.Tensor:
        if self._love is None:
            if self.conditioning != "exact" or self.x_train is None:
                n = 0 if self.x_train is None else len(self.x_train)
                raise NppacError(f"the LOVE variance needs a GP conditioned exactly on its data; this one uses "
                                 f"{self.conditioning or 'no'} conditioning (n = {n}"
                                 f" > max_exact = {self.config.max_exact}); use the exact variance")
            kx = kernel_matrix(self.x_train, self.x_train, self.hyper.lengthscale, self.config.kernel)
            self._love = love_root(kx, self.hyper.task_covariance, self.hyper.noise, self.config.love_rank,
                                   self.config.love_seed)
        return self._love

    @torch.no_grad()
    def predict(self, states: torch.Tensor, exact: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ0, σ0), each (batch, act_dim), on the device and in the float dtype of ``states``.

        σ0² is the exact predictive variance, or LOVE's estimate where the config's
        ``variance`` is "love" (:meth:`set_variance`). ``exact=True`` keeps every
        eigen-component of K_x (one extra eigendecomposition, cached); with inducing
        points the approximation is already evaluated in full.
        """
        posterior = self._fitted()[0]
        if exact and self.conditioning == "exact":
            posterior = self._exact_full_posterior()
        check_states(states, self.obs_dim)
        love = self._love_root() if self.config.variance == "love" else None

        def block(kstar: torch.Tensor) -> list[torch.Tensor]:
            mean, var = posterior.predict(kstar)
            if love is not None:
                var = love_variance(kstar, love, posterior.b_diag, posterior.noise)
            return [mean, var.sqrt()]

        mean, std = self._by_blocks(posterior, states, block)
        return mean, std

    @torch.no_grad()
    def predict_mean(self, states: torch.Tensor) -> torch.Tensor:
        """μ0 alone, as :meth:`predict` gives it, without the variance: the mean action needs only this, and the
        variance's products with the eigen-components are most of a prediction's cost."""
        posterior = self._fitted()[0]
        check_states(states, self.obs_dim)
        return self._by_blocks(posterior, states, lambda kstar: [posterior.predict_mean(kstar)])[0]

    def _by_blocks(self, posterior: Posterior, states: torch.Tensor,
                   predict: Callable[[torch.Tensor], list[torch.Tensor]]) -> list[torch.Tensor]:
        """``predict`` of the kernel rows k(s, basis) in row blocks of bounded size, each output concatenated, on the
        device and in the float dtype of ``states``."""
        out_dtype = states.dtype if states.is_floating_point() else torch.float32
        x = self.standardize(states)
        rows = max(1, _CHUNK_ELEMENTS // max(1, len(posterior.basis)))
        parts = [predict(kernel_matrix(block, posterior.basis, self.hyper.lengthscale, self.config.kernel))
                 for block in torch.split(x, rows)]  # one (empty) block for no states
        return [torch.cat(column).to(states.device, out_dtype) for column in zip(*parts)]

    @torch.no_grad()
    def _exact_full_posterior(self) -> Posterior:
        if self._full_posterior is None:
            _, x, y = self._fitted()
            self._full_posterior, _ = _exact_posterior(x, y, self.hyper, self.config.kernel, 0.0, torch.Generator())
        return self._full_posterior

    def log_prob(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log π0(a|s) = log N(a; μ0(s), diag σ0²(s)), summed over action dimensions, (batch,)."""
        mean, std = self.predict(states)
        return gaussian_log_prob(actions.to(mean), mean, std)

    @torch.no_grad()
    def log_marginal_likelihood(self, states: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor) -> float:
        """log p(actions | states) of all n·T targets under the current hyperparameters.

        Free for the conditioning data (computed while conditioning); otherwise one
        eigendecomposition (or the Nyström approximation beyond ``max_exact`` states).
        """
        states_np, actions_np = check_data(states, actions)
        key = _fingerprint(states_np, actions_np)
        if self._train_mll is not None and self._train_mll[0] == key:
            return self._train_mll[1]
        x = self.standardize(torch.as_tensor(states_np))
        y = torch.as_tensor(actions_np, dtype=DTYPE, device=self.device)
        if self.config.exact_on(len(x)):
            kx = kernel_matrix(x, x, self.hyper.lengthscale, self.config.kernel)
            return float(kronecker.condition(kx, self.hyper.task_covariance, self.hyper.noise, self.hyper.mean, y)[2])
        generator = torch.Generator().manual_seed(self.config.seed)
        return _inducing_posterior(x, y, self.hyper, self.config.kernel, self.config.num_inducing, generator)[1]

    # ---------------------------------------------------------- persistence
    def to(self, device: torch.device | str) -> GPPrior:
        """Move the model (hyperparameters, scaler, posterior) to ``device``; returns self."""
        self.hyper.to(device)
        for name in ("x_mean", "x_scale", "x_train", "y_train", "posterior", "_full_posterior", "_love"):
            value = getattr(self, name)
            setattr(self, name, None if value is None else value.to(device))
        return self

    def save(self, directory: str | Path) -> None:
        """Write ``settings.json`` and ``weights.safetensors`` (hyperparameters, scaler, data, posterior)."""
        posterior, x_train, y_train = self._fitted()
        tensors = {f"hyper.{k}": v for k, v in self.hyper.state_dict().items()}
        # Exact conditioning predicts against the training states themselves: store them once.
        tensors |= {f"posterior.{k}": v for k, v in posterior.tensors().items()
                    if not (k == "basis" and self.conditioning == "exact")}
        tensors |= {"x_mean": self.x_mean, "x_scale": self.x_scale, "x_train": x_train, "y_train": y_train}
        write_saved(directory, saved_settings(self, conditioning=self.conditioning, n=len(x_train),
                                              train_mll=None if self._train_mll is None else list(self._train_mll)),
                    tensors)

    @classmethod
    def load(cls, directory: str | Path, device: str | torch.device = "cpu") -> GPPrior:
        """Read a prior written by :meth:`save`, onto ``device``."""
        prior, settings, tensors = read_fitted(cls, GPConfig, directory, device)
        load_weights(prior.hyper, {k[len("hyper."):]: v for k, v in tensors.items() if k.startswith("hyper.")},
                     directory)
        # In the dtypes a fit leaves (float64; the exact posterior's tail float32), of sizes that agree.
        tensors = {k: v.to(torch.float32 if k == "posterior.proj_tail" else DTYPE) for k, v in tensors.items()}
        d, t, n = prior.obs_dim, prior.act_dim, settings.get("n", len(tensors.get("x_train", ())))
        m = len(tensors.get("posterior.basis", tensors.get("x_train", ())))
        h, tail = (tensors[k].shape[-1] if k in tensors and tensors[k].ndim == 2 else 0
                   for k in ("posterior.proj", "posterior.proj_tail"))
        check_shapes(directory, tensors, {
            "x_mean": (d,), "x_scale": (d,), "x_train": (n, d), "y_train": (n, t), "posterior.mean_weights": (m, t),
            "posterior.proj": (m, h), "posterior.delta_g": (h + tail, t),
            **{f"posterior.{k}": (t,) for k in ("g0", "b_diag", "noise", "mean")},
            **{k: (m, shape) for k, shape in (("posterior.basis", d), ("posterior.proj_tail", tail)) if k in tensors}})
        prior.x_mean, prior.x_scale = tensors["x_mean"], tensors["x_scale"]
        prior.x_train, prior.y_train = tensors["x_train"], tensors["y_train"]
        prior.conditioning = settings["conditioning"]
        saved = {k: tensors[f"posterior.{k}"] for k in Posterior._TENSORS if f"posterior.{k}" in tensors}
        saved.setdefault("basis", prior.x_train)
        prior.posterior = Posterior(**saved, tail_from_kernel=prior.conditioning == "exact")
        if settings.get("train_mll"):
            fingerprint, mll = settings["train_mll"]
            prior._train_mll = (str(fingerprint), float(mll))
        return loaded(prior, settings, directory, device)


