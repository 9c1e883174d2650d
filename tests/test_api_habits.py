"""The Python API refuses what the CLI refuses, before any work, and keeps Stable-Baselines3's habits."""

from __future__ import annotations

import logging
import re
import tomllib
import typing
from pathlib import Path

import numpy as np
import pytest
import torch

import nppac
from nppac.agents.networks import Actor, save_actor
from nppac.errors import NppacError
from nppac.training.config import PATH_FIELDS, TrainConfig, own_settings
from tests.builders import LinearGaussianPrior, tiny_demos
from tests.test_api import TINY, rows

ROOT = Path(__file__).resolve().parents[1]


def saved_run(path: Path, task: str = "halfcheetah", algo: str = "sac") -> Path:
    """A run directory as load() reads it (config.json and an actor), without training."""
    path.mkdir(parents=True)
    TrainConfig(task=task, algo=algo).resolved().save(path / "config.json")
    save_actor(Actor(17, 6, (8, 8), "tanh_gaussian"), path / "actor.safetensors")
    return path


@pytest.fixture
def no_training(monkeypatch):
    """Any training (prior fit, initialization, a row) fails the test: refusals come first."""

    def train(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr("nppac.api.run_training", train)


def env_steps(run: Path) -> list[int]:
    return [int(r["env_steps"]) for r in rows(run)]


# --- refusals, before any work -------------------------------------------------------------------------------


def test_a_new_model_refuses_an_out_dir_that_holds_a_run(tmp_path, no_training):
    run = saved_run(tmp_path / "cheetah")
    before = sorted(p.name for p in run.iterdir())
    with pytest.raises(NppacError, match=r"already exists; continue its run with Model.load\('.*cheetah'\)"):
        nppac.SAC("hopper", **TINY).learn(300, run)
    assert sorted(p.name for p in run.iterdir()) == before
    (tmp_path / "file").write_text("x")
    with pytest.raises(NppacError, match="is a file"):
        nppac.SAC("halfcheetah", **TINY).learn(300, tmp_path / "file")


def test_predict_refuses_wrong_shapes_and_values_that_are_not_finite_in_float32(tmp_path):
    model = nppac.Model.load(saved_run(tmp_path / "run"))
    for bad, shape in ((np.zeros(5), r"\(5,\)"), (np.float32(1.0), r"\(\)"), (np.zeros((2, 3, 17)), r"\(2, 3, 17\)"),
                       (np.zeros((4, 16)), r"\(4, 16\)")):
        with pytest.raises(NppacError, match=rf"observation of shape {shape}; the policy expects \(17,\) for one "
                                             r"observation or \(n, 17\)"):
            model.predict(bad)
    for value in (np.nan, np.inf, 1e300):
        obs = np.zeros((3, 17))
        obs[1, 4] = value
        with pytest.raises(NppacError, match=r"holds 1 NaN, Inf or values beyond float32's range \(first at index "
                                             r"\(1, 4\)"):
            model.predict(obs)
    with pytest.raises(NppacError, match="not numeric"):
        model.predict(np.array(["a"] * 17))


def test_devices_are_checked_before_any_work(tmp_path, monkeypatch):
    run = saved_run(tmp_path / "run")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(NppacError, match="device 'cuda' requested but"):
        nppac.Model.load(run, device="cuda")
    with pytest.raises(NppacError, match="device 'cuda:0' requested but"):
        nppac.SAC("halfcheetah", device="cuda:0")
    with pytest.raises(NppacError, match="unknown device 'gpu'"):
        nppac.SAC("halfcheetah", device="gpu")
    assert nppac.SAC("halfcheetah", device="auto").config.device == "cpu"
    assert nppac.Model.load(run, device="auto").config.device == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert nppac.SAC("halfcheetah", device="auto").config.device == "cuda"


def test_save_writes_a_run_directory_and_refuses_a_file_or_a_place_inside_the_run(tmp_path):
    model = nppac.Model.load(saved_run(tmp_path / "run"))
    (tmp_path / "taken").write_text("x")
    with pytest.raises(NppacError, match="taken is a file; the output must be a directory"):
        model.save(tmp_path / "taken")
    with pytest.raises(NppacError, match="is inside the run directory"):
        model.save(tmp_path / "run" / "copy")
    copy = nppac.Model.load(model.save(tmp_path / "copy"))
    obs = np.ones(17, np.float32)
    np.testing.assert_array_equal(copy.predict(obs)[0], model.predict(obs)[0])


def test_callbacks_and_learn_arguments_are_checked_before_any_work(tmp_path, no_training):
    from nppac.callbacks import CheckpointCallback, EvalCallback

    model = nppac.SAC("halfcheetah", **TINY)
    for callback, message in ((5, "callback=5 is neither a BaseCallback nor a function of a progress row"),
                              ([print, "x"], "callback='x' is neither"),
                              (EvalCallback, "the class EvalCallback; pass an instance"),
                              (lambda: True, "cannot be called with one argument, the progress row")):
        with pytest.raises(NppacError, match=message):
            model.learn(300, tmp_path / "run", callback=callback)
    for kwargs, message in (({"total_timesteps": 100}, "total_timesteps=100 is less than one epoch"),
                            ({"total_timesteps": True}, "expected a whole number"),
                            ({"total_timesteps": 300, "total_steps": 300}, "not both"),
                            ({}, "learn needs total_timesteps"),
                            ({"total_timesteps": 300, "progress": "no"}, "progress='no'; expected true or false"),
                            ({"total_timesteps": 300, "reset_num_timesteps": 0}, "reset_num_timesteps=0")):
        with pytest.raises(NppacError, match=message):
            model.learn(out_dir=tmp_path / "run", **kwargs)
    with pytest.raises(NppacError, match="save_freq=0"):
        CheckpointCallback(0, tmp_path / "snaps")
    with pytest.raises(NppacError, match="metric=eval_success needs a binary task"):
        model.learn(300, tmp_path / "run", callback=EvalCallback(metric="eval_success"))
    for prefix in ("../escape", "", 5):  # a snapshot's folder name, never a way out of save_path
        with pytest.raises(NppacError, match=r"^CheckpointCallback: name_prefix=.*; give a non-empty name"):
            CheckpointCallback(150, tmp_path / "snaps", name_prefix=prefix)  # type: ignore[arg-type]
    for inside in (tmp_path / "run", tmp_path / "run" / "snaps"):  # a snapshot copies the run, so not into it
        with pytest.raises(NppacError, match="is inside the run directory"):
            model.learn(300, tmp_path / "run", callback=CheckpointCallback(150, inside))
    assert not (tmp_path / "run").exists()


def test_constructor_arguments_are_checked_before_any_work(tmp_path):
    demos = tiny_demos()
    demos.trajectories[1].actions[5, 2] = np.nan  # built in memory, never validated
    with pytest.raises(NppacError, match=r"trajectory 1: field 'actions': has 1 NaN/Inf values"):
        nppac.SACBC("halfcheetah", demos=demos)
    with pytest.raises(NppacError, match="demos=dict object; give a Demonstrations"):
        nppac.SACBC("halfcheetah", demos={"observations": []})  # type: ignore[arg-type]
    with pytest.raises(NppacError, match="demos='nowhere.npz' does not exist"):
        nppac.SACBC("halfcheetah", demos="nowhere.npz")
    with pytest.raises(NppacError, match="prior has obs_dim=11, act_dim=3 but task halfcheetah has obs_dim=17"):
        nppac.NPPAC("halfcheetah", prior=LinearGaussianPrior(11, 3))
    with pytest.raises(NppacError, match="algo 'sac' uses no prior"):
        nppac.SAC("halfcheetah", prior=LinearGaussianPrior(17, 6))
    with pytest.raises(NppacError, match="prior=5 is neither a fitted prior"):
        nppac.NPPAC("halfcheetah", prior=5)  # type: ignore[arg-type]
    with pytest.raises(NppacError, match="verbose=3; choose 0"):
        nppac.SAC("halfcheetah", verbose=3)


def test_fit_prior_checks_its_arguments_before_reading_the_data(tmp_path):
    with pytest.raises(NppacError, match="unknown prior kind 'gpp'"):
        nppac.fit_prior(tmp_path / "not-read.npz", kind="gpp")
    with pytest.raises(NppacError, match="unknown gp prior setting"):
        nppac.fit_prior(tmp_path / "not-read.npz", kind="gp", iterations=3)
    with pytest.raises(NppacError, match="data=ndarray object"):
        nppac.fit_prior(np.zeros((3, 3)))  # type: ignore[arg-type]
    with pytest.raises(NppacError, match="max_clipped_actions=2"):
        nppac.fit_prior(tiny_demos(), max_clipped_actions=2)


# --- Stable-Baselines3's habits ---------------------------------------------------------------------------------


def test_typed_settings_are_train_configs_fields_and_the_algorithms_own():
    from nppac.api import Settings, TrainSettings
    from nppac.training.algorithms import ALGORITHMS

    explicit = {"task", "algo", "seed", "device", "prior", "demos"}
    fields = typing.get_type_hints(TrainConfig)
    typed = typing.get_type_hints(TrainSettings)
    assert set(typed) == set(fields) - explicit
    assert {k: v for k, v in typed.items() if k not in PATH_FIELDS} == \
        {k: v for k, v in fields.items() if k in typed and k not in PATH_FIELDS}
    own = {k for a in ALGORITHMS.values() for k in own_settings(a)}
    assert set(typing.get_type_hints(Settings)) - set(typed) == own
    assert explicit - {"task"} <= set(typing.get_type_hints(nppac.Model.__init__))


def test_the_package_ships_a_py_typed_marker():
    assert (ROOT / "src" / "nppac" / "py.typed").is_file()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["nppac"]


def recorder(stop_at: int | None = None):
    """A callback that records every step and evaluation (and the log level of the run); stops at ``stop_at``."""
    from nppac.callbacks import BaseCallback

    class Steps(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.steps: list[int] = []
            self.evaluated: list[tuple[int, tuple[int, ...]]] = []
            self.levels: list[int] = []

        def on_training_start(self) -> None:
            self.levels.append(logging.getLogger("nppac").getEffectiveLevel())

        def on_step(self) -> bool:
            self.steps.append(self.num_timesteps)
            return self.num_timesteps != stop_at

        def on_evaluation(self, row) -> bool:
            self.evaluated.append((self.num_timesteps, self.model.predict(np.zeros(17))[0].shape))
            return True

    return Steps()


def test_learn_adds_steps_calls_back_at_steps_and_evaluations_and_predict_returns_action_and_state(tmp_path, caplog):
    from nppac.callbacks import CheckpointCallback, EvalCallback

    caplog.set_level(logging.DEBUG)
    steps, evaluation = recorder(), EvalCallback()
    snapshots = CheckpointCallback(150, tmp_path / "snaps", name_prefix="sac")
    seen = []
    model = nppac.SAC("halfcheetah", seed=4, verbose=0, **TINY)
    model.learn(total_timesteps=300, out_dir=tmp_path / "run", callback=[steps, evaluation, snapshots, seen.append])
    assert steps.steps == list(range(1, 301)) and steps.levels == [logging.WARNING]
    assert steps.evaluated == [(0, (6,)), (150, (6,)), (300, (6,))]
    assert evaluation.evaluations_timesteps == [0, 150, 300] == [r["env_steps"] for r in seen]
    assert evaluation.best_mean_reward == max(evaluation.evaluations_results)
    assert not [r for r in caplog.records if r.name.startswith("nppac") and r.levelno < logging.WARNING]
    assert [p.name for p in snapshots.saved] == ["sac_150_steps", "sac_300_steps"]
    last = nppac.Model.load(snapshots.saved[-1])
    obs = np.random.default_rng(0).normal(size=(5, 17)).astype(np.float32)
    action, state = model.predict(obs, deterministic=True)
    assert action.shape == (5, 6) and state is None and model.predict(obs[0])[0].shape == (6,)
    np.testing.assert_array_equal(last.predict(obs)[0], action)
    assert model.predict(obs, deterministic=False, state="s")[1] == "s"
    with pytest.warns(DeprecationWarning, match=r"action, _ = model.predict\(obs\)"):
        assert model.predict(obs).shape == (5, 6)  # read as the action, as predict returned before
    # SB3: learn(N) adds N steps; reset_num_timesteps=False continues the count (a run keeps one count anyway).
    model.learn(total_timesteps=150, reset_num_timesteps=False)
    assert env_steps(tmp_path / "run") == [0, 150, 300, 450] and model.num_timesteps == 450
    with pytest.warns(DeprecationWarning, match="total_steps keeps its meaning, the run's total"):
        nppac.Model.load(tmp_path / "run").learn(total_steps=600)
    assert env_steps(tmp_path / "run") == [0, 150, 300, 450, 600]


def test_a_step_callback_stops_at_once_and_learn_continues_from_the_last_checkpoint(tmp_path, caplog):
    from nppac.callbacks import EvalCallback

    stop = recorder(stop_at=200)
    model = nppac.SAC("halfcheetah", seed=5, verbose=2, **TINY).learn(300, tmp_path / "run", callback=stop)
    assert stop.steps[-1] == 200 and env_steps(tmp_path / "run") == [0, 150] and stop.levels == [logging.DEBUG]
    assert model.actor is not None and model.num_timesteps == 150 and model.config.steps == 300
    again = recorder()
    nppac.Model.load(tmp_path / "run", verbose=1).learn(150, callback=again)
    assert again.steps == list(range(151, 301)) and again.levels == [logging.INFO]
    assert env_steps(tmp_path / "run") == [0, 150, 300]
    assert any(r.levelno == logging.INFO and r.name.startswith("nppac") for r in caplog.records)
    threshold = EvalCallback(reward_threshold=-1e9)  # reached at the first evaluation
    nppac.SAC("halfcheetah", seed=5, verbose=0, **TINY).learn(300, tmp_path / "short", callback=threshold)
    assert env_steps(tmp_path / "short") == [0] and threshold.evaluations_timesteps == [0]


@pytest.mark.parametrize("call, says", [
    (lambda: nppac.evaluate_policy(5), "cannot evaluate 5"),
    (lambda: nppac.evaluate_policy(None), "cannot evaluate None"),
    (lambda: nppac.evaluate_policy("runs/x", n_episodes=1.5), "n_episodes = 1.5: expected a whole number"),
    (lambda: nppac.evaluate_policy("runs/x", n_episodes="1"), "n_episodes = '1': expected a whole number"),
    (lambda: nppac.evaluate_policy("runs/x", seed="0"), "seed = '0': expected a whole number"),
    (lambda: nppac.evaluate_policy("runs/x", n_episodes=True), "n_episodes = True"),
    (lambda: nppac.SAC("hopper", verbose=True), "verbose=True"),
])
def test_wrong_arguments_are_one_line_before_any_work(call, says):
    with pytest.raises(NppacError, match=re.escape(says)):
        call()


def test_save_refuses_what_is_not_a_path_and_a_place_it_cannot_write(tmp_path):
    model = nppac.SAC("hopper")
    model.run_dir = tmp_path / "run"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    with pytest.raises(NppacError, match=re.escape("save(5): expected a path")):
        model.save(5)  # type: ignore[arg-type]
    with pytest.raises(NppacError, match="cannot write there"):
        model.save("/proc/nppac-cannot-be-here")
