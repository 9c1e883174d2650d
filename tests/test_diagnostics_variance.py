"""Variance maps: the principal plane, the grid and the std summaries, with stand-in priors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nppac.diagnostics.inputs import LabelledPrior
from nppac.diagnostics.variance import VarianceMapConfig, plot_variance_map, principal_plane, variance_map
from nppac.errors import NppacError


def toy_states(n: int = 200, obs_dim: int = 6, seed: int = 0) -> np.ndarray:
    """States near a 2-D plane in ``obs_dim`` dimensions."""
    rng = np.random.default_rng(seed)
    low_rank = rng.normal(size=(n, 2)) @ rng.normal(size=(2, obs_dim))
    return (low_rank + 0.01 * rng.normal(size=(n, obs_dim))).astype(np.float32)


class CollapsedNN:
    """Mimics a maximum-likelihood NN prior: the same tiny std everywhere."""

    kind, act_dim = "nn", 2

    def __init__(self, obs_dim: int) -> None:
        self.obs_dim = obs_dim

    def predict(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(len(states), 2), torch.full((len(states), 2), 0.01)


class DistanceGP:
    """Mimics a GP prior: std from noise level near the data to the prior level far from it."""

    kind, act_dim = "gp", 2

    def __init__(self, data: np.ndarray, lengthscale: float = 0.5) -> None:
        self.data, self.obs_dim, self.lengthscale = torch.as_tensor(data), data.shape[1], lengthscale

    def predict(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d2 = torch.cdist(states, self.data).min(dim=1).values.pow(2)
        var = 1e-4 + (1 - torch.exp(-0.5 * d2 / self.lengthscale**2))
        return torch.zeros(len(states), 2), var.sqrt()[:, None].expand(-1, 2)


def test_plane_recovers_the_data_plane_and_lifts_back():
    states = toy_states().astype(np.float64)
    plane = principal_plane(states)
    np.testing.assert_allclose(plane.components @ plane.components.T, np.eye(2), atol=1e-10)
    assert plane.explained_variance_ratio.sum() > 0.999
    # States on the plane survive project → lift.
    np.testing.assert_allclose(plane.lift(plane.project(states)), states, atol=0.05)
    with pytest.raises(NppacError):
        principal_plane(np.zeros((10, 1)))


def test_grid_spans_extent_times_data_range():
    states = toy_states()
    vmap = variance_map(states, [LabelledPrior("NN", CollapsedNN(6))], VarianceMapConfig(grid=10, extent=3.0))
    z = principal_plane(states).project(states.astype(np.float64))
    for k, edges in enumerate([vmap.pc1_edges, vmap.pc2_edges]):
        assert len(edges) == 11
        assert edges[-1] - edges[0] == pytest.approx(3.0 * np.ptp(z[:, k]))
        assert 0.5 * (edges[0] + edges[-1]) == pytest.approx(0.5 * (z[:, k].min() + z[:, k].max()))
    with pytest.raises(NppacError, match="--extent"):
        VarianceMapConfig(extent=0.5)


def test_gp_like_std_grows_off_data_and_nn_like_does_not(tmp_path):
    states = toy_states()
    priors = [LabelledPrior("GP", DistanceGP(states)), LabelledPrior("NN", CollapsedNN(6))]
    vmap = variance_map(states, priors, VarianceMapConfig(grid=24))
    gp, nn = vmap.priors
    assert nn.std_at_data == pytest.approx(0.01) and nn.std_outer_ring == pytest.approx(0.01)
    assert nn.ratio == pytest.approx(1.0)
    assert gp.std_at_data < 0.05
    assert gp.std_outer_ring > 0.9  # the ring is far from the data: back at the prior std 1
    assert gp.ratio > 20
    numbers = vmap.to_json()
    assert [p["kind"] for p in numbers["priors"]] == ["gp", "nn"]
    assert numbers["priors"][0]["ratio"] == pytest.approx(gp.std_outer_ring / gp.std_at_data)
    figure = plot_variance_map(vmap, tmp_path / "variance.png")
    assert figure.stat().st_size > 10_000
