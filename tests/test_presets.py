"""The published preset: the published code's settings, written out here from DESIGN.md §3 independently."""

from __future__ import annotations

import json

import pytest

from nppac.errors import NppacError
from nppac.training import TrainConfig
from tests.builders import nppac_in_process

# DESIGN.md §3: task → (α, kernel, actor head, actor widths, batch, initialization epochs).
PUBLISHED = {
    "halfcheetah": (0.1, "rbf", "tanh_gaussian", (256, 256), 256, 400),
    "walker2d": (0.2, "rbf", "tanh_gaussian", (256, 256), 256, 400),
    "ant": (0.1, "rbf", "tanh_gaussian", (256, 256), 256, 400),
    "pen-binary": (0.1, "matern52", "gaussian_tanh_mean", (256,) * 4, 1024, 550),
    "door-binary": (0.5, "matern12", "gaussian_tanh_mean", (256,) * 4, 1024, 400),
}


@pytest.mark.parametrize("task", sorted(PUBLISHED))
@pytest.mark.parametrize("algo", ["nppac", "ppac-nn"])
def test_published_preset_resolves_to_the_published_settings(task, algo):
    cfg = TrainConfig(task=task, algo=algo, preset="published").resolved()
    assert (cfg.alpha, cfg.prior_kernel, cfg.actor, cfg.actor_hidden, cfg.batch_size, cfg.init_epochs) == \
        PUBLISHED[task]
    # The published prior: σ0² (LOVE's estimate for a GP) in the place of σ0; the initialized policy warms up.
    assert (cfg.prior_sigma, cfg.prior_variance, cfg.warmup) == ("variance", "love", "policy")
    hand = task.endswith("-binary")
    assert cfg.hand_protocol == ("nppac" if hand else None)
    if hand:  # N-PPAC's own hand protocol: reward 0/1, 100-step pen episodes, the time limit a terminal
        assert cfg.binary_reward == "zero_one" and cfg.timeout_terminal
    assert (cfg.gamma, cfg.tau, cfg.actor_lr, cfg.critic_lr, cfg.critic_hidden, cfg.init_batch_size) == \
        (0.99, 0.005, 3e-4, 3e-4, (256, 256), 64)


def test_the_preset_differs_from_todays_defaults_where_the_defaults_are_not_published():
    default, published = (TrainConfig(task="pen-binary", preset=p).resolved() for p in (None, "published"))
    assert (default.prior_sigma, published.prior_sigma) == ("std", "variance")
    assert (default.prior_variance, published.prior_variance) == ("exact", "love")


def test_an_explicit_setting_wins_over_the_preset_and_baselines_keep_their_own_protocol():
    cfg = TrainConfig(task="pen-binary", preset="published", alpha=0.3, prior_convention="std").resolved()
    assert (cfg.alpha, cfg.prior_sigma, cfg.prior_variance) == (0.3, "std", "exact")
    assert TrainConfig(task="pen-binary", algo="awac", preset="published").resolved().hand_protocol == "awac"
    assert TrainConfig(task="halfcheetah", algo="sac", preset="published").resolved().warmup == "uniform"
    hopper = TrainConfig(task="hopper", preset="published").resolved()  # no published setting: halfcheetah's
    assert (hopper.alpha, hopper.prior_kernel, hopper.init_epochs) == (0.1, "rbf", 400)


def test_an_unknown_preset_is_refused_in_one_line(monkeypatch, capsys, tmp_path):
    with pytest.raises(NppacError, match="preset='paper'.*published"):
        TrainConfig(preset="paper").resolved()
    code, _, stderr = nppac_in_process(monkeypatch, capsys, "train", "--task", "halfcheetah", "--algo", "nppac",
                                       "--preset", "paper", "--out", str(tmp_path / "run"))
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_the_paper_suite_uses_the_preset(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    suite = Path(__file__).resolve().parents[1] / "benchmarks" / "suites" / "paper.toml"
    code, stdout, _ = nppac_in_process(monkeypatch, capsys, "suite", "run", str(suite), "--out",
                                       str(tmp_path / "out"), "--dry-run", "--json")
    runs = json.loads(stdout)["runs"]
    assert code == 0 and runs and all(r["config"]["preset"] == "published" for r in runs)
