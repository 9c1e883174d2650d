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


# ------------------------------------------------------------------ priors that cannot be right
def constant_action_demos(n: int = 200):
    """Demonstrations whose second action dimension never moves: any fitted σ0 there is the noise floor."""
    rng = np.random.default_rng(0)
    states = rng.normal(size=(n, 3)).astype(np.float32)
    actions = np.tanh(states[:, :2])
    actions[:, 1] = 0.5
    return make_demos(states, actions)


def test_a_gp_whose_sigma0_is_narrow_everywhere_is_refused_unless_allowed(caplog):
    """A constant action dim: the GP's σ0 stays ~0.02 even 8 state-stds from the data (a KL of ~1e3 per unit of
    action error everywhere); refused, kept with allow_narrow and a WARNING naming the number."""
    demos = constant_action_demos()
    with pytest.raises(NppacError, match=r"σ0 of action dim 1 is at most 0\.0\d+ .*std in that dim is 0\).*"
                                         r"--allow-narrow-prior"):
        fit_prior(demos, "gp", iters=100)
    with caplog.at_level("WARNING"):
        prior, metrics = fit_prior(demos, "gp", iters=100, allow_narrow=True)
    assert metrics["std_offset"]["8"] > 0  # kept
    assert any(r.levelname == "WARNING" and "σ0 of action dim 1 is at most" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING"):  # a varying dim: no word
        fit_prior(make_demos(demos.states, np.tanh(demos.states[:, :2])), "gp", iters=100)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_a_prior_predicting_nan_at_the_data_is_refused_before_it_is_saved(tmp_path, monkeypatch):
    demos = constant_action_demos(40)
    real = GPPrior.predict

    def nan_at_the_data(self, states, exact=False):
        mean, std = real(self, states, exact)
        return mean, torch.where(torch.arange(len(std))[:, None] == 3, torch.nan, std)

    monkeypatch.setattr(GPPrior, "predict", nan_at_the_data)
    with pytest.raises(NppacError, match=r"the gp prior fitted on .*predicts σ0 = nan for action dim 0 at "
                                         r"(training|demonstration) state 3"):
        fit_prior(demos, "gp", iters=2, allow_narrow=True)


def test_a_fit_that_runs_out_of_memory_is_one_line(monkeypatch):
    def no_memory(*args):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: "
                           "you tried to allocate 320000000000 bytes.\nmore lines of C++ frames")

    monkeypatch.setattr("nppac.priors.kronecker.condition", no_memory)
    with pytest.raises(NppacError, match=r"fitting the gp prior on 40 states from .* ran out of memory \(.*not "
                                         r"enough memory: you tried to allocate 320000000000 bytes\.\); learn on "
                                         r"fewer") as err:
        fit_prior(constant_action_demos(40), "gp", iters=2)
    assert "\n" not in str(err.value)
    monkeypatch.setattr("nppac.priors.kronecker.condition", lambda *a: (_ for _ in ()).throw(RuntimeError("bug")))
    with pytest.raises(RuntimeError, match="bug"):  # other errors are not memory's
        fit_prior(constant_action_demos(40), "gp", iters=2)
