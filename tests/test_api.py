"""The Python API: a model per algorithm over the same loop and run directory as the CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import nppac
from nppac.errors import NppacError
from nppac.training import TrainConfig
from nppac.training.algorithms import ALGORITHMS
from tests.builders import nppac_in_process, tiny_demos
from tests.conftest import run_cli

TIMING = ("wall_s", "updates_per_s", "env_steps_per_s")
TINY = dict(steps_per_epoch=150, updates_per_epoch=30, warmup_steps=150, eval_episodes=1, horizon=60,
            batch_size=32, actor_hidden=(32, 32), critic_hidden=(32, 32), num_threads=1)


def rows(run) -> list[dict[str, str]]:
    with (run / "progress.csv").open() as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def test_every_algorithm_has_a_model_class():
    assert set(nppac.MODELS) == set(ALGORITHMS)
    assert all(cls.algo == name for name, cls in nppac.MODELS.items())


def test_the_api_and_the_cli_write_the_same_progress_for_the_same_seed(tmp_path):
    settings = [f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in TINY.items()]
    run_cli("train", "--task", "halfcheetah", "--algo", "sac", "--steps", "300", "--seed", "3", "--quiet",
            "--out", str(tmp_path / "cli"), *[a for s in settings for a in ("--set", s)], check=True)
    seen = []
    model = nppac.SAC("halfcheetah", seed=3, **TINY).learn(300, tmp_path / "api", callback=seen.append,
                                                             progress=False)
    assert rows(tmp_path / "api") == rows(tmp_path / "cli")
    assert [r["env_steps"] for r in seen] == [0, 150, 300]
    obs = np.zeros((4, 17), np.float32)
    assert model.predict(obs)[0].shape == (4, 6) and model.predict(obs[0])[0].shape == (6,)
    assert np.abs(model.predict(obs, deterministic=False)[0]).max() <= 1.0


def test_a_callback_stops_early_and_learn_resumes_and_load_reads_the_run(tmp_path):
    model = nppac.Model("halfcheetah", algo="sac", seed=1, **TINY)
    model.learn(450, tmp_path / "run", callback=lambda row: row["env_steps"] < 150, progress=False)
    assert [r["env_steps"] for r in rows(tmp_path / "run")] == ["0", "150"]
    model.learn(300, progress=False)  # 300 more steps
    assert [r["env_steps"] for r in rows(tmp_path / "run")] == ["0", "150", "300", "450"]
    saved = model.save(tmp_path / "copy")
    loaded = nppac.Model.load(saved)
    assert type(loaded) is nppac.SAC and loaded.config.seed == 1
    obs = np.random.default_rng(0).normal(size=(3, 17)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(obs)[0], model.predict(obs)[0])
    with pytest.raises(NppacError, match="is a sac run"):
        nppac.AWAC.load(saved)


def test_bad_settings_are_refused_by_name():
    with pytest.raises(NppacError, match="unknown config key 'lamda' for algo awac"):
        nppac.AWAC("halfcheetah", lamda=0.3)
    with pytest.raises(NppacError, match="NPPAC trains nppac, not sac"):
        nppac.NPPAC("halfcheetah", algo="sac")
    with pytest.raises(NppacError, match="not been trained"):
        nppac.SAC("halfcheetah").predict(np.zeros(17))
    assert nppac.AWAC("pen-binary", lam=0.3).config.algo_settings == {"lam": 0.3}


def test_a_path_argument_that_is_no_path_is_refused_by_name():
    from nppac.callbacks import CheckpointCallback

    with pytest.raises(NppacError, match=r"^Model.load: path=None: expected a path$"):
        nppac.Model.load(None)  # type: ignore[arg-type]
    with pytest.raises(NppacError, match=r"^learn: out_dir=5: expected a path$"):
        nppac.SAC("halfcheetah", verbose=0).learn(1000, out_dir=5)  # type: ignore[arg-type]
    with pytest.raises(NppacError, match=r"^CheckpointCallback: save_path=5; give a directory's path$"):
        CheckpointCallback(150, 5)  # type: ignore[arg-type]


def test_a_prior_passed_as_an_object_is_named_in_config_json_whose_file_alone_reruns_the_run(tmp_path, monkeypatch,
                                                                                           capsys):
    from nppac.data import save_npz
    from nppac.diagnostics.curves import load_run

    save_npz(tiny_demos(), tmp_path / "demos.npz")
    prior = nppac.fit_prior(tmp_path / "demos.npz", task="halfcheetah", kind="gp", iters=3)
    model = nppac.NPPAC("halfcheetah", prior=prior, demos=tmp_path / "demos.npz", seed=2, init_epochs=2, **TINY)
    model.learn(300, tmp_path / "run", progress=False)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["prior"] == "prior"  # the run's own copy, named relative to the run (a run moves whole)
    assert TrainConfig.load(tmp_path / "run" / "config.json").prior == str((tmp_path / "run" / "prior").resolve())
    assert load_run(tmp_path / "run").has("kl_mean")  # the curves' KL panel
    # The file alone reruns the run elsewhere (its prior read from the first run's copy, then copied again) ...
    code, _, err = nppac_in_process(monkeypatch, capsys, "train", "--config", str(tmp_path / "run" / "config.json"),
                                    "--out", str(tmp_path / "rerun"), "--quiet")
    assert code == 0, err
    assert rows(tmp_path / "rerun") == rows(tmp_path / "run")
    rerun = json.loads((tmp_path / "rerun" / "config.json").read_text())
    assert rerun["prior"] == "prior"
    assert {k: v for k, v in rerun.items() if k != "prior"} == {k: v for k, v in config.items() if k != "prior"}
    # ... and the run itself, naming its own copy, resumes from it.
    model.learn(150, progress=False)
    assert [r["env_steps"] for r in rows(tmp_path / "run")] == ["0", "150", "300", "450"]
