"""The GP prior against dense closed forms: marginal likelihood, posterior, gradients, limits."""

import math

import numpy as np
import pytest
import torch

from nppac.errors import NppacError
from nppac.priors import GPConfig, GPPrior, load_prior
from nppac.priors.kernels import KERNELS, kernel_from_sq_dist, kernel_matrix, scaled_sq_dist
from nppac.priors.kronecker import exact_mll
from tests.builders import make_demos, one_thread  # noqa: F401 (autouse fixture)

N, T, D = 40, 3, 4


def random_problem(seed: int = 0, n: int = N) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, D)).astype(np.float32), rng.uniform(-1, 1, size=(n, T)).astype(np.float32)


def randomized_prior(kernel: str, rank: int, states: np.ndarray, actions: np.ndarray, seed: int = 0,
                     **settings) -> GPPrior:
    """A GP with random hyperparameters, conditioned on (states, actions) without learning."""
    prior = GPPrior(GPConfig(kernel=kernel, rank=rank, **settings), D, T)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in prior.hyper.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    prior.condition(states, actions)
    return prior


def dense_reference(prior: GPPrior, states: np.ndarray, actions: np.ndarray, test: torch.Tensor):
    """log N(vec Y; c, K_x ⊗ B + I ⊗ D) and the observed predictive at ``test``, all dense."""
    h, n = prior.hyper, len(states)
    with torch.no_grad():
        x, xs = prior.standardize(torch.from_numpy(states)), prior.standardize(test)
        y = torch.from_numpy(actions).double()
        kx = kernel_matrix(x, x, h.lengthscale, prior.config.kernel)
        b, d, c = h.task_covariance, h.noise, h.mean
        sigma = torch.kron(kx, b) + torch.kron(torch.eye(n, dtype=torch.float64), torch.diag(d))
        mll = torch.distributions.MultivariateNormal(c.repeat(n), sigma).log_prob(y.reshape(-1))
        ks = kernel_matrix(xs, x, h.lengthscale, prior.config.kernel)
        cross = torch.einsum("bi,kj->bjik", ks, b).reshape(len(xs), T, n * T)  # cov(f_j(s*), y_ik)
        mean = c + cross @ torch.linalg.solve(sigma, (y - c).reshape(-1))
        flat = cross.reshape(-1, n * T)
        quad = (flat * torch.linalg.solve(sigma, flat.T).T).sum(1).reshape(len(xs), T)
        var = torch.diagonal(b) - quad + d
    return float(mll), mean, var.sqrt()


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("kernel", KERNELS)
def test_marginal_likelihood_and_posterior_equal_dense_closed_form(kernel, rank):
    states, actions = random_problem()
    prior = randomized_prior(kernel, rank, states, actions)
    test = torch.from_numpy(np.concatenate([states[:5], random_problem(1, 7)[0]])).double()
    mll, mean, std = dense_reference(prior, states, actions, test)
    assert prior.log_marginal_likelihood(states, actions) == pytest.approx(mll, abs=1e-6)
    m, s = prior.predict(test, exact=True)
    torch.testing.assert_close(m, mean, atol=1e-6, rtol=0)
    torch.testing.assert_close(s, std, atol=1e-6, rtol=0)
    # Fast mode drops small eigen-components: same mean, σ0 within its relative tolerance.
    m, s = prior.predict(test)
    torch.testing.assert_close(m, mean, atol=1e-6, rtol=0)
    assert float(((s - std).abs() / std).max()) <= 2 * prior.config.predict_rtol
    # Uncached path (the fingerprint of a copy with one state changed differs): one more eigendecomposition.
    other = states.copy()
    other[0] += 1.0
    mll_other, _, _ = dense_reference(prior, other, actions, test[:1])
    assert prior.log_marginal_likelihood(other, actions) == pytest.approx(mll_other, abs=1e-6)


@pytest.mark.parametrize("kernel", ["rbf", "matern12"])
def test_inducing_points_at_every_state_reproduce_the_exact_posterior(kernel):
    states, actions = random_problem()
    exact = randomized_prior(kernel, 1, states, actions)
    inducing = randomized_prior(kernel, 1, states, actions, conditioning="inducing", num_inducing=N)
    assert inducing.conditioning == "inducing"
    test = torch.from_numpy(random_problem(2, 9)[0]).double()
    (m1, s1), (m2, s2) = exact.predict(test, exact=True), inducing.predict(test)
    torch.testing.assert_close(m1, m2, atol=1e-4, rtol=0)  # the 1e-6 jitter on K_mm is the only difference
    torch.testing.assert_close(s1, s2, atol=1e-4, rtol=0)
    assert inducing.log_marginal_likelihood(states, actions) == pytest.approx(
        exact.log_marginal_likelihood(states, actions), abs=1e-2)


def test_inducing_points_are_a_reasonable_approximation_with_fewer_points():
    rng = np.random.default_rng(3)
    states = rng.uniform(-2, 2, size=(300, 2)).astype(np.float32)
    actions = np.stack([np.sin(states[:, 0]), np.cos(states[:, 1])], 1).astype(np.float32)
    prior = GPPrior(GPConfig(kernel="rbf", iters=60, conditioning="inducing", num_inducing=100))
    prior.fit(make_demos(states, actions))
    mean, std = prior.predict(torch.from_numpy(states))
    assert prior.posterior.basis.shape == (100, 2)
    assert float((mean - torch.from_numpy(actions)).abs().max()) < 0.05
    assert float(std.max()) < 0.2


@pytest.mark.parametrize("kernel", KERNELS)
def test_analytic_gradient_equals_autograd_of_the_dense_likelihood(kernel):
    states, actions = random_problem(4)
    # Duplicate states make K_x's eigenvalues degenerate, where eigh's own backward is NaN/Inf.
    states[10:15] = states[5]
    x, y = torch.from_numpy(states).double(), torch.from_numpy(actions).double()
    gen = torch.Generator().manual_seed(1)
    ls = (0.5 + torch.rand(D, generator=gen, dtype=torch.float64)).requires_grad_()
    w = torch.randn(T, 2, generator=gen, dtype=torch.float64).requires_grad_()
    v = (0.1 + torch.rand(T, generator=gen, dtype=torch.float64)).requires_grad_()
    d = (0.01 + 0.1 * torch.rand(T, generator=gen, dtype=torch.float64)).requires_grad_()
    c = torch.randn(T, generator=gen, dtype=torch.float64).requires_grad_()
    params = [ls, w, v, d, c]

    kx, b = kernel_matrix(x, x, ls, kernel), w @ w.T + torch.diag(v)
    sigma = torch.kron(kx, b) + torch.kron(torch.eye(N, dtype=torch.float64), torch.diag(d))
    dense = torch.distributions.MultivariateNormal(c.repeat(N), sigma).log_prob(y.reshape(-1))
    expected = torch.autograd.grad(dense, params)

    structured = exact_mll(kernel_matrix(x, x, ls, kernel), w @ w.T + torch.diag(v), d, c, y)
    got = torch.autograd.grad(structured, params)
    assert structured.detach().item() == pytest.approx(dense.detach().item(), abs=1e-8)
    for g, e in zip(got, expected):
        assert torch.isfinite(g).all()
        torch.testing.assert_close(g, e, atol=1e-7, rtol=1e-7)


def test_std_is_the_prior_std_far_away_and_below_twice_the_noise_at_the_data():
    states, actions = random_problem(5)
    prior = randomized_prior("matern52", 1, states, actions)
    b_diag = torch.diagonal(prior.hyper.task_covariance).detach()
    noise = prior.hyper.noise.detach()
    far = torch.from_numpy(states[:3]).double() + 1e4
    _, std_far = prior.predict(far)
    torch.testing.assert_close(std_far, (b_diag + noise).sqrt().expand(3, T), atol=1e-9, rtol=0)
    # At a training state the latent variance is below B_jj D_j / (B_jj + D_j) < D_j
    # (what conditioning on that one observation alone would leave).
    _, std_data = prior.predict(torch.from_numpy(states).double())
    bound = (b_diag * noise / (b_diag + noise) + noise).sqrt()
    assert bool((std_data <= bound + 1e-12).all())
    assert bool((std_data >= noise.sqrt() - 1e-12).all())


def test_fit_recovers_noise_and_makes_std_grow_off_the_data():
    rng = np.random.default_rng(0)
    states = rng.uniform(-1, 1, size=(200, 1)).astype(np.float32)
    actions = (0.6 * np.sin(3 * states) + 0.05 * rng.standard_normal((200, 1))).astype(np.float32)
    prior = GPPrior(GPConfig(kernel="rbf", iters=300))
    info = prior.fit(make_demos(states, actions))
    assert info["subset"] == 200 and info["conditioning"] == "exact"
    noise = float(prior.hyper.noise.detach())
    assert 0.5 * 0.05**2 < noise < 2.0 * 0.05**2
    assert info["mll_per_entry"] == pytest.approx(info["subset_mll_per_entry"], abs=1e-6)  # subset = all
    grid = torch.tensor([[0.0], [2.0], [4.0], [20.0]])
    _, std = prior.predict(grid)
    assert float(std[0]) < 0.08
    assert float(std[0]) < float(std[1]) < float(std[2]) < float(std[3]) + 1e-6
    prior_std = float((torch.diagonal(prior.hyper.task_covariance) + prior.hyper.noise).sqrt().detach())
    assert float(std[3]) == pytest.approx(prior_std, rel=1e-6)


def test_lbfgs_reaches_at_least_the_adam_likelihood():
    rng = np.random.default_rng(1)
    states = rng.uniform(-1, 1, size=(120, 2)).astype(np.float32)
    actions = np.concatenate([np.sin(2 * states[:, :1]), states[:, 1:] ** 2], 1)
    actions = (actions + 0.05 * rng.standard_normal(actions.shape)).astype(np.float32)
    demos = make_demos(states, actions)
    adam = GPPrior(GPConfig(kernel="matern32", iters=150)).fit(demos)
    lbfgs = GPPrior(GPConfig(kernel="matern32", optimizer="lbfgs", iters=60)).fit(demos)
    assert lbfgs["iterations"] <= 60
    assert lbfgs["mll_per_entry"] > adam["mll_per_entry"] - 0.02


def test_subset_fit_conditions_on_every_state():
    rng = np.random.default_rng(2)
    states = rng.uniform(-1, 1, size=(150, 3)).astype(np.float32)
    actions = np.tanh(states[:, :2] * 2).astype(np.float32)
    prior = GPPrior(GPConfig(iters=30, fit_subset=50))
    info = prior.fit(make_demos(states, actions))
    assert info["subset"] == 50
    assert prior.posterior.basis.shape == (150, 3)
    assert math.isfinite(info["mll_per_entry"]) and info["mll_per_entry"] != info["subset_mll_per_entry"]


def test_fast_prediction_is_within_one_percent_of_exact_on_held_out_states():
    rng = np.random.default_rng(3)
    states = rng.normal(size=(800, 6)).astype(np.float32)
    actions = np.tanh(states[:, :4] @ rng.normal(size=(4, 4)) / 2).astype(np.float32)
    prior = GPPrior(GPConfig(kernel="matern52", iters=40, fit_subset=300))
    prior.fit(make_demos(states[:600], actions[:600]))
    assert prior.posterior.proj.shape[1] < 600  # some components were dropped
    held_out = torch.from_numpy(np.concatenate([states[600:], states[600:] * 3.0]))
    mean_fast, std_fast = prior.predict(held_out)
    mean_exact, std_exact = prior.predict(held_out, exact=True)
    torch.testing.assert_close(mean_fast, mean_exact)
    assert float(((std_fast - std_exact).abs() / std_exact).max()) < 0.01


@pytest.mark.parametrize("conditioning", ["exact", "inducing"])
def test_the_mean_alone_is_the_predicted_mean_and_gives_the_mean_action(conditioning):
    from nppac.priors import combine_priors, fit_prior, mean_action
    from nppac.priors.metrics import prior_mean

    rng = np.random.default_rng(4)
    states = rng.normal(size=(300, 6)).astype(np.float32)
    actions = np.tanh(states[:, :3] @ rng.normal(size=(3, 3))).astype(np.float32)
    settings = {"num_inducing": 100} if conditioning == "inducing" else {}
    prior = GPPrior(GPConfig(kernel="rbf", iters=20, conditioning=conditioning, **settings))
    prior.fit(make_demos(states, actions))
    test = torch.from_numpy(np.concatenate([states[:50], 3.0 * states[50:100]]))
    mean, _ = prior.predict(test)
    torch.testing.assert_close(prior.predict_mean(test), mean, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(mean_action(prior, test), mean.clamp(-1.0, 1.0), rtol=1e-6, atol=1e-7)
    assert prior.predict_mean(test.double()).dtype == torch.float64
    # The ablation's mean is its GP's.
    nn_prior, _ = fit_prior(make_demos(states, actions), "nn", hidden=(8,), iters=2)
    combined = combine_priors(prior, nn_prior)
    torch.testing.assert_close(prior_mean(combined, test), combined.predict(test)[0], rtol=1e-6, atol=1e-7)


def test_float32_tail_keeps_sigma_within_tolerance_and_survives_save_load(tmp_path):
    # A smooth kernel over 1,200 states with the noise at its floor: near the data σ0 is a
    # difference of terms ~10⁴ times larger, where a plain float32 product of k* misses by ~1 %.
    rng = np.random.default_rng(4)
    states = rng.uniform(-1, 1, size=(1300, 3)).astype(np.float32)
    actions = np.sin(2 * states @ rng.normal(size=(3, 2))).astype(np.float32)
    prior = GPPrior(GPConfig(kernel="matern52"), 3, 2)
    with torch.no_grad():
        prior.hyper.log_lengthscale.fill_(math.log(1.5))
        prior.hyper.log_noise.fill_(math.log(1e-4))
        prior.hyper.log_shared_noise.fill_(math.log(1e-4))
    prior.condition(states[:1200], actions[:1200])
    post = prior.posterior
    assert post.proj.dtype == torch.float64 and post.proj_tail.dtype == torch.float32
    assert post.proj.shape[1] >= 16 and post.proj_tail.shape[1] > post.proj.shape[1]
    held_out = torch.from_numpy(np.concatenate([states[1200:], states[1200:] + 0.1])).double()
    mean_exact, std_exact = prior.predict(held_out, exact=True)
    mean_fast, std_fast = prior.predict(held_out)
    torch.testing.assert_close(mean_fast, mean_exact)
    assert float(((std_fast - std_exact).abs() / std_exact).max()) <= prior.config.predict_rtol
    prior.save(tmp_path / "gp")
    loaded = GPPrior.load(tmp_path / "gp")
    assert loaded.posterior.proj_tail.dtype == torch.float32
    for a, b in zip(prior.predict(held_out), loaded.predict(held_out)):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_without_autograd_equals_the_differentiable_form(kernel):
    x1, x2 = torch.randn(30, 4, dtype=torch.float64), torch.randn(20, 4, dtype=torch.float64)
    lengthscale = torch.rand(4, dtype=torch.float64) + 0.5
    reference = kernel_from_sq_dist(scaled_sq_dist(x1, x2, lengthscale), kernel)
    torch.testing.assert_close(kernel_matrix(x1, x2, lengthscale, kernel), reference, atol=1e-13, rtol=0)
    grad_ls = lengthscale.clone().requires_grad_()
    kernel_matrix(x1, x2, grad_ls, kernel).sum().backward()
    assert grad_ls.grad is not None and torch.isfinite(grad_ls.grad).all()


def test_save_load_round_trip_gives_identical_predictions(tmp_path):
    states, actions = random_problem(6, 60)
    prior = GPPrior(GPConfig(kernel="matern32", rank=2, iters=20))
    prior.fit(make_demos(states, actions))
    prior.save(tmp_path / "gp")
    loaded = load_prior(tmp_path / "gp")
    assert isinstance(loaded, GPPrior) and loaded.config.rank == 2 and loaded.conditioning == "exact"
    test = torch.from_numpy(random_problem(7, 25)[0])
    for a, b in zip(prior.predict(test), loaded.predict(test)):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    for a, b in zip(prior.predict(test, exact=True), loaded.predict(test, exact=True)):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    assert loaded.log_marginal_likelihood(states, actions) == prior.log_marginal_likelihood(states, actions)
    act = torch.from_numpy(actions[:25])
    torch.testing.assert_close(prior.log_prob(test, act), loaded.log_prob(test, act), atol=0, rtol=0)


@pytest.mark.parametrize("conditioning", ["exact", "inducing"])
def test_a_saved_gp_whose_tensors_disagree_in_size_is_refused_and_one_in_half_precision_loads(conditioning,
                                                                                               tmp_path):
    from safetensors.torch import load_file, save_file

    states, actions = random_problem(6, 60)
    prior = randomized_prior("rbf", 1, states, actions, conditioning=conditioning, num_inducing=20)
    prior.save(tmp_path / "gp")
    saved = load_file(str(tmp_path / "gp" / "weights.safetensors"))
    for name in saved:
        if name.startswith("hyper."):  # checked against the module they load into
            continue
        for cut in (lambda x: x[:-1], lambda x: x[..., :-1]):
            damaged = {**saved, name: cut(saved[name]).clone()}
            if damaged[name].shape == saved[name].shape:
                continue
            save_file(damaged, str(tmp_path / "gp" / "weights.safetensors"))
            with pytest.raises(NppacError, match="has shape .* do not belong together"):
                load_prior(tmp_path / "gp")
    save_file({k: v.half() for k, v in saved.items()}, str(tmp_path / "gp" / "weights.safetensors"))
    mean, std = load_prior(tmp_path / "gp").predict(torch.from_numpy(states[:5]))
    torch.testing.assert_close(mean, prior.predict(torch.from_numpy(states[:5]))[0], atol=0.05, rtol=0)


def test_predict_keeps_the_input_device_and_dtype_and_checks_dimensions():
    states, actions = random_problem(8)
    prior = randomized_prior("rbf", 1, states, actions)
    mean, std = prior.predict(torch.from_numpy(states[:4]))
    assert mean.dtype == torch.float32 and std.shape == (4, T)
    assert prior.log_prob(torch.from_numpy(states[:4]), torch.from_numpy(actions[:4])).shape == (4,)
    with pytest.raises(NppacError, match="shape"):
        prior.predict(torch.zeros(2, D + 1))
    with pytest.raises(NppacError, match="kernel"):
        GPConfig(kernel="cosine").validate()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_predictions_match_cpu():
    states, actions = random_problem(9)
    prior = randomized_prior("matern52", 1, states, actions)
    test = torch.from_numpy(states[:8])
    cpu = prior.predict(test)
    gpu = prior.to("cuda").predict(test.cuda())
    assert gpu[0].device.type == "cuda"
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(gpu[1].cpu(), cpu[1], atol=1e-5, rtol=0)


def test_a_fit_beyond_the_memory_left_is_refused_with_its_estimate_and_the_setting_that_fits(monkeypatch):
    """200k states × 39 dims under 4 GiB: the default Nyström conditioning (2000 inducing states) needs 3 n×m float64
    matrices, 9.6e9 bytes; 894 inducing states fit."""
    from nppac.priors import gp

    config = GPConfig()
    assert gp.fit_memory(200_000, config)["condition"][0] == 3 * 200_000 * 2000 * 8
    assert gp.fit_memory(20_000, config)["condition"][0] == 6 * 20_000**2 * 8  # exact up to max_exact
    assert gp.fit_memory(20_000, GPConfig(fit_subset=0))["learn"][0] == 13 * 20_000**2 * 8
    monkeypatch.setattr(gp, "available_memory", lambda device: 4 * 2**30)
    with pytest.raises(NppacError, match=r"a GP fit on 200000 states needs about 8\.9 GiB for conditioning on 2000 "
                                         r"inducing states .* only 4\.0 GiB are available; .*--num-inducing 894\)"):
        gp.check_fit_memory(200_000, config)
    gp.check_fit_memory(200_000, GPConfig(num_inducing=894))
    with pytest.raises(NppacError, match=r"--max-exact 19999 --num-inducing 2000\)"):
        gp.check_fit_memory(20_000, config)
    states = np.zeros((200_000, 39), np.float32)
    with pytest.raises(NppacError, match="needs about 8.9 GiB"):  # refused before anything is allocated for the fit
        GPPrior(config).fit(make_demos(states, np.zeros((200_000, 2), np.float32)))


def test_available_memory_respects_an_address_space_limit(monkeypatch):
    from nppac.priors import gp

    free = gp.available_memory(torch.device("cpu"))
    assert free is not None and free > 0
    monkeypatch.setattr(gp.resource, "getrlimit", lambda which: (4 * 2**30, gp.resource.RLIM_INFINITY))
    limited = gp.available_memory(torch.device("cpu"))
    assert limited is not None and limited < 4 * 2**30
