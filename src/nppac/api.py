"""A model-per-algorithm Python API in the style of Stable-Baselines3, over the same training loop as the CLI.

    from nppac import NPPAC, fit_prior

    prior = fit_prior("pen2_sparse.npy", task="pen-binary", kind="gp", allow_pickle=True)
    model = NPPAC("pen-binary", prior=prior, demos="pen2_sparse.npy", allow_pickle=True, seed=0, alpha=0.1)
    model.learn(total_steps=15_000, out_dir="runs/pen", callback=lambda row: row["eval_success"] < 0.95)
    model = NPPAC.load("runs/pen")
    action = model.predict(obs, deterministic=True)

The task is a name (``nppac tasks``, a gymnasium id such as ``"Pendulum-v1"``, ``module:function``),
a :class:`~nppac.tasks.Task` or a ``gymnasium.Env`` object (:func:`nppac.register_task` registers
one under a name of your choosing):

    env = gymnasium.make("Pendulum-v1")
    demos = Demonstrations.from_arrays(obs, actions, rewards, timeouts=ends, action_space=env.action_space)
    NPPAC(env, demos=demos, prior=fit_prior(demos)).learn(20_000, "runs/pendulum")

Every method is a thin layer over what ``nppac train`` calls (:func:`nppac.training.train`), so a
model's run directory is the one the CLI writes for the same settings: ``config.json``,
``progress.csv``, checkpoints, the prior, ``actor.safetensors``. ``learn`` on a model that has
run resumes it (a larger ``total_steps`` extends it); ``load`` reads any run directory, from
the CLI or the API. Settings are :class:`~nppac.training.TrainConfig` fields, or the
algorithm's own (awac's ``lam``), as keyword arguments.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from nppac.agents.networks import Actor, load_actor
from nppac.data.demos import Demonstrations
from nppac.data.validate import MAX_CLIPPED_ACTIONS
from nppac.errors import NppacError
from nppac.priors.base import Prior
from nppac.tasks import Task, task_name
from nppac.training.algorithms import ALGORITHMS, get_algorithm
from nppac.training.config import TrainConfig, own_settings
from nppac.training.loop import train as run_training
from nppac.training.progress import ProgressBar
from nppac.training.rundir import ACTOR_NAME, CONFIG_NAME

Callback = Callable[[dict[str, Any]], Any]
"""Called with every progress row (after its checkpoint); returning False stops training after that row."""


class Model:
    """One algorithm of the algorithm table on one task: a task name, a :class:`~nppac.tasks.Task` or a
    ``gymnasium.Env`` (registered under its id, else its class name, :func:`nppac.tasks.env_task`).

    Subclasses fix ``algo`` (``Model(task, algo=...)`` also works).
    """

    algo: ClassVar[str | None] = None

    def __init__(self, task: str | Task | gym.Env, *, algo: str | None = None, prior: Prior | str | Path | None = None,
                 demos: Demonstrations | str | Path | None = None, seed: int = 0, device: str = "cpu",
                 **settings: Any) -> None:
        name = algo or type(self).algo
        if name is None:
            raise NppacError(f"Model needs algo=...; one of: {', '.join(ALGORITHMS)}")
        if type(self).algo is not None and algo not in (None, type(self).algo):
            raise NppacError(f"{type(self).__name__} trains {type(self).algo}, not {algo}; use Model(task, algo=...)")
        fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"algo_settings"}
        shared: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items() if k in fields}
        own = {k: v for k, v in settings.items() if k not in fields}
        unknown = sorted(set(own) - set(own_settings(get_algorithm(name))))
        if unknown:
            raise NppacError(f"unknown setting(s) {', '.join(unknown)} for {name}; known: "
                             f"{', '.join(TrainConfig.set_keys(name))}")
        for key, value in (("prior", prior), ("demos", demos)):
            if isinstance(value, (str, Path)):
                shared[key] = str(value)
        self.config = TrainConfig(task=task_name(task), algo=name, seed=seed, device=device, **shared,
                                  algo_settings=own).validate()
        self.prior = prior if not isinstance(prior, (str, Path)) else None
        self.demos = demos if not isinstance(demos, (str, Path)) else None
        self.run_dir: Path | None = None
        self.actor: Actor | None = None
        self.summary: dict[str, Any] = {}

    def learn(self, total_steps: int, out_dir: str | Path | None = None, callback: Callback | None = None,
              progress: bool = True) -> Model:
        """Train until ``total_steps`` environment steps (resuming the model's run if it has one); returns self.

        ``out_dir`` defaults to ``runs/TASK-ALGO-seedS-TIME``. ``callback(row)`` sees every
        progress row; returning False stops after that row (the run can be resumed later).
        """
        cfg = self.config
        if self.run_dir is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            self.run_dir = Path(out_dir) if out_dir is not None else \
                Path("runs") / f"{cfg.task}-{cfg.algo}-seed{cfg.seed}-{stamp}"
        elif out_dir is not None and Path(out_dir) != self.run_dir:
            raise NppacError(f"this model runs in {self.run_dir}; save() it elsewhere rather than learn into {out_dir}")
        resume = (self.run_dir / CONFIG_NAME).exists()
        fresh = None if resume else dataclasses.replace(cfg, steps=total_steps)
        self.summary = run_training(fresh, self.run_dir, resume=resume, prior=self.prior, demos=self.demos,
                                    steps=total_steps if resume else None, progress=progress, on_epoch_end=callback)
        self.actor = load_actor(self.run_dir / ACTOR_NAME, self.config.device)
        return self

    @torch.no_grad()
    def predict(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """The action for one observation (obs_dim,) or a batch (n, obs_dim): the mean action, or a sample."""
        if self.actor is None:
            raise NppacError("the model has not been trained or loaded: call learn() or Model.load(run_dir)")
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=next(self.actor.parameters()).device)
        single = x.ndim == 1
        batch = x.reshape(1, -1) if single else x
        if deterministic:
            action = torch.stack([torch.as_tensor(self.actor.act(o)) for o in batch.cpu().numpy()]) \
                if batch.shape[0] else batch.new_zeros(0, self.actor.act_dim)
        else:
            action = self.actor.sample(batch)[0].clamp(-1.0, 1.0)
        out = action.cpu().numpy()
        return out[0] if single else out

    def save(self, path: str | Path) -> Path:
        """Copy the model's run directory to ``path`` (nothing to do when it already lives there)."""
        if self.run_dir is None:
            raise NppacError("nothing to save: call learn() first")
        target = Path(path)
        if target.resolve() != self.run_dir.resolve():
            if target.exists() and any(target.iterdir()):
                raise NppacError(f"{target} exists and is not empty; choose another path")
            shutil.copytree(self.run_dir, target, dirs_exist_ok=True)
        return target

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Model:
        """The model of a run directory (written by the CLI or the API): its settings, its last actor."""
        run = Path(path)
        cfg = TrainConfig.load(run / CONFIG_NAME)
        model_cls = MODELS.get(cfg.algo, Model) if cls is Model else cls
        if model_cls.algo not in (None, cfg.algo):
            raise NppacError(f"{run} is a {cfg.algo} run; load it with Model.load or {MODELS[cfg.algo].__name__}.load")
        model = model_cls.__new__(model_cls)
        model.config = dataclasses.replace(cfg, device=device)
        model.prior, model.demos, model.run_dir, model.summary = None, None, run, {}
        model.actor = load_actor(run / ACTOR_NAME, device) if (run / ACTOR_NAME).exists() else None
        return model


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


def fit_prior(data: Demonstrations | str | Path, task: str | Task | gym.Env | None = None, kind: str = "gp",
              allow_pickle: bool = False, progress: bool = False, max_clipped_actions: float = MAX_CLIPPED_ACTIONS,
              **settings: Any) -> Prior:
    """Fit a reference policy to demonstrations (a file in any format nppac reads, or loaded ones).

    As ``nppac prior fit``: the set checked as a file is, actions clipped to [−1, 1] (refused when
    more than ``max_clipped_actions`` of the values lie outside), the task's kernel for a GP. The
    fit's metrics are on ``prior.metrics``.
    """
    from nppac.data import load_demos
    from nppac.priors import fit_prior as fit
    from nppac.tasks import get_task

    name = None if task is None else task_name(task)
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
