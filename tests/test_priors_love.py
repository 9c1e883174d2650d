"""LOVE's variance and the import of gpytorch GP priors: against dense algebra, gpytorch itself, and the
published pen checkpoint (DESIGN.md §2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nppac.errors import NppacError
from nppac.priors import GPConfig, GPPrior, load_prior, use_variance
from nppac.priors.gpytorch_import import import_gpytorch
from nppac.priors.kernels import kernel_matrix
from nppac.priors.love import kronecker_matvec, love_root, love_variance
from tests.builders import make_demos, one_thread  # noqa: F401 (autouse fixture)
from tests.conftest import SHARED_DATA, run_cli

N, T, D = 30, 3, 4


def problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, D)).astype(np.float32), rng.uniform(-1, 1, size=(N, T)).astype(np.float32)


def random_prior(states: np.ndarray, actions: np.ndarray, seed: int = 0) -> GPPrior:
    prior = GPPrior(GPConfig(kernel="matern52", rank=1, predict_rtol=0.0), D, T)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in prior.hyper.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    prior.condition(states, actions)
    return prior


def dense_covariance(prior: GPPrior) -> torch.Tensor:
    h = prior.hyper
    with torch.no_grad():
        kx = kernel_matrix(prior.x_train, prior.x_train, h.lengthscale, "matern52")
        return torch.kron(kx, h.task_covariance) + torch.diag(h.noise.repeat(len(kx)))


def test_kronecker_matvec_equals_the_dense_covariance():
    prior = random_prior(*problem())
    h = prior.hyper
    with torch.no_grad():
        kx = kernel_matrix(prior.x_train, prior.x_train, h.lengthscale, "matern52")
        v = torch.randn(N * T, 2, dtype=torch.float64)
        got = kronecker_matvec(kx, h.task_covariance, h.noise)(v)
    torch.testing.assert_close(got, dense_covariance(prior) @ v)


def test_love_variance_is_the_dense_low_rank_formula():
    """σ²_LOVE = B_jj − c_jᵀ R Rᵀ c_j + D_j with R the Lanczos inverse root, all dense (module docstring)."""
    prior = random_prior(*problem())
    h = prior.hyper
    test = torch.randn(5, D, dtype=torch.float64)
    with torch.no_grad():
        x, xs = prior.x_train, prior.standardize(test)
        kx = kernel_matrix(x, x, h.lengthscale, "matern52")
        root = love_root(kx, h.task_covariance, h.noise, rank=7, seed=3)
        got = love_variance(kernel_matrix(xs, x, h.lengthscale, "matern52"), root, torch.diagonal(h.task_covariance),
                            h.noise)
        # The same Lanczos basis, rebuilt densely: K ≈ Q T Qᵀ on the Krylov space from the same start vector.
        k = dense_covariance(prior)
        start = torch.randn(N * T, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        basis = [start[:, 0] / start.norm()]
        for _ in range(6):
            w = k @ basis[-1]
            for q in basis:
                w = w - (q @ w) * q
            basis.append(w / w.norm())
        q = torch.stack(basis, 1)
        inv_approx = q @ torch.linalg.inv(q.T @ k @ q) @ q.T
        cross = torch.kron(kernel_matrix(xs, x, h.lengthscale, "matern52"), h.task_covariance)  # (5T, NT)
        quad = torch.einsum("an,nm,am->a", cross, inv_approx, cross).reshape(5, T)
        want = torch.diagonal(h.task_covariance) - quad + h.noise
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-9)


def test_love_at_full_rank_is_exact_and_below_full_rank_over_counts_the_variance():
    states, actions = problem(1)
    prior = random_prior(states, actions, seed=1)
    test = torch.as_tensor(states[:10], dtype=torch.float64) + 0.1
    _, exact = prior.predict(test, exact=True)
    _, full = prior.set_variance("love", rank=N * T).predict(test)
    torch.testing.assert_close(full, exact, rtol=1e-6, atol=1e-9)
    _, low = prior.set_variance("love", rank=5).predict(test)
    assert bool((low >= exact * (1 - 1e-9)).all()) and float((low / exact).max()) > 1.05
    _, back = prior.set_variance("exact").predict(test)
    torch.testing.assert_close(back, exact)


def test_love_settings_are_checked_and_need_exact_conditioning():
    prior = random_prior(*problem())
    with pytest.raises(NppacError, match="love_rank"):
        prior.set_variance("love", rank=0)
    with pytest.raises(NppacError, match="variance"):
        prior.set_variance("sampled")  # type: ignore[arg-type]
    states, actions = problem()
    inducing = GPPrior(GPConfig(kernel="rbf", iters=2, conditioning="inducing", num_inducing=10, variance="love"))
    inducing.fit(make_demos(states, actions))
    with pytest.raises(NppacError, match="LOVE variance needs a GP conditioned exactly"):
        inducing.predict(torch.as_tensor(states))


def test_love_survives_save_and_load(tmp_path):
    prior = random_prior(*problem())
    prior.set_variance("love", rank=6, seed=2)
    test = torch.randn(4, D, dtype=torch.float64)
    _, before = prior.predict(test)
    prior.save(tmp_path / "p")
    loaded = load_prior(tmp_path / "p")
    _, after = loaded.predict(test)
    torch.testing.assert_close(after, before)
    assert use_variance(loaded, "exact")
    torch.testing.assert_close(loaded.predict(test)[1], prior.set_variance("exact").predict(test)[1])


# ------------------------------------------------------------------ import of gpytorch checkpoints
def _gpytorch_model(states: torch.Tensor, actions: torch.Tensor):
    gpytorch = pytest.importorskip("gpytorch")

    class Multitask(gpytorch.models.ExactGP):
        def __init__(self, likelihood):
            super().__init__(states, actions, likelihood)
            self.mean_module = gpytorch.means.MultitaskMean(gpytorch.means.ConstantMean(), num_tasks=T)
            self.covar_module = gpytorch.kernels.MultitaskKernel(
                gpytorch.kernels.MaternKernel(nu=2.5, ard_num_dims=D), num_tasks=T, rank=1)

        def forward(self, x):
            return gpytorch.distributions.MultitaskMultivariateNormal(self.mean_module(x), self.covar_module(x))

    likelihood = gpytorch.likelihoods.MultitaskGaussianLikelihood(num_tasks=T)
    model = Multitask(likelihood).double()
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(0.7 * torch.randn(p.shape, generator=gen, dtype=p.dtype) - (2.0 if "noise" in name else 0.0))
    return model, likelihood


def test_imported_gpytorch_model_predicts_what_gpytorch_predicts(tmp_path):
    import gpytorch

    states, actions = problem(2)
    x, y = torch.as_tensor(states, dtype=torch.float64), torch.as_tensor(actions, dtype=torch.float64)
    model, likelihood = _gpytorch_model(x, y)
    torch.save(model.state_dict(), tmp_path / "gp.pt")
    prior = import_gpytorch(tmp_path / "gp.pt", make_demos(states, actions), "matern52", {"predict_rtol": 0.0})
    test = x[:8] + 0.3 * torch.randn(8, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model.eval()
    likelihood.eval()
    with torch.no_grad(), gpytorch.settings.fast_pred_var(False), \
            gpytorch.settings.fast_computations(False, False, False):
        pred = likelihood(model(test))
    mean, std = prior.predict(test)
    torch.testing.assert_close(mean, pred.mean, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(std.pow(2), pred.variance, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("content, message", [
    ("text", "not a torch state dict"),
    ("list", "expected a gpytorch model's state dict"),
    ("missing", "'covar_module.task_covar_module.covar_factor' is missing"),
    ("dims", "5-dim states to 3 actions"),
])
def test_import_refuses_what_is_not_a_matching_multitask_gp(tmp_path, content, message):
    states, actions = problem()
    path = tmp_path / "ckpt.pt"
    x, y = torch.as_tensor(states, dtype=torch.float64), torch.as_tensor(actions, dtype=torch.float64)
    if content == "text":
        path.write_text("not a checkpoint")
    elif content == "list":
        torch.save([torch.zeros(2)], path)
    else:
        state = _gpytorch_model(x, y)[0].state_dict()
        if content == "missing":
            del state["covar_module.task_covar_module.covar_factor"]
        else:
            state["covar_module.data_covar_module.raw_lengthscale"] = torch.zeros(1, D + 1, dtype=torch.float64)
        torch.save(state, path)
    with pytest.raises(NppacError, match=message):
        import_gpytorch(path, make_demos(states, actions), "matern52")


# ------------------------------------------------------------------ the published pen checkpoint
PEN_GP = SHARED_DATA / "gp_pen_matern52_rank1.pt"
PEN_DEMOS = SHARED_DATA / "pen2_sparse.npy"


@pytest.fixture(scope="module")
def pen_prior_dir(tmp_path_factory):
    if not (PEN_GP.exists() and PEN_DEMOS.exists()):
        pytest.skip(f"published pen GP or demonstrations not found in {SHARED_DATA}")
    out = tmp_path_factory.mktemp("pen") / "prior"
    run_cli("prior", "import", "--gpytorch", str(PEN_GP), "--data", str(PEN_DEMOS), "--allow-pickle",
            "--kernel", "matern52", "--task", "pen-binary", "--out", str(out), check=True)
    return out


def test_published_pen_prior_reproduces_the_exact_and_love_variances(pen_prior_dir, tmp_path):
    """DESIGN.md §2: at 500 demonstration states the exact variance's median is 3.9e-4 and LOVE's 0.034;
    per-dimension LOVE medians lie in 0.019–0.049; two demo-stds off the data the two agree."""
    from nppac.data import load_demos

    demos = load_demos(PEN_DEMOS, task="pen-binary", allow_pickle=True, clip_actions=True)
    picks = np.random.default_rng(1).choice(len(demos.states), 500, replace=False)
    states = demos.states[picks]
    np.save(tmp_path / "states.npy", states)
    run_cli("prior", "predict", "--prior", str(pen_prior_dir), "--states", str(tmp_path / "states.npy"),
            "--variance", "love", "--seed", "0", "--out", str(tmp_path / "love.npz"), check=True)
    love = np.load(tmp_path / "love.npz")["std"].astype(np.float64) ** 2
    prior = load_prior(pen_prior_dir)
    exact = prior.predict(torch.as_tensor(states, dtype=torch.float64))[1].pow(2).numpy()
    assert np.median(exact) == pytest.approx(3.9e-4, rel=0.05)
    assert np.median(love) == pytest.approx(0.034, rel=0.15)
    per_dim = np.median(love, axis=0)
    assert per_dim.min() >= 0.015 and per_dim.max() <= 0.06
    assert 20 < np.median(love / exact) < 200
    rng = np.random.default_rng(2)
    far = torch.as_tensor(states + 2.0 * demos.states.std(0) * rng.normal(size=states.shape), dtype=torch.float64)
    exact_far = prior.predict(far)[1].pow(2)
    love_far = prior.set_variance("love").predict(far)[1].pow(2)
    assert float((love_far / exact_far).median()) == pytest.approx(1.0, abs=0.10)


def test_diagnostics_draw_a_gp_with_either_variance_or_both(tmp_path):
    from nppac.diagnostics.inputs import load_labelled_priors

    prior = random_prior(*problem())
    prior.save(tmp_path / "gp")
    labels = [p.label for p in load_labelled_priors([tmp_path / "gp"], "both")]
    assert len(labels) == 2 and labels[1] == labels[0] + " (LOVE)"
    exact, love = load_labelled_priors([tmp_path / "gp"], "both")
    test = torch.randn(3, D, dtype=torch.float64)
    assert bool((love.prior.predict(test)[1] >= exact.prior.predict(test)[1] * (1 - 1e-9)).all())
    assert load_labelled_priors([tmp_path / "gp"], "love")[0].prior.config.variance == "love"
    with pytest.raises(NppacError, match="--variance 'both-ways'"):
        load_labelled_priors([tmp_path / "gp"], "both-ways")


def test_cli_refusals_are_one_line_with_exit_code_2(tmp_path):
    states, actions = problem()
    (tmp_path / "ckpt.pt").write_text("not a checkpoint")
    from nppac.data import save_npz

    save_npz(make_demos(states, actions), tmp_path / "d.npz")
    proc = run_cli("prior", "import", "--gpytorch", str(tmp_path / "ckpt.pt"), "--data", str(tmp_path / "d.npz"),
                   "--kernel", "matern52", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "not a torch state dict" in proc.stderr
    assert not (tmp_path / "out").exists()
    random_prior(states, actions).save(tmp_path / "gp")
    np.save(tmp_path / "s.npy", states[:3])
    proc = run_cli("prior", "predict", "--prior", str(tmp_path / "gp"), "--states", str(tmp_path / "s.npy"),
                   "--variance", "sampled", "--out", str(tmp_path / "p.npz"))
    assert proc.returncode == 2 and "--variance 'sampled'; choose one of: exact, love" in proc.stderr
