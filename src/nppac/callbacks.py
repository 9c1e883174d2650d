"""Callbacks of :meth:`nppac.Model.learn`, in the style of Stable-Baselines3.

A callback sees the run at every environment step (:meth:`BaseCallback.on_step`) and at
every evaluation (:meth:`BaseCallback.on_evaluation`, with the row written to
``progress.csv``); returning False from either stops the run. Stopped at an evaluation,
the run stops at its checkpoint; stopped at a step, at once, and a later ``learn``
continues from the last checkpoint, as after a kill. ``on_step`` runs only for a
callback that overrides it, so a run without one pays nothing per step.

    model.learn(50_000, "runs/hc", callback=[CheckpointCallback(10_000, "runs/hc-snapshots"),
                                             EvalCallback(reward_threshold=3000)])
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from nppac.errors import NppacError
from nppac.outputs import check_output_dir
from nppac.training.config import TrainConfig


class LearningModel(Protocol):
    """What a callback sees of the model that learns (:class:`nppac.Model` is one): its settings, its run, its
    environment steps so far, and ``predict`` and ``save``, which read the live policy during training."""

    config: TrainConfig
    run_dir: Path | None
    """Where the model's run lives (None before its first ``learn``)."""

    @property
    def num_timesteps(self) -> int: ...

    def predict(self, observation: Any, deterministic: bool = True, *, state: Any = None,
                episode_start: Any = None) -> tuple[Any, Any]: ...

    def save(self, path: str | os.PathLike[str]) -> Path: ...


RowFunction = Callable[[dict[str, Any]], Any]
"""A plain function of each progress row, as :meth:`BaseCallback.on_evaluation` (False stops)."""


class BaseCallback:
    """Subclass and override what you need. ``self.model`` is the model that learns (its ``predict`` and ``save``
    work during training, on the live policy), ``self.num_timesteps`` the run's environment steps so far,
    ``self.n_calls`` the number of ``on_step`` calls."""

    def __init__(self) -> None:
        self.model: LearningModel | None = None
        self.num_timesteps = 0
        self.n_calls = 0

    def init_callback(self, model: LearningModel) -> None:
        """Called by ``learn`` before any work: binds the model (a subclass checks its settings here)."""
        self.model = model

    def on_training_start(self) -> None:
        """Called once the run is set up, before its first phase."""

    def on_step(self) -> bool:
        """Called after every online environment step; False stops the run at once."""
        return True

    def on_evaluation(self, row: dict[str, Any]) -> bool | None:
        """Called with every evaluated row (after its checkpoint); False stops the run after it."""
        return True

    def on_training_end(self) -> None:
        """Called when ``learn`` returns (after the run stopped or reached its steps)."""

    @property
    def steps_each_step(self) -> bool:
        """Whether this callback needs :meth:`on_step` (it overrides it)."""
        return type(self).on_step is not BaseCallback.on_step


class CheckpointCallback(BaseCallback):
    """Every ``save_freq`` environment steps, a copy of the run as :meth:`Model.save` writes it:
    ``save_path/{name_prefix}_{steps}_steps``. A run continues only from its checkpoints, written at each
    evaluation, so the copy is made at the first evaluation at or after each multiple of ``save_freq``."""

    def __init__(self, save_freq: int, save_path: str | Path, name_prefix: str = "nppac") -> None:
        super().__init__()
        if isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1:
            raise NppacError(f"CheckpointCallback: save_freq={save_freq!r}; give a whole number of env steps ≥ 1")
        if not isinstance(save_path, (str, os.PathLike)):
            raise NppacError(f"CheckpointCallback: save_path={save_path!r}; give a directory's path")
        if Path(save_path).exists() and not Path(save_path).is_dir():
            raise NppacError(f"CheckpointCallback: {save_path} is a file; save_path must be a directory")
        if not isinstance(name_prefix, str) or not name_prefix or "/" in name_prefix or name_prefix in (".", ".."):
            raise NppacError(f"CheckpointCallback: name_prefix={name_prefix!r}; give a non-empty name without '/' "
                             "(it starts each snapshot's folder name in save_path)")
        self.save_freq, self.save_path, self.name_prefix = save_freq, Path(save_path), name_prefix
        self.next_save = save_freq
        self.saved: list[Path] = []

    def init_callback(self, model: LearningModel) -> None:
        super().init_callback(model)
        if model.run_dir is not None and self.save_path.resolve().is_relative_to(model.run_dir.resolve()):
            raise NppacError(f"CheckpointCallback: save_path {self.save_path} is inside the run directory "
                             f"{model.run_dir}, which a snapshot copies whole; choose a path outside it")
        check_output_dir(self.save_path, reuse=lambda _: True)  # a writable place; earlier snapshots may stay
        done = model.num_timesteps
        self.next_save = (done // self.save_freq + 1) * self.save_freq

    def on_evaluation(self, row: dict[str, Any]) -> bool:
        steps = int(row["env_steps"])
        if steps >= self.next_save and self.model is not None:
            self.saved.append(self.model.save(self.save_path / f"{self.name_prefix}_{steps}_steps"))
            self.next_save = (steps // self.save_freq + 1) * self.save_freq
        return True


EVAL_METRICS = ("eval_return", "eval_success", "eval_return_min")
"""The evaluation columns :class:`EvalCallback` may follow."""


class EvalCallback(BaseCallback):
    """Records every evaluation (each progress row's) under Stable-Baselines3's names and stops the run once
    ``metric`` (:data:`EVAL_METRICS`; eval_success on binary tasks only) reaches ``reward_threshold``."""

    def __init__(self, reward_threshold: float | None = None, metric: str = "eval_return") -> None:
        super().__init__()
        if metric not in EVAL_METRICS:
            raise NppacError(f"EvalCallback: metric={metric!r}; choose one of: {', '.join(EVAL_METRICS)}")
        if reward_threshold is not None and (isinstance(reward_threshold, bool)
                                             or not isinstance(reward_threshold, (int, float))
                                             or reward_threshold != reward_threshold):
            raise NppacError(f"EvalCallback: reward_threshold={reward_threshold!r}; give a number or None")
        self.reward_threshold, self.metric = reward_threshold, metric
        self.evaluations_timesteps: list[int] = []
        self.evaluations_results: list[float] = []
        self.last_mean_reward = self.best_mean_reward = -float("inf")

    def init_callback(self, model: LearningModel) -> None:
        super().init_callback(model)
        if self.metric == "eval_success" and model.config.task_spec.reward != "binary":
            raise NppacError(f"EvalCallback: metric=eval_success needs a binary task; {model.config.task} has "
                             "dense rewards (use eval_return)")

    def on_evaluation(self, row: dict[str, Any]) -> bool:
        value = float(row[self.metric])
        self.evaluations_timesteps.append(int(row["env_steps"]))
        self.evaluations_results.append(value)
        self.last_mean_reward, self.best_mean_reward = value, max(self.best_mean_reward, value)
        return self.reward_threshold is None or value < self.reward_threshold


class RowCallback(BaseCallback):
    """A plain function of each row as a callback (what ``learn(callback=f)`` makes of it)."""

    def __init__(self, function: RowFunction) -> None:
        super().__init__()
        self.function = function

    def on_evaluation(self, row: dict[str, Any]) -> bool | None:
        return False if self.function(row) is False else True


def callbacks(given: Any) -> list[BaseCallback]:
    """``learn``'s ``callback`` as a list of callbacks, each checked before any work: a callback instance, or a
    function that takes one argument (the row); anything else is refused in one line."""
    if given is None:
        return []
    items = list(given) if isinstance(given, (list, tuple)) else [given]
    out: list[BaseCallback] = []
    for item in items:
        if isinstance(item, BaseCallback):
            out.append(item)
            continue
        if isinstance(item, type) or not callable(item):
            what = f"the class {item.__name__}; pass an instance" if isinstance(item, type) else \
                "neither a BaseCallback nor a function of a progress row"
            raise NppacError(f"callback={item!r} is {what} (nppac.callbacks; or a list of them)")
        try:
            inspect.signature(item).bind({})
        except TypeError:
            raise NppacError(f"callback={item!r} cannot be called with one argument, the progress row "
                             "(a dict); give a function of one argument or a BaseCallback") from None
        except ValueError:
            pass  # a builtin without a signature: called as it is
        out.append(RowCallback(item))
    return out
