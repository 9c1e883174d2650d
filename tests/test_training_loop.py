from __future__ import annotations

import csv
import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from nppac.agents import KL_SAC_METRIC_TERMS, SAC_METRIC_TERMS, load_actor
from nppac.data.demos import Demonstrations, Trajectory
from nppac.errors import DivergedError, NppacError
from nppac.training import TrainConfig, progress_columns, train
from nppac.training.checkpoint import load_checkpoint
from nppac.training.envs import Collector
from tests.builders import TINY, LinearGaussianPrior, tiny, tiny_demos


@pytest.fixture(autouse=True)
def _restore_threads():
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


def _rows(out):
    with (out / "progress.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


@pytest.mark.parametrize("algo", ["nppac", "ppac-nn", "sac"])
def test_two_epoch_run_writes_finite_metrics(tmp_path, algo):
    out = tmp_path / algo
    # nppac / ppac-nn fit the real GP / NN prior on the demonstrations (briefly), then initialize the policy.
    config = TrainConfig(algo=algo, **tiny(algo, prior_iters=5) if algo != "sac" else tiny(algo))
    summary = train(config, out, demos=None if algo == "sac" else tiny_demos(), progress=False)
    header, rows = _rows(out)
    terms = SAC_METRIC_TERMS if algo == "sac" else KL_SAC_METRIC_TERMS
    assert header == progress_columns(False, tuple(terms), with_init=algo != "sac")  # halfcheetah: no eval_success
    # SAC's penalty is log π − 0, the entropy term: logged under that name, never as a KL.
    assert ("log_pi_mean" in header, "kl_mean" in header) == ((True, False) if algo == "sac" else (False, True))
    assert "target_kl" not in header
    assert [(r["phase"], int(r["epoch"]), int(r["env_steps"]), int(r["gradient_steps"])) for r in rows] == \
        [("init", 0, 0, 0), ("online", 1, 150, 40), ("online", 2, 300, 80)]
    assert all(float(r["eval_return_min"]) == float(r["eval_return"]) for r in rows)  # one episode: its own worst
    if algo != "sac":  # the step-0 row reports KL(π‖π0) after policy initialization
        assert float(rows[0]["init_kl"]) > 0
    for row in rows[1:]:
        assert all(math.isfinite(float(row[c])) for c in header if c not in ("phase", "init_kl_start", "init_kl")), row
    if algo == "sac":
        assert float(rows[-1]["prior_log_prob_mean"]) == 0.0
    else:
        assert float(rows[-1]["prior_log_prob_mean"]) != 0.0
    assert summary["epochs"] == 2 and summary["env_steps"] == 300
    assert summary["final_eval_return"] == pytest.approx(float(rows[-1]["eval_return"]), rel=1e-4)
    assert load_actor(out / "actor.safetensors").hidden == (32, 32)
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["epoch"] == 2 and ckpt["replay"]["size"] == 300
    assert ckpt["replay"]["capacity"] == 300  # min(1e6, total steps)
    stored = TrainConfig.load(out / "config.json")
    assert stored.alpha == 0.1 and stored.actor == "tanh_gaussian"  # task defaults resolved
    assert (out / "prior").is_dir() == (algo != "sac")
    if algo != "sac":
        from nppac.priors import load_prior

        assert load_prior(out / "prior").kind == {"nppac": "gp", "ppac-nn": "nn"}[algo]


def test_resume_with_steps_extends_the_run_and_refuses_to_shrink_below_its_progress(tmp_path):
    out, prior = tmp_path / "run", LinearGaussianPrior(17, 6)
    train(TrainConfig(algo="nppac", **TINY), out, prior=prior, demos=tiny_demos(), progress=False)
    summary = train(None, out, resume=True, steps=600, prior=prior, progress=False)
    _, rows = _rows(out)
    assert [int(r["env_steps"]) for r in rows] == [0, 150, 300, 450, 600]
    assert summary["rows_this_call"] == 2 and json.loads((out / "config.json").read_text())["steps"] == 600
    assert load_checkpoint(out / "checkpoint.pt")["replay"]["size"] == 600
    with pytest.raises(NppacError, match="at least"):
        train(None, out, resume=True, steps=450, prior=prior, progress=False)
    assert json.loads((out / "config.json").read_text())["steps"] == 600


def test_resumed_run_of_an_earlier_version_fills_its_columns_under_todays_names(tmp_path):
    out = tmp_path / "run"
    train(TrainConfig(algo="sac", **tiny("sac")), out, progress=False)
    text = (out / "progress.csv").read_text()
    header, body = text.split("\n", 1)
    # Earlier versions logged SAC's log π as kl_mean and the critic target's as target_kl.
    old_header = header.replace("next_log_pi_mean", "target_kl").replace("log_pi_mean", "kl_mean")
    (out / "progress.csv").write_text(old_header + "\n" + body)
    train(None, out, resume=True, steps=450, progress=False)
    header_after, rows = _rows(out)
    assert header_after == header.split(",")
    assert [int(r["env_steps"]) for r in rows] == [0, 150, 300, 450]
    assert all(math.isfinite(float(r[c])) for r in rows[1:] for c in ("log_pi_mean", "next_log_pi_mean"))


def test_existing_directory_needs_resume(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "x").write_text("")
    with pytest.raises(NppacError, match="--resume"):
        train(TrainConfig(algo="sac", **tiny("sac")), tmp_path / "run", progress=False)


def test_resume_continues_without_repeating_or_losing_epochs(tmp_path):
    out = tmp_path / "run"
    config = TrainConfig(algo="nppac", **{**TINY, "steps": 600})
    prior = LinearGaussianPrior(17, 6)

    class Killed(Exception):
        pass

    def kill_after_two(row):
        if row["epoch"] == 2:
            raise Killed

    with pytest.raises(Killed):
        train(config, out, prior=prior, demos=tiny_demos(), progress=False, on_epoch_end=kill_after_two)
    # A kill between writing epoch 3's row and its checkpoint leaves a row the checkpoint never saw.
    header, rows = _rows(out)
    with (out / "progress.csv").open("a", newline="") as f:
        csv.writer(f).writerow(["online", "3", "450", "120"] + ["0"] * (len(header) - 4))
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 2

    summary = train(None, out, resume=True, prior=prior, progress=False)
    _, rows = _rows(out)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4]
    assert [int(r["env_steps"]) for r in rows] == [0, 150, 300, 450, 600]
    assert summary["rows_this_call"] == 2 and summary["env_steps"] == 600
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["epoch"] == 4 and ckpt["replay"]["size"] == 600
    assert float(rows[2]["wall_s"]) >= float(rows[1]["wall_s"])


class CollapsingPrior(LinearGaussianPrior):
    """Sane for the first batch of replay states, then σ0 → 1e-30 (the NN prior's pathology, exaggerated).

    Single states (the prior's mean-action rollout for references.json) do not count as a batch.
    """

    batches = 0

    def predict(self, states):
        mean, std = super().predict(states)
        if len(states) > 1:
            self.batches += 1
        return (mean, std) if self.batches <= 1 else (mean, torch.full_like(std, 1e-30))


def test_non_finite_loss_stops_with_message_and_keeps_last_checkpoint(tmp_path):
    out = tmp_path / "run"
    config = TrainConfig(algo="ppac-nn", **{**TINY, "steps": 450, "init_epochs": 0})
    with pytest.raises(DivergedError, match=r"KL penalty \(log π − log π0\).* non-finite at epoch 2"):
        train(config, out, prior=CollapsingPrior(17, 6, kind="nn"), progress=False)
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1
    _, rows = _rows(out)
    assert [int(r["epoch"]) for r in rows] == [0, 1]


def test_overrides_parse_by_field_type_and_reject_unknown_keys():
    cfg = TrainConfig().with_overrides(["steps=5000", "actor_hidden=64,64", "auto_alpha=true", "alpha=none",
                                        "tau=0.01", "demos=d.npz"])
    assert (cfg.steps, cfg.actor_hidden, cfg.auto_alpha, cfg.alpha, cfg.tau, cfg.demos) == \
        (5000, (64, 64), True, None, 0.01, "d.npz")
    with pytest.raises(NppacError, match="'bogus'"):
        TrainConfig().with_overrides(["bogus=1"])
    with pytest.raises(NppacError, match="steps"):
        TrainConfig().with_overrides(["steps=many"])
    with pytest.raises(NppacError, match="target_kl"):
        TrainConfig(algo="nppac", auto_alpha=True).validate()
    hand = TrainConfig(task="pen-binary", algo="nppac").resolved()
    assert (hand.alpha, hand.actor, hand.actor_hidden, hand.batch_size, hand.init_epochs, hand.eval_episodes,
            hand.eval_horizon, hand.prior_kernel) == \
        (0.1, "gaussian_tanh_mean", (256,) * 4, 1024, 550, 25, 200, "matern52")


def test_failed_setup_leaves_no_directory(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(NppacError, match="missing.npz"):
        train(TrainConfig(algo="nppac", demos=str(tmp_path / "missing.npz"), **TINY), out, progress=False)
    assert not out.exists()


def test_hand_task_with_published_demos_seeds_buffer_and_records_success(tmp_path, pen_file):
    out = tmp_path / "pen"
    config = TrainConfig(algo="nppac", demos=str(pen_file), allow_pickle=True, seed_demos=True,
                         **{**TINY, "task": "pen-binary", "actor_hidden": (32,) * 4, "init_epochs": 1, "horizon": 30})
    summary = train(config, out, prior=LinearGaussianPrior(45, 24), progress=False)
    header, rows = _rows(out)
    assert header == progress_columns(True, tuple(KL_SAC_METRIC_TERMS), with_init=True)
    assert [float(r["eval_success"]) for r in rows] == [0.0] * 3  # success needs the goal held > 20 of 30 steps
    assert summary["final_eval_success"] == 0.0
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["replay"]["size"] == 4975 + 300 == ckpt["replay"]["capacity"]
    assert load_actor(out / "actor.safetensors").kind == "gaussian_tanh_mean"


class _CountingEnv(gym.Env):
    """Observation = step index; odd-numbered episodes terminate at their 3rd step, even ones never do."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self) -> None:
        self.episode, self.t = 0, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        terminated = self.episode % 2 == 1 and self.t == 3
        return np.array([self.t], np.float32), 1.0, terminated, False, {}


def test_collector_bootstraps_through_truncation_but_not_termination():
    env = gym.wrappers.TimeLimit(_CountingEnv(), max_episode_steps=5)
    collector = Collector(env, act_dim=1, device=torch.device("cpu"))
    batch = collector.collect(actor=None, n_steps=10, n_uniform=10, rng=np.random.default_rng(0))
    # Episode 1 terminates after 3 steps (done = 1), episode 2 is cut by the time limit after 5 (done = 0).
    np.testing.assert_array_equal(batch["done"], [0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(batch["next_obs"][:, 0], [1, 2, 3, 1, 2, 3, 4, 5, 1, 2])
    np.testing.assert_array_equal(batch["obs"][:, 0], [0, 1, 2, 0, 1, 2, 3, 4, 0, 1])
    assert collector.last_return == 5.0  # the truncated episode's return
    assert np.abs(batch["action"]).max() <= 1.0


def test_tanh_squashed_prior_is_refused(tmp_path):
    """The buffer caches (μ0, σ0) as a Gaussian: a tanh-squashed prior would make log π0 wrong."""
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(41, 17)).astype(np.float32)
    act = np.tanh(rng.normal(size=(40, 6))).astype(np.float32)
    terminals = np.zeros(40, bool)
    timeouts = terminals.copy()
    timeouts[-1] = True
    demos = Demonstrations([Trajectory(obs[:-1], act, np.zeros(40, np.float32), terminals, timeouts, obs[1:])])
    from nppac.priors import make_prior

    prior = make_prior("nn", variant="tanh_gaussian", hidden=(8,), iters=2)
    prior.fit(demos)
    cfg = TrainConfig(task="halfcheetah", algo="ppac-nn", steps=100, steps_per_epoch=100)
    with pytest.raises(NppacError, match="tanh-squashed prior"):
        train(cfg, tmp_path / "run", prior=prior, demos=demos, progress=False)


def test_training_learns_from_the_executed_clipped_demonstration_actions(tmp_path, caplog):
    # DAPG's door set has actions up to 1.37; the environment executes clip(a, -1, 1), so training
    # (replay buffer, prior, offline phases) must see the clipped action, not the recorded one.
    from dataclasses import replace

    from nppac.data import save_npz
    from nppac.training.setup import DemoSource

    demos = tiny_demos(episodes=1, length=20)
    wide = replace(demos, trajectories=[replace(t, actions=np.linspace(-1.5, 1.5, t.actions.size, dtype=np.float32)
                                                           .reshape(t.actions.shape)) for t in demos])
    assert np.abs(np.concatenate([t.actions for t in wide])).max() > 1.0
    path = save_npz(wide, tmp_path / "wide.npz")
    # A third of the values outside the box: more than a run clips unless told to, from a file or from memory.
    for given in (None, wide):
        with pytest.raises(NppacError, match=r"\(max \|a\| = 1.5; 33.3% of 120\), more than the 10% that "
                                             r"learning clips"):
            DemoSource(TrainConfig(algo="nppac", demos=str(path), **TINY), given).get()
    with caplog.at_level("INFO", logger="nppac.data.validate"):
        loaded = DemoSource(TrainConfig(algo="nppac", demos=str(path), max_clipped_actions=1.0, **TINY), None).get()
    actions = np.concatenate([t.actions for t in loaded])
    np.testing.assert_allclose(actions, np.clip(np.concatenate([t.actions for t in wide]), -1, 1))
    (record,) = [r for r in caplog.records if "clipped" in r.getMessage()]
    assert record.levelname == "WARNING" and "33.3% of 120" in record.getMessage()


def test_a_config_naming_the_runs_own_prior_loads_it_there_or_fits_it_there_when_missing(tmp_path):
    from nppac.training.setup import DemoSource, resolve_prior

    out = tmp_path / "run"
    out.mkdir()
    cfg = TrainConfig(algo="nppac", prior=str(out / "prior"), prior_iters=3, **TINY).resolved()
    demos = DemoSource(cfg, tiny_demos())
    fitted = resolve_prior(cfg, out, None, demos, progress=False)
    assert (out / "prior" / "settings.json").is_file()
    loaded = resolve_prior(cfg, out, None, demos, progress=False)
    states = torch.as_tensor(tiny_demos().states[:5])
    for a, b in zip(loaded.predict(states), fitted.predict(states)):
        torch.testing.assert_close(a, b)
