"""``nppac prior``: fit, query and roll out behavioral reference policies (GP or NN)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console

from nppac.cli.common import DEVICE, emit_json, set_threads, to_json_text
from nppac.data.validate import MAX_CLIPPED_ACTIONS
from nppac.devices import resolve_device
from nppac.errors import NppacError
from nppac.outputs import atomic_file, check_output_dir, check_output_file, write_atomic

# torch and the priors are imported inside the commands: `nppac --help` stays fast.
app = typer.Typer(help="Fit, query and evaluate behavioral reference policies π0 (GP or NN).",
                  no_args_is_help=True)

DEFAULT_KERNEL = "matern52"
"""Kernel when neither --kernel nor --task gives one (the published pen-binary choice)."""

_stderr = Console(stderr=True)
_ALLOW_NARROW = typer.Option(False, "--allow-narrow-prior", help="Keep a prior whose σ0 stays below 0.05 in some "
                             "action dim at and away from the data (refused otherwise).")
_REPLACED = "an earlier prior (which would be replaced)"


def _fit_settings(kind: str, task: str | None, kernel: str | None, rank: int | None, iters: int | None,
                  fit_subset: int | None, variant: str | None, device: str, seed: int,
                  optimizer: str | None = None, predict_rtol: float | None = None, max_exact: int | None = None,
                  num_inducing: int | None = None) -> dict[str, Any]:
    """Config fields for :func:`nppac.priors.fit_prior` from the flags (checking they apply to ``kind``)."""
    settings: dict[str, Any] = {"device": device, "seed": seed}
    if iters is not None:
        settings["iters"] = iters
    gp_only = {"--rank": rank, "--fit-subset": fit_subset, "--optimizer": optimizer, "--predict-rtol": predict_rtol,
               "--max-exact": max_exact, "--num-inducing": num_inducing}
    if kind == "gp":
        if variant is not None:
            raise NppacError("--variant applies to --kind nn only")
        if kernel is None:
            from nppac.tasks import get_task

            kernel = get_task(task).defaults.kernel if task else DEFAULT_KERNEL
        settings["kernel"] = kernel
        settings |= {flag[2:].replace("-", "_"): value for flag, value in gp_only.items() if value is not None}
    elif kind == "nn":
        given = [flag for flag, value in {"--kernel": kernel, **gp_only}.items() if value is not None]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise NppacError(f"{', '.join(given)} {verb} to --kind gp only")
        if variant is not None:
            settings["variant"] = variant
    else:
        raise NppacError(f"unknown --kind {kind!r}; choose gp or nn")
    resolve_device(device)
    return settings


@app.command("fit")
def fit(
    data: Path = typer.Option(..., "--data", help="Demonstrations (any format `nppac data` reads)."),
    kind: str = typer.Option("gp", "--kind", help="gp (non-parametric, N-PPAC) or nn (MLE baseline)."),
    out: Path = typer.Option(..., "--out", help="Directory to write the prior and metrics.json into "
                             "(new, empty, or holding an earlier prior, which is replaced)."),
    task: str | None = typer.Option(
        None, "--task", help="Check dimensions against this task; its GP kernel is the default."),
    kernel: str | None = typer.Option(None, "--kernel", help="GP state kernel: rbf, matern12, matern32, matern52 "
                                         f"(default: the task's, else {DEFAULT_KERNEL})."),
    rank: int | None = typer.Option(None, "--rank", help="GP task-covariance rank r (default 1)."),
    iters: int | None = typer.Option(
        None, "--iters", help="GP: optimizer iterations (default 1000); NN: max epochs (default 300)."),
    fit_subset: int | None = typer.Option(
        None, "--fit-subset", help="GP: learn hyperparameters on at most this many states (default 500, 0 = all)."),
    optimizer: str | None = typer.Option(None, "--optimizer", help="GP: adam (published, default) or lbfgs."),
    predict_rtol: float | None = typer.Option(None, "--predict-rtol", help="GP: relative σ0 error allowed to fast "
                                                 "prediction, checked on probe states (default 0.002; 0 = exact)."),
    max_exact: int | None = typer.Option(None, "--max-exact", help="GP: condition exactly on up to this many "
                                         "states, on inducing states beyond (default 20000)."),
    num_inducing: int | None = typer.Option(None, "--num-inducing", help="GP: inducing states beyond --max-exact "
                                            "(default 2000)."),
    variant: str | None = typer.Option(
        None, "--variant", help="NN: gaussian, tanh_gaussian or fixed_std (default gaussian)."),
    allow_narrow: bool = _ALLOW_NARROW,
    device: str = DEVICE,
    allow_pickle: bool = typer.Option(
        False, "--allow-pickle", help="Allow pickled inputs (rlkit .npy, mjrl .pkl); only for files you trust."),
    seed: int = typer.Option(0, "--seed", help="Seed of subsets, splits and initialization."),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads (0: torch's default). 1 by default: the "
                                "hyperparameter search ran 15× slower with 2 threads while the other core was busy."),
    max_clipped: float = typer.Option(
        MAX_CLIPPED_ACTIONS, "--max-clipped-actions", help="Largest share of action values outside [-1, 1] clipped "
        "to the box (with a warning); a set with more is refused. 1 accepts any."),
    json_out: bool = typer.Option(False, "--json", help="Print metrics.json on stdout."),
) -> None:
    """Fit a reference policy to demonstrations; writes it and metrics.json to --out."""
    from nppac.data import load_demos
    from nppac.priors import GPConfig, fit_prior
    from nppac.priors.common import is_saved_prior
    from nppac.priors.gp import check_fit_memory
    from nppac.training.progress import ProgressBar

    set_threads(threads)
    check_output_dir(out, reuse=is_saved_prior, reused=_REPLACED)
    settings = _fit_settings(kind, task, kernel, rank, iters, fit_subset, variant, device, seed, optimizer,
                             predict_rtol, max_exact, num_inducing)
    if not 0.0 <= max_clipped <= 1.0:
        raise NppacError(f"--max-clipped-actions must be a share in [0, 1], got {max_clipped}")
    demos = load_demos(data, task=task, allow_pickle=allow_pickle, clip_actions=True, max_clipped=max_clipped)
    if kind == "gp":
        check_fit_memory(len(demos.states), GPConfig(**settings).validate())  # refused before the progress bar
    _stderr.print(f"fitting a {kind} prior to {demos.n_transitions} transitions from {data}")
    with ProgressBar(True) as bar:
        prior, metrics = fit_prior(demos, kind, progress=bar.stage, allow_narrow=allow_narrow, **settings)
    metrics |= {"data": str(data), "task": task}
    _save(prior, metrics, out, json_out, f"wrote {out} ({kind}): train_rmse {metrics['train_rmse']:.4f}, "
          f"train_nll {metrics['train_nll']:.4f}, std_on_data {metrics['std_on_data']:.4f}, std at 8σ off-data "
          f"{metrics['std_offset']['8']:.4f}, {metrics['fit_seconds']:.1f} s")


def _save(prior: Any, metrics: dict[str, Any], out: Path, json_out: bool, text: str) -> None:
    """The prior and its metrics.json into ``out``; then the metrics on stdout (``--json``), else ``text``."""
    prior.save(out)
    write_atomic(out / "metrics.json", to_json_text(metrics) + "\n")
    if json_out:
        emit_json(metrics)
    else:
        print(text)


def _load_states(path: Path) -> np.ndarray:
    """(n, obs_dim) float32 states from a .npy file: real, finite once in float32 (one state: 1-D)."""
    if not path.is_file():
        raise NppacError(f"{path} not found")
    try:
        states = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise NppacError(f"{path}: not a numeric .npy array ({err})") from None
    if not isinstance(states, np.ndarray):
        raise NppacError(f"{path}: expected one (n, obs_dim) array in .npy format, found a {type(states).__name__}")
    if not (np.issubdtype(states.dtype, np.integer) or np.issubdtype(states.dtype, np.floating)):
        raise NppacError(f"{path}: expected a real-valued (n, obs_dim) .npy array, found dtype {states.dtype}")
    with np.errstate(over="ignore"):  # values beyond float32's range become Inf, reported just below
        states = (states.reshape(1, -1) if states.ndim == 1 else states).astype(np.float32)
    bad = ~np.isfinite(states)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise NppacError(f"{path}: {int(bad.sum())} NaN/Inf values in float32 (first in state {row}); "
                         "the prior cannot predict there, remove or repair those states")
    return states


@app.command("import")
def import_(
    gpytorch_ckpt: Path = typer.Option(..., "--gpytorch", help="A gpytorch multitask GP's state dict (torch.save), "
                                       "e.g. the published N-PPAC prior; read without unpickling code."),
    data: Path = typer.Option(..., "--data", help="The demonstrations the checkpoint was trained on (its states "
                              "and actions condition the GP)."),
    kernel: str = typer.Option(..., "--kernel", help="The checkpoint's state kernel: rbf, matern12, matern32, matern52 "
                               "(a state dict does not name it)."),
    out: Path = typer.Option(..., "--out", help="Directory to write the prior into (new, empty, or holding an "
                             "earlier prior, which is replaced)."),
    task: str | None = typer.Option(None, "--task", help="Check dimensions against this task (and relabel hand "
                                       "demonstrations with its binary reward)."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Allow pickled demonstrations (rlkit .npy, mjrl "
                                      ".pkl); only for files you trust."),
    device: str = DEVICE,
    allow_narrow: bool = _ALLOW_NARROW,
    json_out: bool = typer.Option(False, "--json", help="Print metrics.json on stdout."),
) -> None:
    """Import a published gpytorch GP prior: its hyperparameters, conditioned on its demonstrations."""
    from nppac.data import load_demos
    from nppac.priors import GPConfig, fit_prior
    from nppac.priors.common import is_saved_prior
    from nppac.priors.gp import check_fit_memory
    from nppac.priors.gpytorch_import import hyperparameters, read_state_dict

    check_output_dir(out, reuse=is_saved_prior, reused=_REPLACED)
    resolve_device(device)
    hyperparameters(read_state_dict(gpytorch_ckpt), gpytorch_ckpt)  # refuse a wrong file before the work
    demos = load_demos(data, task=task, allow_pickle=allow_pickle, clip_actions=True, max_clipped=MAX_CLIPPED_ACTIONS)
    check_fit_memory(len(demos.states), GPConfig(iters=0, device=device))
    _stderr.print(f"importing {gpytorch_ckpt} and conditioning it on {demos.n_transitions} transitions from {data}")
    prior, metrics = fit_prior(demos, "gp", from_gpytorch=gpytorch_ckpt, allow_narrow=allow_narrow, kernel=kernel,
                               device=device)
    metrics |= {"data": str(data), "task": task}
    _save(prior, metrics, out, json_out, f"wrote {out} (gp, imported): train_rmse {metrics['train_rmse']:.4f}, "
          f"std_on_data {metrics['std_on_data']:.4f} (exact variance)")


@app.command("predict")
def predict(
    prior_dir: Path = typer.Option(..., "--prior", help="Directory written by `nppac prior fit` or `prior import`."),
    states_path: Path = typer.Option(..., "--states", help="(n, obs_dim) states as .npy."),
    out: Path = typer.Option(..., "--out", help="Output .npz with arrays mean and std, (n, act_dim) each."),
    variance: str = typer.Option("exact", "--variance", help="GP priors: exact, or love (gpytorch 1.0.1's LOVE "
                                 "estimate, the published code's). std is √(predictive variance with noise), "
                                 "before any σ0 convention."),
    seed: int = typer.Option(0, "--seed", help="Seed of LOVE's random Lanczos start vector."),
    rank: int = typer.Option(100, "--rank", help="LOVE's Lanczos iterations (published: 100)."),
    device: str = DEVICE,
) -> None:
    """Predict μ0(s) and σ0(s) for a batch of states."""
    import torch

    from nppac.priors import load_prior, use_variance
    from nppac.priors.gp import VARIANCE_ESTIMATES, is_variance_estimate

    check_output_file(out, ".npz")
    resolve_device(device)
    if not is_variance_estimate(variance):
        raise NppacError(f"--variance {variance!r}; choose one of: {', '.join(VARIANCE_ESTIMATES)}")
    if rank < 1:
        raise NppacError(f"--rank must be ≥ 1, got {rank}")
    prior = load_prior(prior_dir, device=device)
    if not use_variance(prior, variance, rank, seed) and variance == "love":
        raise NppacError(f"--variance love needs a GP prior's σ0; the prior in {prior_dir} is {prior.kind}")
    states = _load_states(states_path)
    if states.ndim != 2 or states.shape[1] != prior.obs_dim:
        raise NppacError(f"{states_path}: states have shape {states.shape}, "
                         f"but the prior in {prior_dir} expects (n, {prior.obs_dim})")
    mean, std = prior.predict(torch.as_tensor(states, dtype=torch.float32))
    with atomic_file(out) as f:
        np.savez(f, mean=mean.cpu().numpy(), std=std.cpu().numpy())
    print(f"wrote {out}: mean and std of {len(states)} states × {prior.act_dim} action dims")


@app.command("evaluate")
def evaluate(
    prior_dir: Path = typer.Option(..., "--prior", help="Directory written by `nppac prior fit`."),
    task_name: str = typer.Option(..., "--task", help="Task to roll the prior's mean action out in."),
    episodes: int | None = typer.Option(None, "--episodes", help="Episodes (default: the task's evaluation count)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the first episode (episode k uses seed + k)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Roll out the prior's mean action (clipped to [-1, 1]) and report return and success."""
    import torch

    from nppac.priors import load_prior, mean_action
    from nppac.tasks import get_task
    from nppac.training.progress import ProgressBar

    task = get_task(task_name)
    prior = load_prior(prior_dir)
    if prior.obs_dim != task.obs_dim or prior.act_dim != task.act_dim:
        raise NppacError(f"prior in {prior_dir} is {prior.obs_dim}→{prior.act_dim} dims, "
                         f"task {task.name} is {task.obs_dim}→{task.act_dim}")
    n_episodes = task.eval_episodes if episodes is None else episodes
    if n_episodes < 1:
        raise NppacError(f"--episodes must be ≥ 1, got {n_episodes}")
    env = task.make_env(seed=seed)
    returns, successes = [], []
    stage = f"{task.name}: rolling out the prior's mean action"
    with ProgressBar(True) as bar:
        for k in range(n_episodes):
            obs, _ = env.reset(seed=seed + k)
            total, flags, done = 0.0, [], False
            while not done:
                state = torch.as_tensor(np.asarray(obs, dtype=np.float32)[None])
                action = mean_action(prior, state)[0].numpy()
                obs, reward, terminated, truncated, info = env.step(action)
                total += float(reward)
                flags.append(bool(info.get("success", False)))
                done = terminated or truncated
            returns.append(total)
            if task.reward == "binary":
                successes.append(task.episode_success(flags))
            bar.stage(stage, k + 1, n_episodes)
    env.close()
    result = {
        "task": task.name, "prior": str(prior_dir), "kind": prior.kind, "episodes": n_episodes, "seed": seed,
        "return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
        "success_rate": float(np.mean(successes)) if successes else None, "returns": returns,
    }
    if json_out:
        emit_json(result)
    else:
        success = "" if result["success_rate"] is None else f", success rate {result['success_rate']:.2f}"
        print(f"{task.name}: return {result['return_mean']:.1f} ± {result['return_std']:.1f} "
              f"over {n_episodes} episodes{success}")

