"""The hand tasks' two published training protocols, and the named prior conventions (DESIGN.md §2, §4)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nppac.data.relabel import as_binary_reward
from nppac.errors import NppacError
from nppac.tasks import get_task
from nppac.training import TrainConfig
from nppac.training.config import migrate
from nppac.training.envs import Collector, make_env
from nppac.training.setup import q_bounds


@pytest.mark.parametrize("algo, protocol, reward, horizon, terminal", [
    ("nppac", "nppac", "zero_one", 100, True),
    ("ppac-nn", "nppac", "zero_one", 100, True),
    ("sac-bc", "nppac", "zero_one", 100, True),
    ("awac", "awac", "minus_one_zero", 200, False),
    ("bc", "awac", "minus_one_zero", 200, False),
])
def test_each_algorithm_trains_pen_on_its_published_protocol_and_evaluates_on_one(algo, protocol, reward, horizon,
                                                                                  terminal):
    cfg = TrainConfig(task="pen-binary", algo=algo).resolved()
    assert (cfg.hand_protocol, cfg.binary_reward, cfg.horizon, cfg.timeout_terminal) == \
        (protocol, reward, horizon, terminal)
    assert (cfg.eval_horizon, cfg.eval_episodes) == (200, 25)


def test_protocol_fields_override_the_protocol_and_door_keeps_200_steps():
    cfg = TrainConfig(task="pen-binary", algo="nppac", binary_reward="minus_one_zero", horizon=200).resolved()
    assert (cfg.binary_reward, cfg.horizon, cfg.timeout_terminal) == ("minus_one_zero", 200, True)
    assert TrainConfig(task="door-binary", algo="nppac").resolved().horizon == 200
    awac = TrainConfig(task="pen-binary", algo="awac", hand_protocol="nppac").resolved()
    assert (awac.binary_reward, awac.horizon) == ("zero_one", 100)


def test_locomotion_bootstraps_time_limits_and_refuses_hand_settings():
    cfg = TrainConfig(task="halfcheetah").resolved()
    assert (cfg.hand_protocol, cfg.binary_reward, cfg.timeout_terminal, cfg.eval_horizon) == (None, None, False, 1000)
    for key, value in (("hand_protocol", "nppac"), ("binary_reward", "zero_one")):
        with pytest.raises(NppacError, match=f"{key} applies to the binary hand tasks only"):
            TrainConfig(task="halfcheetah", **{key: value}).resolved()
    with pytest.raises(NppacError, match="hand_protocol='mjrl'"):
        TrainConfig(task="pen-binary", hand_protocol="mjrl").resolved()


def test_q_bounds_follow_the_reward_values():
    zero_one = TrainConfig(task="pen-binary", algo="awac", hand_protocol="nppac").resolved()
    minus = TrainConfig(task="pen-binary", algo="awac").resolved()
    assert q_bounds(zero_one) == pytest.approx((0.0, 100.0))
    assert q_bounds(minus) == pytest.approx((-100.0, 0.0))


def test_zero_one_environment_and_demonstration_rewards():
    task = get_task("pen-binary")
    env = make_env(task, 5, seed=0, binary_reward="zero_one")
    env.reset(seed=0)
    rewards, flags = [], []
    for _ in range(5):
        _, r, _, _, info = env.step(np.zeros(task.act_dim, np.float32))
        rewards.append(r)
        flags.append(info["success"])
    assert rewards == [1.0 if f else 0.0 for f in flags]
    labels = np.array([0.0, -1.0, -1.0, 0.0], np.float32)
    np.testing.assert_array_equal(as_binary_reward(labels, "zero_one"), [1.0, 0.0, 0.0, 1.0])
    assert as_binary_reward(labels, "minus_one_zero") is labels
    with pytest.raises(NppacError, match="not the binary reward"):
        as_binary_reward(np.array([0.5], np.float32), "zero_one")


@pytest.mark.parametrize("timeout_terminal", [False, True])
def test_a_time_limit_is_a_terminal_only_under_the_published_protocol(timeout_terminal):
    import torch

    task = get_task("pen-binary")

    class Zero:
        def sample(self, obs):
            return (torch.zeros(1, task.act_dim),)

    collector = Collector(make_env(task, 4, seed=0), task.act_dim, torch.device("cpu"), timeout_terminal)
    batch = collector.collect(Zero(), 8, 0, np.random.default_rng(0))  # type: ignore[arg-type]
    expected = [0, 0, 0, 1, 0, 0, 0, 1] if timeout_terminal else [0] * 8
    np.testing.assert_array_equal(batch["done"], expected)


@pytest.mark.parametrize("convention, sigma, variance", [
    ("published", "variance", "love"), ("exact-variance", "variance", "exact"), ("std", "std", "exact"),
    ("love-std", "std", "love"), (None, "variance", "exact"),
])
def test_prior_conventions_name_a_sigma_and_variance_pair(convention, sigma, variance):
    cfg = TrainConfig(task="halfcheetah", prior_convention=convention).resolved()
    assert (cfg.prior_sigma, cfg.prior_variance) == (sigma, variance)


def test_a_convention_contradicted_by_a_field_is_refused():
    with pytest.raises(NppacError, match="prior_convention=published sets prior_sigma=variance"):
        TrainConfig(task="halfcheetah", prior_convention="published", prior_sigma="std").resolved()
    assert TrainConfig(task="halfcheetah", prior_convention="published", prior_sigma="variance").resolved()


def test_runs_stored_before_the_protocol_settings_resume_on_awacs_protocol(tmp_path):
    stored = TrainConfig(task="pen-binary", algo="nppac").resolved().to_dict()
    for key in ("hand_protocol", "binary_reward", "timeout_terminal", "eval_horizon", "prior_variance", "schema"):
        del stored[key]  # written before the protocol settings: before the schema version too
    stored["horizon"] = 200
    (tmp_path / "config.json").write_text(json.dumps(stored))
    cfg = TrainConfig.load(tmp_path / "config.json").resolved()
    assert (cfg.hand_protocol, cfg.binary_reward, cfg.horizon, cfg.timeout_terminal, cfg.eval_horizon,
            cfg.prior_variance) == ("awac", "minus_one_zero", 200, False, 200, "exact")
    assert migrate({"task": "halfcheetah", "algo": "sac"})["timeout_terminal"] is False


def test_a_run_with_the_published_convention_caches_loves_std_and_its_agent_squares_it(tmp_path):
    """Under prior_convention=published the replay buffer caches σ_LOVE, as the GP predicts it, and the agent
    reads it as σ²_LOVE in the place of σ0 (``prior_sigma = "variance"``): LOVE and the convention reach the KL."""
    import torch

    from nppac.priors import fit_prior
    from nppac.training import train
    from nppac.training.checkpoint import load_checkpoint
    from tests.builders import TINY, tiny_demos

    demos = tiny_demos()
    prior, _ = fit_prior(demos, "gp", kernel="rbf", iters=5)
    cfg = TrainConfig(**{**TINY, "steps": 150, "prior_sigma": None, "prior_convention": "published", "love_rank": 4})
    train(cfg, tmp_path / "run", prior=prior, demos=demos, progress=False)
    storage = load_checkpoint(tmp_path / "run" / "checkpoint.pt", torch.device("cpu"))["replay"]["storage"]
    states = storage["obs"][:20]
    _, love_std = prior.set_variance("love", rank=4, seed=0).predict(states)
    _, exact_std = prior.set_variance("exact").predict(states)
    torch.testing.assert_close(storage["prior_std"][:20], love_std, rtol=1e-5, atol=1e-7)
    assert float((love_std / exact_std).max()) > 1.01
    from nppac.training.setup import kl_sac_config

    loss = kl_sac_config(cfg.resolved())  # what the KL of the run's agent names and applies
    assert (loss.prior_sigma, loss.prior_variance) == ("variance", "love")


def test_a_run_checkpointed_before_the_remedies_existed_resumes(tmp_path):
    """A checkpoint whose stored config lacks settings added later (the remedies) matches the config.json
    beside it, which lacks them too: both read as the remedies off."""
    from nppac.training.rundir import check_same_run

    stored = TrainConfig(task="halfcheetah", algo="nppac").resolved().to_dict()
    for key in ("critic_layernorm", "auto_alpha_target"):
        del stored[key]
    (tmp_path / "config.json").write_text(json.dumps(stored))
    cfg = TrainConfig.load(tmp_path / "config.json")
    check_same_run(cfg, {"config": json.dumps(stored)}, tmp_path / "checkpoint.pt")
    edited = {**stored, "critic_layernorm": True}
    with pytest.raises(NppacError, match="critic_layernorm: False → True"):
        check_same_run(TrainConfig.from_dict(edited), {"config": json.dumps(stored)}, tmp_path / "checkpoint.pt")
