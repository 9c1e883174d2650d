"""The quickstart: it starts from the bundled initialized actor, says so, and its config.json names its prior."""

from __future__ import annotations

import csv
import json
import logging
import re

import pytest
import torch
from safetensors.torch import load_file

import nppac.training
import nppac.training.quickstart as quickstart
from nppac.tasks import get_task
from tests.builders import LinearGaussianPrior, nppac_in_process


def test_halfcheetah_has_an_initialized_actor_made_for_the_quickstarts_prior():
    task = get_task("halfcheetah")
    settings = quickstart.prior_settings(task, task.bundled_demos, iters=100, inducing=1000, seed=0)
    found = quickstart.initialized_actor(task, settings)
    assert found is not None
    path, record = found
    assert record["initialization"]["epochs"] == task.defaults.init_epochs
    # It starts where its prior's mean action is, not where a few epochs of initialization leave a policy.
    assert record["eval_return"] > 0.75 * record["prior_mean_action_return"]
    assert path.stat().st_size < 1_000_000
    # Another prior (other settings, or other demonstrations) does not get it.
    assert quickstart.initialized_actor(task, {**settings, "iters": 99}) is None
    assert quickstart.initialized_actor(get_task("hopper"), settings) is None


@pytest.mark.slow
def test_quickstart_starts_from_the_bundled_actor_and_names_its_prior(tmp_path, monkeypatch, capsys, caplog):
    """The quickstart's own path with a short run: a stand-in prior (the bundled actor is chosen by the prior's
    settings), 150 env steps and no update, so the run's actor is the one it started from. It prints one KL for
    that actor, the one its progress.csv holds at step 0 (not also the bundled record's)."""
    caplog.set_level(logging.INFO)
    small = dict(steps_per_epoch=150, warmup_steps=150, updates_per_epoch=0, eval_episodes=1, horizon=30,
                 batch_size=32, critic_hidden=(32, 32))
    original = nppac.training.TrainConfig
    monkeypatch.setattr(nppac.training, "TrainConfig", lambda **kw: original(**kw, **small))
    metrics = {"std_on_data": 0.1, "std_offset": {"8": 0.5}}
    monkeypatch.setattr(quickstart, "fit_quickstart_prior",
                        lambda demos, settings, progress=None: (LinearGaussianPrior(17, 6), metrics))
    out = tmp_path / "qs"
    code, stdout, stderr = nppac_in_process(monkeypatch, capsys, "quickstart", "--steps", "150", "--out", str(out))
    assert code == 0, stderr
    assert "from the bundled initialized actor" in stderr and f"run directory: {out}" in stdout
    config = json.loads((out / "config.json").read_text())
    assert config["prior"] == "prior"  # the run's own copy, relative to the run
    assert config["init_epochs"] == 0 and config["init_actor"].endswith("halfcheetah.safetensors")
    bundled = load_file(config["init_actor"])
    for name, tensor in load_file(str(out / "actor.safetensors")).items():
        torch.testing.assert_close(tensor, bundled[name], rtol=0, atol=0)
    with (out / "progress.csv").open(newline="") as f:
        first = next(csv.DictReader(f))
    assert first["phase"] == "init"
    # The log line may reach both stderr and caplog: compare what follows "KL", not how often it is shown.
    printed = stdout + stderr + caplog.text
    kls = {line[line.index("KL"):] for line in printed.splitlines() if re.search(r"KL(\(π‖π0\))? \d", line)}
    assert kls == {f"KL(π‖π0) {float(first['init_kl']):.3g} on the 10000 demonstration states (init_kl)"}, kls
    record = quickstart.initialized_actor(get_task("halfcheetah"), quickstart.prior_settings(
        get_task("halfcheetah"), get_task("halfcheetah").bundled_demos, 100, 1000, 0))[1]
    assert f"{record['initialization']['kl']:.3g}" not in printed
    assert (out / "learning_curve.png").is_file()


def test_an_init_actor_of_another_architecture_is_refused_in_one_line(tmp_path):
    from nppac.agents import Actor, save_actor
    from nppac.errors import NppacError
    from nppac.training import TrainConfig, train
    from tests.builders import TINY, tiny_demos

    save_actor(Actor(17, 6, (16,), "tanh_gaussian"), tmp_path / "small.safetensors")
    config = TrainConfig(algo="nppac", init_actor=str(tmp_path / "small.safetensors"), **TINY)
    with pytest.raises(NppacError, match=r"does not fit the run's actor: hidden \(16,\) \(the run's: \(32, 32\)\)"):
        train(config, tmp_path / "run", prior=LinearGaussianPrior(17, 6), demos=tiny_demos(), progress=False)
    assert not (tmp_path / "run").exists()
