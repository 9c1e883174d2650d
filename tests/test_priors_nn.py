"""The MLE neural prior: its densities, variants, persistence and the variance collapse."""

import math
import os
import stat

import numpy as np
import pytest
import torch

from nppac.data.demos import Demonstrations
from nppac.errors import NppacError
from nppac.priors import GPConfig, GPPrior, NNConfig, NNPrior, load_prior, tanh_gaussian_log_prob
from tests.builders import make_demos, one_thread  # noqa: F401 (autouse fixture)


def toy_1d(n: int = 300, seed: int = 0) -> Demonstrations:
    rng = np.random.default_rng(seed)
    states = rng.uniform(-1, 1, size=(n, 1))
    actions = 0.6 * np.sin(3 * states) + 0.05 * rng.standard_normal((n, 1))
    return make_demos(states, actions)


def test_tanh_gaussian_density_is_the_change_of_variables_of_the_gaussian():
    mean, std = torch.tensor([[0.3, -1.0]]), torch.tensor([[0.5, 0.2]])
    actions = torch.tensor([[0.9, -0.7]])
    reference = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, std), [torch.distributions.TanhTransform()])
    torch.testing.assert_close(tanh_gaussian_log_prob(actions, mean, std), reference.log_prob(actions).sum(-1))
    # Demonstrated actions at exactly ±1 stay finite.
    assert torch.isfinite(tanh_gaussian_log_prob(torch.tensor([[1.0, -1.0]]), mean, std)).all()


def test_mle_std_collapses_off_the_data_while_the_gp_std_grows():
    """The pathology (DESIGN.md §1) on a 1-D toy set, as numbers."""
    demos = toy_1d()
    nn_prior = NNPrior(NNConfig(hidden=(64, 64), iters=150, patience=30, lr=3e-3))
    gp_prior = GPPrior(GPConfig(kernel="rbf", iters=200))
    nn_prior.fit(demos)
    gp_prior.fit(demos)
    far = torch.tensor([[-4.0], [-3.0], [3.0], [4.0]])
    _, nn_std = nn_prior.predict(far)
    _, gp_std = gp_prior.predict(far)
    _, nn_on_data = nn_prior.predict(torch.from_numpy(demos.states))
    # On the data both match the 0.05 noise; off it the GP reverts to its prior std (≈ 0.4),
    # the MLE network extrapolates its noise-level std.
    assert 0.03 < float(nn_on_data.mean()) < 0.08
    assert float(gp_std.min()) > 0.3
    assert float(nn_std.median()) < 0.25 * float(gp_std.median())


@pytest.mark.parametrize("variant", ["gaussian", "tanh_gaussian", "fixed_std"])
def test_variants_fit_and_round_trip_through_save_load(variant, tmp_path):
    rng = np.random.default_rng(1)
    states = rng.normal(size=(400, 3))
    actions = np.tanh(states[:, :2] + 0.1 * rng.standard_normal((400, 2)))
    demos = make_demos(states, actions)
    prior = NNPrior(NNConfig(variant=variant, hidden=(32,), iters=60, lr=1e-2, fixed_std=0.2))
    info = prior.fit(demos)
    assert info["held_out"] == 40
    assert prior.squashed == (variant == "tanh_gaussian")
    s, a = torch.from_numpy(demos.states[:50]), torch.from_numpy(demos.actions[:50])
    mean, std = prior.predict(s)
    action = torch.tanh(mean) if prior.squashed else mean
    assert float((action - a).pow(2).mean().sqrt()) < 0.2
    if variant == "fixed_std":
        assert torch.all(std == 0.2)
    prior.save(tmp_path / variant)
    loaded = load_prior(tmp_path / variant)
    assert isinstance(loaded, NNPrior) and loaded.config.variant == variant
    for x, y in zip(prior.predict(s), loaded.predict(s)):
        torch.testing.assert_close(x, y, atol=0, rtol=0)
    torch.testing.assert_close(prior.log_prob(s, a), loaded.log_prob(s, a), atol=0, rtol=0)


def test_log_prob_is_the_gaussian_density_of_the_prediction():
    demos = toy_1d(100)
    prior = NNPrior(NNConfig(hidden=(16,), iters=5))
    prior.fit(demos)
    s, a = torch.from_numpy(demos.states[:5]), torch.from_numpy(demos.actions[:5])
    mean, std = prior.predict(s)
    expected = -0.5 * ((a - mean) / std) ** 2 - std.log() - 0.5 * math.log(2 * math.pi)
    torch.testing.assert_close(prior.log_prob(s, a), expected.sum(-1))


def test_early_stopping_restores_the_best_held_out_epoch():
    demos = toy_1d(200)
    prior = NNPrior(NNConfig(hidden=(16,), iters=500, patience=3, lr=3e-2))
    info = prior.fit(demos)
    assert info["epochs"] < 500
    assert info["epochs"] - info["best_epoch"] == 3
    with torch.no_grad():
        held_out = float(prior._log_prob(torch.from_numpy(demos.states), torch.from_numpy(demos.actions)).mean())
    assert math.isfinite(held_out)


def test_bad_settings_and_unfitted_use_are_user_errors():
    with pytest.raises(NppacError, match="variant"):
        NNConfig(variant="beta").validate()
    with pytest.raises(NppacError, match="not fitted"):
        NNPrior(NNConfig(), 2, 1).predict(torch.zeros(1, 2))


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_saved_prior_weights_have_the_mode_of_its_settings(tmp_path, umask):
    prior = NNPrior(NNConfig(hidden=(4,), iters=1))
    prior.fit(toy_1d(20))
    previous = os.umask(umask)
    try:
        prior.save(tmp_path / "prior")
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "prior").iterdir()}
    assert modes == {"settings.json": 0o666 & ~umask, "weights.safetensors": 0o666 & ~umask}
