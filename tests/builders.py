"""Shared test builders: single-threaded torch fixtures, demonstration sets from arrays, and replay batches
with the reference densities that recompute the agents' losses independently of nppac."""

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from torch import nn

from nppac.data.demos import Demonstrations, Trajectory
from nppac.data.replay import Batch


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the body with `count` torch threads, restoring the previous count afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Small matrices: one thread is as fast, and far faster on a busy machine."""
    with torch_threads(1):
        yield


@pytest.fixture(autouse=True)
def one_thread_per_test() -> Iterator[None]:
    """Tiny networks: one thread is fastest, and immune to the other cores being busy."""
    with torch_threads(1):
        yield


def make_demos(states: np.ndarray, actions: np.ndarray) -> Demonstrations:
    """One trajectory with the given states/actions, zero rewards and no episode ends."""
    n = len(states)
    traj = Trajectory(states.astype(np.float32), actions.astype(np.float32), np.zeros(n, np.float32),
                      np.zeros(n, bool), np.zeros(n, bool), states.astype(np.float32))
    return Demonstrations([traj])


def random_batch(n: int, obs_dim: int, act_dim: int, seed: int = 0) -> Batch:
    """n random transitions inside the action box, every fifth terminal, with a cached prior (μ0, σ0) at s and
    an unrelated one at s′ (so that reading the prior at the wrong state changes every number)."""
    g = torch.Generator().manual_seed(seed)
    obs, next_obs = torch.randn(n, obs_dim, generator=g), torch.randn(n, obs_dim, generator=g)
    action = torch.rand(n, act_dim, generator=g) * 1.8 - 0.9
    reward = torch.randn(n, generator=g)
    done = (torch.arange(n) % 5 == 0).float()
    prior = [(torch.rand(n, act_dim, generator=g) * 1.6 - 0.8, 0.2 + 0.6 * torch.rand(n, act_dim, generator=g))
             for _ in range(2)]
    return Batch(obs, action, reward, next_obs, done, prior[0][0], prior[0][1], prior[1][0], prior[1][1])


def move_targets_away(critic_target: nn.Module, scale: float = 0.1, seed: int = 0) -> None:
    """Perturb freshly copied target critics, so that one Polyak step Q̄ ← (1 − τ) Q̄ + τ Q shows τ.

    Right after the copy Q̄ and Q differ only by one critic step, and any τ passes at float32 tolerance.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in critic_target.parameters():
            param.add_(scale * torch.randn(param.shape, generator=g))


def float64_copy(module: nn.Module) -> nn.Module:
    """A float64 copy of a network: the reference computation, free of float32 rounding."""
    return copy.deepcopy(module).double()


def normal_log_density(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag std²) summed over the last dimension, by torch.distributions (not nppac's)."""
    return torch.distributions.Normal(mean, std).log_prob(x).sum(-1)


def tanh_normal_log_density(u: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log-density of a = tanh(u), u ~ N(mean, diag std²): the Gaussian's, less Σ log(1 − tanh²(u))."""
    return normal_log_density(u, mean, std) - torch.log(1.0 - torch.tanh(u).pow(2)).sum(-1)


def assert_grads_equal(module: nn.Module, expected: Sequence[torch.Tensor], rtol: float = 1e-5,
                       atol: float = 1e-6) -> None:
    """The gradients a module's last backward pass left on its parameters equal ``expected`` (same order)."""
    params = list(module.parameters())
    assert len(params) == len(expected)
    for param, grad in zip(params, expected):
        assert param.grad is not None
        torch.testing.assert_close(param.grad.double(), grad.double(), rtol=rtol, atol=atol)
