"""prior_metrics, offset_states, fit_prior and load_prior."""

import numpy as np
import pytest
import torch

from nppac.errors import NppacError
from nppac.priors import GPPrior, fit_prior, load_prior, make_prior, offset_states, prior_metrics
from tests.builders import make_demos


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small matrices: one thread is as fast, and far faster on a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_offset_states_are_reproducible_and_scaled_by_the_state_std():
    rng = np.random.default_rng(0)
    states = rng.normal(size=(50, 3)) * np.array([1.0, 10.0, 0.0])
    a, b = offset_states(states, 2.0), offset_states(states, 2.0)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (512, 3) and a.dtype == np.float32
    base = offset_states(states, 0.0)
    assert set(map(tuple, base.round(5))) <= set(map(tuple, states.astype(np.float32).round(5)))
    displacement = (offset_states(states, 4.0) - base).std(0)
    np.testing.assert_allclose(displacement, 4.0 * states.std(0), rtol=0.1)  # 512 draws
    assert not np.array_equal(offset_states(states, 2.0, seed=1), a)


def test_gp_metrics_are_consistent_with_the_prior():
    rng = np.random.default_rng(1)
    states = rng.uniform(-1, 1, size=(150, 2)).astype(np.float32)
    actions = np.stack([np.sin(2 * states[:, 0]), 0.5 * states[:, 1]], 1).astype(np.float32)
    demos = make_demos(states, actions)
    prior, metrics = fit_prior(demos, "gp", kernel="rbf", iters=100)
    assert isinstance(prior, GPPrior)
    n_entries = 150 * 2
    assert metrics["mll_per_entry"] == pytest.approx(prior.log_marginal_likelihood(states, actions) / n_entries)
    s, a = torch.from_numpy(states), torch.from_numpy(actions)
    assert metrics["train_nll"] == pytest.approx(float(-prior.log_prob(s, a).sum()) / n_entries, rel=1e-5)
    mean, std = prior.predict(s)
    assert metrics["train_rmse"] == pytest.approx(float((mean.clamp(-1, 1) - a).pow(2).mean().sqrt()), rel=1e-5)
    assert metrics["std_on_data"] == pytest.approx(float(std.mean()), rel=1e-5)
    stds = [metrics["std_offset"][k] for k in ("0.5", "1", "2", "4", "8")]
    assert stds == sorted(stds) and stds[0] > metrics["std_on_data"]
    assert metrics["fit_seconds"] > 0 and metrics["fit"]["iterations"] == 100
    assert metrics["train_rmse"] < 0.05


def test_nn_metrics_and_load_prior_dispatch(tmp_path):
    rng = np.random.default_rng(2)
    states = rng.normal(size=(200, 2)).astype(np.float32)
    actions = np.tanh(states).astype(np.float32)
    prior, metrics = fit_prior(make_demos(states, actions), "nn", hidden=(16,), iters=10)
    assert metrics["kind"] == "nn" and metrics["mll_per_entry"] is None
    prior.save(tmp_path / "nn")
    assert load_prior(tmp_path / "nn").kind == "nn"
    assert prior_metrics(load_prior(tmp_path / "nn"), make_demos(states, actions))["train_nll"] == pytest.approx(
        metrics["train_nll"])


def test_unknown_kinds_and_settings_are_user_errors(tmp_path):
    with pytest.raises(NppacError, match="unknown prior kind"):
        make_prior("tree")
    with pytest.raises(NppacError, match="lengthscale"):
        make_prior("gp", lengthscale=1.0)
    with pytest.raises(NppacError, match="settings.json not found"):
        load_prior(tmp_path)
