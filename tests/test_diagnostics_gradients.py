"""Proposition 1 measured: the actor-loss gradient norm grows like 1/σ0² at fixed |a − μ0|."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nppac.diagnostics.gradients import GaussianPolicy, ProbeConfig, sigma0_sweep, sweep_grad_norms
from nppac.errors import NppacError


def toy_states(n: int = 300, obs_dim: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    low_rank = rng.normal(size=(n, 2)) @ rng.normal(size=(2, obs_dim))
    return (low_rank + 0.05 * rng.normal(size=(n, obs_dim))).astype(np.float32)


def test_sweep_grows_monotonically_and_like_inverse_square():
    config = ProbeConfig(n_states=128)
    sweep = sigma0_sweep(toy_states(), act_dim=3, config=config)
    order = np.argsort(sweep.sigma0)
    assert np.all(np.diff(sweep.grad_norm[order]) < 0), "norm must shrink as σ0 grows"
    assert sweep.loglog_slope() == pytest.approx(-2.0, abs=0.05)
    # Three decades of σ0 buy (nearly) six decades of gradient norm.
    assert sweep.grad_norm[order[0]] / sweep.grad_norm[order[-1]] > 1e5
    np.testing.assert_allclose(sweep.reference[order[:2]], sweep.grad_norm[order[:2]], rtol=0.01)


def test_sweep_matches_closed_form():
    # ∇φ J = ∇φ mean(α log π(a|s)) + (α d / σ0²) ∇φ mean(Σ_i a_i), since ∂(−log π0)/∂a_i = (a_i − μ0,i)/σ0² = d/σ0².
    torch.manual_seed(1)
    policy = GaussianPolicy(4, 2, (16,))
    states = torch.randn(32, 4)
    eps = torch.randn(32, 2)
    alpha, d = 0.3, 0.7
    sigma0 = [1e-2, 1e-1, 1.0]

    mean, std = policy(states)
    a = mean + std * eps
    log_pi = torch.distributions.Normal(mean, std).log_prob(a).sum(-1)
    params = list(policy.parameters())
    g_pi = torch.autograd.grad(alpha * log_pi.mean(), params, retain_graph=True)
    g_a = torch.autograd.grad(alpha * a.sum(-1).mean(), params)
    expected = [float(torch.sqrt(sum(((gp + d / s0**2 * ga) ** 2).sum() for gp, ga in zip(g_pi, g_a))))
                for s0 in sigma0]

    measured = sweep_grad_norms(policy, states, eps, sigma0, d, alpha)
    np.testing.assert_allclose(measured, expected, rtol=1e-4)


def test_probe_config_rejects_non_positive_settings():
    with pytest.raises(NppacError, match="--alpha"):
        ProbeConfig(alpha=0.0)
    with pytest.raises(NppacError, match="σ0"):
        ProbeConfig(sigma0=(0.0, 1.0))
