"""A model-per-algorithm Python API in the style of Stable-Baselines3, over the same training loop as the CLI.

    from nppac import NPPAC, fit_prior
    from nppac.callbacks import CheckpointCallback, EvalCallback

    prior = fit_prior("pen2_sparse.npy", task="pen-binary", kind="gp", allow_pickle=True)
    model = NPPAC("pen-binary", prior=prior, demos="pen2_sparse.npy", allow_pickle=True, seed=0, alpha=0.1)
    model.learn(total_timesteps=15_000, out_dir="runs/pen",
                callback=EvalCallback(reward_threshold=0.95, metric="eval_success"))
    model = NPPAC.load("runs/pen")
    model.learn(total_timesteps=5_000)           # 5,000 more steps of the same run
    action, _ = model.predict(obs, deterministic=True)

The task is a name (``nppac tasks``, a gymnasium id such as ``"Pendulum-v1"``, ``module:function``),
a :class:`~nppac.tasks.Task` or a ``gymnasium.Env`` object (:func:`nppac.register_task` registers
one under a name of your choosing):

    env = gymnasium.make("Pendulum-v1")
    demos = Demonstrations.from_arrays(obs, actions, rewards, timeouts=ends, action_space=env.action_space)
    NPPAC(env, demos=demos, prior=fit_prior(demos)).learn(20_000, "runs/pendulum")

Every method is a thin layer over what ``nppac train`` calls (:func:`nppac.training.train`): a model's run
directory is the one the CLI writes for the same settings. ``learn(N)`` adds N environment steps, as in
Stable-Baselines3. Settings are :class:`~nppac.training.TrainConfig` fields, or the algorithm's own (awac's
``lam``), as typed keyword arguments (:class:`Settings`), each checked before any work, as by the CLI.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypedDict, Unpack

import gymnasium as gym
import numpy as np
import torch

from nppac.agents.networks import Actor, load_actor, save_actor
from nppac.callbacks import BaseCallback, RowFunction, callbacks
from nppac.data.demos import Demonstrations
from nppac.data.loaders import is_minari_id
from nppac.data.validate import MAX_CLIPPED_ACTIONS, dtype_problem
from nppac.devices import resolve_device
from nppac.errors import NppacError
from nppac.outputs import check_output_dir
from nppac.priors.base import Prior
from nppac.tasks import Task, task_name
from nppac.training.algorithms import ALGORITHMS
from nppac.training.config import PATH_FIELDS, TrainConfig
from nppac.training.loop import train as run_training
from nppac.training.progress import ProgressBar
from nppac.training.rundir import RunDir, check_new_run_dir
from nppac.training.setup import check_prior

Callback = BaseCallback | RowFunction | Sequence[BaseCallback | RowFunction] | None
"""``learn``'s callback: a :class:`~nppac.callbacks.BaseCallback`, a function of each progress row (returning
False stops after that row's checkpoint), or a list of them."""
VERBOSITY = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}
"""``verbose`` → the level of nppac's log: 0 warnings only, 1 the run's phases and the progress bar, 2 debug."""
PathLike = str | os.PathLike[str]


class TrainSettings(TypedDict, total=False):
    """:class:`~nppac.training.TrainConfig`'s fields that a model takes as keyword arguments (every field but those
    the constructor names), typed as declared there, where each is documented."""

    steps: int
    steps_per_epoch: int
    updates_per_epoch: int
    warmup_steps: int
    warmup: str | None
    offline_updates: int | None
    offline_batch_size: int | None
    offline_eval_every: int
    eval_every: int
    eval_episodes: int | None
    horizon: int | None
    eval_horizon: int | None
    hand_protocol: str | None
    binary_reward: str | None
    timeout_terminal: bool | None
    replay_capacity: int
    batch_size: int | None
    gamma: float
    tau: float
    actor_lr: float
    critic_lr: float
    alpha: float | None
    auto_alpha: bool
    target_entropy: float | None
    target_kl: float | None
    alpha_lr: float
    auto_alpha_target: str | None
    critic_layernorm: bool
    kl_anchor: str
    second_actor: str
    second_actor_choice: str
    second_actor_temperature: float
    demo_batch_fraction: float
    actor: str | None
    actor_hidden: tuple[int, ...] | None
    critic_hidden: tuple[int, ...]
    init_epochs: int | None
    init_batch_size: int
    init_actor: str | None
    seed_demos: bool | None
    max_clipped_actions: float
    prior_gpytorch: str | None
    prior_kernel: str | None
    prior_iters: int | None
    prior_sigma: str | None
    prior_variance: str | None
    love_rank: int
    love_seed: int
    prior_convention: str | None
    preset: str | None
    bound_q: bool | None
    algo_settings: dict[str, Any]
    allow_pickle: bool
    num_threads: int | None


class Settings(TrainSettings, total=False):
    """:class:`TrainSettings` and the algorithms' own settings (sac-bc's, awac's, bc's settings classes: those
    TrainConfig lacks), each accepted by its algorithm only."""

    bc_weight: float
    demo_batch_size: int
    lam: float
    score_clip: float
    value_at_mean: bool
    clip_next_action: bool
    actor_weight_decay: float
    log_std_range: tuple[float, float] | None


class Prediction(tuple[np.ndarray, Any]):
    """``(action, state)``, as Stable-Baselines3's ``predict`` returns; ``state`` is the one given (None: the
    policies keep none). Read as the action itself (``.shape``, ``np.asarray``), as ``predict`` returned before,
    it still works for now, with a DeprecationWarning: write ``action, _ = model.predict(obs)``."""

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        _read_as_action()
        return np.asarray(self[0], dtype=dtype)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        _read_as_action()
        return getattr(self[0], name)


def _read_as_action() -> None:
    warnings.warn("predict returns (action, state) as in Stable-Baselines3; write `action, _ = model.predict(obs)` "
                  "(reading the pair as the action will stop working)", DeprecationWarning, stacklevel=3)


class Model:
    """One algorithm of the algorithm table on one task: a task name, a :class:`~nppac.tasks.Task` or a
    ``gymnasium.Env`` (registered under its id, else its class name, :func:`nppac.tasks.env_task`).

    Subclasses fix ``algo`` (``Model(task, algo=...)`` also works). ``device`` is cpu (default: the CLI's, so
    that both write the same run), cuda, cuda:N or auto (cuda where there is one); ``verbose`` 0 (warnings
    only), 1 (the run's phases and a progress bar) or 2 (debug).
    """

    algo: ClassVar[str | None] = None

    def __init__(self, task: str | Task | gym.Env, *, algo: str | None = None, prior: Prior | PathLike | None = None,
                 demos: Demonstrations | PathLike | None = None, seed: int = 0, device: str = "cpu",
                 verbose: int = 1, **settings: Unpack[Settings]) -> None:
        name = algo or type(self).algo
        if name is None:
            raise NppacError(f"Model needs algo=...; one of: {', '.join(ALGORITHMS)}")
        if type(self).algo is not None and algo not in (None, type(self).algo):
            raise NppacError(f"{type(self).__name__} trains {type(self).algo}, not {algo}; use Model(task, algo=...)")
        self.verbose = _verbosity(verbose)
        # Paths may be given as Path objects; every other value is typed by its setting (TrainConfig.with_values).
        values: dict[str, Any] = {k: os.fspath(v) if k in PATH_FIELDS and isinstance(v, os.PathLike) else v
                                  for k, v in settings.items()}
        paths = {k: v for k, v in (("prior", prior), ("demos", demos)) if isinstance(v, (str, os.PathLike))}
        values.update({k: os.fspath(v) for k, v in paths.items()})
        config = TrainConfig(task=task_name(task), algo=name, seed=seed, device=_device(device))
        self.config = config.with_values(values).validate()  # the settings first: one the algorithm does not read
        for key, value in paths.items():  # is refused as such, whatever its value
            _existing(key, value)
        self.prior = None if prior is None or isinstance(prior, (str, os.PathLike)) else _prior(self.config, prior)
        self.demos = None if demos is None or isinstance(demos, (str, os.PathLike)) else _demos(self.config, demos)
        self.run_dir: Path | None = None
        self.actor: Actor | None = None
        self.summary: dict[str, Any] = {}

    @property
    def num_timesteps(self) -> int:
        """Environment steps the model's run has taken (as its ``progress.csv`` records them; 0 before any)."""
        if self.run_dir is None:
            return 0
        rows = RunDir(self.run_dir).progress()[1]
        return int(rows[-1]["env_steps"]) if rows and "env_steps" in rows[-1] else 0

    def learn(self, total_timesteps: int | None = None, out_dir: PathLike | None = None, callback: Callback = None,
              progress: bool | None = None, *, reset_num_timesteps: bool = True,
              total_steps: int | None = None) -> Model:
        """Train ``total_timesteps`` more environment steps (whole epochs); returns self.

        A new model starts its run in ``out_dir`` (default ``runs/TASK-ALGO-seedS-TIME``), new or empty; a model
        that has run, or was loaded, continues its own. ``reset_num_timesteps`` (Stable-Baselines3's) changes
        nothing: a run keeps one step count, which indexes its ``progress.csv`` and checkpoints. ``progress``
        (default: ``verbose`` ≥ 1) shows a progress bar. ``total_steps`` (deprecated): the run's total instead.
        """
        cfg = self.config
        if out_dir is not None:
            _path("learn: out_dir", out_dir)
        if total_steps is not None:
            if total_timesteps is not None:
                raise NppacError("give total_timesteps (steps to add) or the deprecated total_steps (the run's "
                                 "total), not both")
            warnings.warn("learn(total_steps=N) is deprecated: learn(total_timesteps=N) adds N steps, as in "
                          "Stable-Baselines3 (total_steps keeps its meaning, the run's total, for now)",
                          DeprecationWarning, stacklevel=2)
        added = _count("total_timesteps" if total_steps is None else "total_steps",
                       total_timesteps if total_steps is None else total_steps, cfg.steps_per_epoch)
        _flags("learn", True, reset_num_timesteps=reset_num_timesteps, progress=progress)
        given = callbacks(callback)
        done = self.num_timesteps
        target = added if total_steps is not None else done + added
        if target < done:
            raise NppacError(f"the run in {self.run_dir} has already taken {done:,} env steps; total_steps={target:,} "
                             "would end it before them (learn(total_timesteps=N) adds N steps)")
        if self.run_dir is None:
            out = Path(out_dir) if out_dir is not None else \
                Path("runs") / f"{cfg.task}-{cfg.algo}-seed{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
            check_new_run_dir(out, f"continue its run with Model.load({str(out)!r}).learn(...) or choose "
                                   "another out_dir")
            self.run_dir = out
        elif out_dir is not None and Path(out_dir) != self.run_dir:
            raise NppacError(f"this model runs in {self.run_dir}; save() it elsewhere rather than learn into {out_dir}")
        for item in given:
            item.init_callback(self)
        resume = RunDir(self.run_dir).started
        fresh = None if resume else dataclasses.replace(cfg, steps=target).validate()

        def start(actor: Actor) -> None:
            self.actor = actor  # predict and save read the live policy while callbacks run
            for item in given:
                item.num_timesteps = done
                item.on_training_start()

        with _logging(self.verbose):
            try:
                self.summary = run_training(
                    fresh, self.run_dir, resume=resume, prior=self.prior, demos=self.demos,
                    steps=target if resume else None, progress=self.verbose >= 1 if progress is None else progress,
                    on_epoch_end=_on_row(given) if given else None, on_step=_on_step(given), on_start=start)
            finally:
                saved = RunDir(self.run_dir).actor
                self.actor = load_actor(saved, cfg.device) if saved.exists() else None
        self.config = dataclasses.replace(cfg, steps=target)
        for item in given:
            item.on_training_end()
        return self

    @torch.no_grad()
    def predict(self, observation: Any, deterministic: bool = True, *, state: Any = None,
                episode_start: Any = None) -> Prediction:
        """``(action, state)`` for one observation (obs_dim,) → (act_dim,), or a batch (n, obs_dim) → (n, act_dim):
        the mean action, or a sample (``deterministic=False``). ``state`` is handed back as given (the policies
        keep none) and ``episode_start`` is ignored, as Stable-Baselines3's feed-forward policies do."""
        if self.actor is None:
            raise NppacError("the model has not been trained or loaded: call learn() or Model.load(run_dir)")
        _flags("predict", deterministic=deterministic)
        obs = _observations(observation, self.actor.obs_dim)
        batch = obs.reshape(1, -1) if obs.ndim == 1 else obs
        if deterministic:
            action = np.stack([self.actor.act(o) for o in batch]) if len(batch) else \
                np.zeros((0, self.actor.act_dim), np.float32)
        else:
            x = torch.as_tensor(batch, device=next(self.actor.parameters()).device)
            action = self.actor.sample(x)[0].clamp(-1.0, 1.0).cpu().numpy()
        return Prediction((action[0] if obs.ndim == 1 else action, state))

    def save(self, path: PathLike) -> Path:
        """Copy the model's run directory, with its current policy, to ``path``: a new or empty directory
        (nothing to do when the run already lives there). ``Model.load(path)`` reads it; ``learn`` continues it."""
        if self.run_dir is None:
            raise NppacError("nothing to save: call learn() first")
        if not isinstance(path, (str, os.PathLike)):
            raise NppacError(f"save({path!r}): expected a path (a new or empty directory)")
        target = Path(path)
        if target.resolve() == self.run_dir.resolve():
            return target
        if target.resolve().is_relative_to(self.run_dir.resolve()):
            raise NppacError(f"save({str(target)!r}) is inside the run directory {self.run_dir}; choose a path "
                             "outside it")
        check_output_dir(target)
        try:
            shutil.copytree(self.run_dir, target, dirs_exist_ok=True)
        except OSError as err:
            raise NppacError(f"save({str(target)!r}): cannot write there ({err.strerror or err}); choose another "
                             "path") from None
        if self.actor is not None:
            save_actor(self.actor, RunDir(target).actor)
        return target

    @classmethod
    def load(cls, path: PathLike, device: str = "cpu", verbose: int = 1) -> Model:
        """The model of a run directory (written by the CLI or the API): its settings, its last actor; ``learn``
        continues the run. ``device`` is where ``predict`` runs (cpu, cuda, cuda:N or auto)."""
        run = RunDir(_path("Model.load: path", path))
        device, verbose = _device(device), _verbosity(verbose)
        cfg = run.train_config("give the out_dir of a run (Model.learn, nppac train --out)")
        model_cls = MODELS.get(cfg.algo, Model) if cls is Model else cls
        if model_cls.algo not in (None, cfg.algo):
            raise NppacError(f"{run.path} is a {cfg.algo} run; load it with Model.load or "
                             f"{MODELS[cfg.algo].__name__}.load")
        model = model_cls.__new__(model_cls)
        model.config, model.verbose = dataclasses.replace(cfg, device=device), verbose
        model.prior, model.demos, model.run_dir, model.summary = None, None, run.path, {}
        model.actor = load_actor(run.actor, device) if run.actor.exists() else None
        return model


def _on_row(given: list[BaseCallback]) -> RowFunction:
    """Every callback's ``on_evaluation``; False if any asks to stop."""

    def on_row(row: dict[str, Any]) -> bool:
        go_on = True
        for item in given:
            item.num_timesteps = int(row["env_steps"])
            go_on = item.on_evaluation(row) is not False and go_on
        return go_on

    return on_row


def _on_step(given: list[BaseCallback]) -> Callable[[int], bool] | None:
    """The callbacks that override ``on_step``, called after each env step; None when there are none (the loop
    then checks nothing per step)."""
    stepping = [item for item in given if item.steps_each_step]
    if not stepping:
        return None

    def on_step(env_steps: int) -> bool:
        go_on = True
        for item in stepping:
            item.num_timesteps, item.n_calls = env_steps, item.n_calls + 1
            go_on = item.on_step() is not False and go_on
        return go_on

    return on_step


@contextlib.contextmanager
def _logging(verbose: int) -> Iterator[None]:
    """nppac's log at ``verbose``'s level while a model works, shown on stderr where the program set up no logging."""
    log = logging.getLogger("nppac")
    before = log.level
    handler = None
    if verbose and not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
    log.setLevel(VERBOSITY[verbose])
    try:
        yield
    finally:
        log.setLevel(before)
        if handler is not None:
            log.removeHandler(handler)


def _flags(method: str, optional: bool = False, **flags: Any) -> None:
    """Refuse a flag of ``method`` that is neither true nor false (nor None, where ``optional``)."""
    for flag, value in flags.items():
        if not isinstance(value, bool) and not (optional and value is None):
            raise NppacError(f"{method}: {flag}={value!r}; expected true or false")


def _verbosity(verbose: Any) -> int:
    if isinstance(verbose, bool) or not isinstance(verbose, int) or verbose not in VERBOSITY:
        raise NppacError(f"verbose={verbose!r}; choose 0 (warnings only), 1 (phases and progress) or 2 (debug)")
    return int(verbose)


def _device(name: Any) -> str:
    """A device name checked against this machine before any work; auto is cuda where there is one, else cpu."""
    if not isinstance(name, str):
        raise NppacError(f"device = {name!r}: expected a string: cpu, cuda, cuda:N or auto")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    resolve_device(name)
    return name


def _count(name: str, value: Any, steps_per_epoch: int) -> int:
    if value is None:
        raise NppacError("learn needs total_timesteps: the environment steps to train")
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) and not (
            isinstance(value, float) and value.is_integer()):
        raise NppacError(f"learn: {name}={value!r}; expected a whole number of environment steps")
    if value < steps_per_epoch:
        raise NppacError(f"learn: {name}={value:,} is less than one epoch (steps_per_epoch={steps_per_epoch:,}); "
                         "nppac trains whole epochs")
    return int(value)


def _path(what: str, value: Any) -> Path:
    """A path argument (a string or path-like), else one line naming the argument."""
    if not isinstance(value, (str, os.PathLike)):
        raise NppacError(f"{what}={value!r}: expected a path")
    return Path(value)


def _existing(key: str, path: PathLike) -> str:
    """A ``prior`` directory or ``demos`` file (or ``minari:ID``) given by path, refused when it does not exist."""
    text = os.fspath(path)
    if not (key == "demos" and is_minari_id(text)) and not Path(text).exists():
        raise NppacError(f"{key}={text!r} does not exist; give the path of a "
                         f"{'saved prior directory' if key == 'prior' else 'demonstration file'}")
    return text


def _prior(config: TrainConfig, prior: Any) -> Prior:
    """A prior object checked against the run (:func:`~nppac.training.setup.check_prior`) before any work."""
    if not all(hasattr(prior, a) for a in ("predict", "obs_dim", "act_dim")):
        raise NppacError(f"prior={prior!r} is neither a fitted prior (nppac.fit_prior) nor a saved prior's directory")
    check_prior(config, prior)
    return prior


def _demos(config: TrainConfig, demos: Any) -> Demonstrations:
    """In-memory demonstrations checked as a loaded file is (and as the run will use them), before any work."""
    if not isinstance(demos, Demonstrations):
        raise NppacError(f"demos={type(demos).__name__} object; give a Demonstrations (Demonstrations.from_arrays) "
                         "or the path of a demonstration file")
    return demos.checked(task=config.task, clip_actions=True, max_clipped=config.max_clipped_actions)


def _observations(observation: Any, obs_dim: int) -> np.ndarray:
    """``predict``'s input as float32, refused in one line unless it is one observation or a batch of the
    policy's width with every value finite in float32."""
    try:
        obs = np.asarray(observation)
    except ValueError:
        raise NppacError(f"predict: the observation is not an array of numbers ({type(observation).__name__} "
                         "with ragged rows); give shape ({obs_dim},) or (n, {obs_dim})") from None
    problem = dtype_problem(obs.dtype)
    if problem is not None:
        raise NppacError(f"predict: the observation {problem}")
    if obs.ndim not in (1, 2) or obs.shape[-1] != obs_dim:
        raise NppacError(f"predict: observation of shape {obs.shape}; the policy expects ({obs_dim},) for one "
                         f"observation or (n, {obs_dim}) for a batch")
    with np.errstate(over="ignore"):
        values = obs.astype(np.float32)
    bad = ~np.isfinite(values)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise NppacError(f"predict: the observation holds {int(bad.sum())} NaN, Inf or values beyond float32's "
                         f"range (first at index {first}: {obs[first]!r}); the action would be NaN")
    return values


class NPPAC(Model):
    """N-PPAC: KL-regularized SAC toward a GP reference policy."""
    algo = "nppac"


class PPACNN(Model):
    """PPAC with an MLE neural reference policy (the pathological baseline)."""
    algo = "ppac-nn"


class NPPACNNStd(Model):
    """The variance ablation: the GP's mean with the NN's σ0."""
    algo = "nppac-nn-std"


class SAC(Model):
    """Soft actor-critic, no reference policy."""
    algo = "sac"


class SACBC(Model):
    """SAC plus a behaviour-cloning term on demonstration batches."""
    algo = "sac-bc"


class AWAC(Model):
    """Advantage-weighted actor-critic: offline pretraining, then online."""
    algo = "awac"


class BC(Model):
    """Behavioural cloning, evaluated by its mean action."""
    algo = "bc"


MODELS: dict[str, type[Model]] = {m.algo: m for m in (NPPAC, PPACNN, NPPACNNStd, SAC, SACBC, AWAC, BC)}
"""Algorithm name → its model class (one per entry of the algorithm table)."""


def fit_prior(data: Demonstrations | PathLike, task: str | Task | gym.Env | None = None, kind: str = "gp",
              allow_pickle: bool = False, progress: bool = False, max_clipped_actions: float = MAX_CLIPPED_ACTIONS,
              **settings: Any) -> Prior:
    """Fit a reference policy to demonstrations (a file in any format nppac reads, or loaded ones).

    As ``nppac prior fit``: the set checked as a file is, actions clipped to [−1, 1] (refused when
    more than ``max_clipped_actions`` of the values lie outside), the task's kernel for a GP. The
    fit's metrics are on ``prior.metrics``. The kind, its settings and the arguments are checked before the
    demonstrations are read.
    """
    from nppac.data import load_demos
    from nppac.priors import fit_prior as fit
    from nppac.priors import make_prior
    from nppac.tasks import get_task

    name = None if task is None else task_name(task)
    make_prior(kind, **{k: v for k, v in settings.items() if k != "from_gpytorch"})  # the kind and its settings
    if not isinstance(data, (Demonstrations, str, os.PathLike)):
        raise NppacError(f"fit_prior: data={type(data).__name__} object; give Demonstrations or the path of a "
                         "demonstration file")
    _flags("fit_prior", allow_pickle=allow_pickle, progress=progress)
    if isinstance(max_clipped_actions, bool) or not isinstance(max_clipped_actions, (int, float)) \
            or not 0 <= max_clipped_actions <= 1:
        raise NppacError(f"fit_prior: max_clipped_actions={max_clipped_actions!r}; give a share in [0, 1]")
    if isinstance(data, Demonstrations):
        demos = data.checked(task=name, clip_actions=True, max_clipped=max_clipped_actions)
    else:
        demos = load_demos(data, task=name, allow_pickle=allow_pickle, clip_actions=True,
                           max_clipped=max_clipped_actions)
    if kind == "gp" and "kernel" not in settings and name is not None:
        settings["kernel"] = get_task(name).defaults.kernel
    with ProgressBar(progress) as bar:
        prior, metrics = fit(demos, kind, progress=bar.stage, **settings)
    prior.metrics = metrics  # type: ignore[attr-defined]  # handed back on the prior, beside the Prior interface
    return prior
