import csv
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from nppac.agents import Actor, load_actor, save_actor
from nppac.data import load_npz
from nppac.errors import NppacError
from nppac.tasks import get_task, list_tasks
from nppac.training import loop
from nppac.training.envs import Evaluation
from nppac.training.experts import (
    bundled_expert_path,
    collect_demos,
    evaluate_expert,
    expert_config,
    export_expert,
    load_expert,
    train_expert,
)
from tests.conftest import run_cli

LOCOMOTION = [t.name for t in list_tasks() if t.family == "locomotion"]
TINY_TRAINING = ["--set", "steps_per_epoch=200", "--set", "updates_per_epoch=50", "--set", "warmup_steps=200",
                 "--set", "eval_episodes=1", "--set", "horizon=50", "--set", "batch_size=32",
                 "--set", "actor_hidden=16,16", "--set", "critic_hidden=16,16", "--set", "num_threads=1"]


def random_actor(task: str, seed: int = 0) -> Actor:
    """A random-init actor standing in for an expert (a random hopper falls within ~50 steps)."""
    spec = get_task(task)
    torch.manual_seed(seed)
    return Actor(spec.obs_dim, spec.act_dim, (32, 32), "tanh_gaussian").eval()


@pytest.fixture
def hopper_file(tmp_path):
    path = tmp_path / "hopper.safetensors"
    save_actor(random_actor("hopper"), path)
    return path


def test_collect_is_deterministic_under_a_seed_and_differs_across_seeds():
    actor = random_actor("hopper")
    a = collect_demos(actor, "hopper", episodes=2, seed=7)
    b = collect_demos(actor, "hopper", episodes=2, seed=7)
    c = collect_demos(actor, "hopper", episodes=2, seed=8)
    for x, y in zip(a.flat().values(), b.flat().values()):
        np.testing.assert_array_equal(x, y)
    assert a.meta == b.meta
    assert a.flat()["observations"][0].tolist() != c.flat()["observations"][0].tolist()
    assert a.meta["returns"] != c.meta["returns"]


def test_actions_are_clipped_expert_actions_plus_gaussian_noise():
    actor, sigma = random_actor("halfcheetah"), 0.15
    demos = collect_demos(actor, "halfcheetah", episodes=1, action_noise=sigma, seed=0, horizon=400)
    actions = demos.actions
    assert actions.min() >= -1.0 and actions.max() <= 1.0
    mean = actor.act(demos.states)
    inside = np.abs(actions) < 1.0
    z = (actions - mean)[inside] / sigma
    assert inside.mean() > 0.9
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1.0) < 0.05  # 400 × 6 draws of N(0, 1)
    clean = collect_demos(actor, "halfcheetah", episodes=1, action_noise=0.0, seed=0, horizon=50)
    np.testing.assert_allclose(clean.actions, actor.act(clean.states), atol=1e-6)  # batched vs one-row matmul


def test_transitions_are_the_environment_s():
    """Replaying each recorded (s, a) through Hopper's simulator gives the recorded s′ and r."""
    demos = collect_demos(random_actor("hopper"), "hopper", episodes=2, seed=3)
    env = get_task("hopper").make_env(seed=0)
    sim = env.unwrapped
    for traj in demos:
        assert traj.terminals[-1] and not traj.terminals[:-1].any() and not traj.timeouts.any()  # it fell
        np.testing.assert_array_equal(traj.observations[1:], traj.next_observations[:-1])
        for obs, action, reward, next_obs in zip(traj.observations, traj.actions, traj.rewards,
                                                 traj.next_observations):
            # Hopper observes qpos without the x coordinate, then qvel; x changes neither dynamics nor reward.
            sim.set_state(np.concatenate([[0.0], obs[:5]]).astype(np.float64), obs[5:].astype(np.float64))
            replayed, r, *_ = env.step(action)
            np.testing.assert_allclose(replayed, next_obs, atol=1e-5)
            assert r == pytest.approx(reward, abs=1e-5)
    assert demos.meta["returns"] == pytest.approx([float(t.rewards.sum()) for t in demos])


def test_horizon_cuts_episodes_as_timeouts_and_evaluation_matches_noiseless_collection():
    actor = random_actor("halfcheetah")
    demos = collect_demos(actor, "halfcheetah", episodes=2, action_noise=0.0, seed=5, horizon=30)
    for traj in demos:
        assert len(traj) == 30 and traj.timeouts[-1] and traj.timeouts.sum() == 1 and not traj.terminals.any()
    stats = evaluate_expert(actor, "halfcheetah", episodes=2, seed=5, horizon=30)
    assert stats["returns"] == demos.meta["returns"] and stats["lengths"] == [30, 30]
    assert stats["return_mean"] == pytest.approx(np.mean(demos.meta["returns"]))
    assert stats["return_std"] == pytest.approx(np.std(demos.meta["returns"]))
    assert stats["return_min"] == min(stats["returns"]) and stats["return_max"] == max(stats["returns"])


def test_expert_must_fit_the_task(hopper_file):
    with pytest.raises(NppacError, match="obs_dim=11.*halfcheetah"):
        load_expert(str(hopper_file), "halfcheetah")
    with pytest.raises(NppacError, match="expert not found"):
        load_expert(str(hopper_file.with_name("missing.safetensors")), "hopper")


def test_cli_collect_writes_what_data_inspect_reads_back(hopper_file, tmp_path):
    out = tmp_path / "demos.npz"
    args = ["--task", "hopper", "--expert", str(hopper_file), "--episodes", "3", "--seed", "1", "--quiet"]
    collected = json.loads(run_cli("demos", "collect", *args, "--out", str(out), "--json", check=True).stdout)
    inspected = json.loads(run_cli("data", "inspect", str(out), "--task", "hopper", "--json", check=True).stdout)
    for key, value in inspected.items():
        assert collected[key] == value, key
    demos = load_npz(out)
    assert demos.meta["expert"] == str(hopper_file)
    assert (demos.meta["action_noise"], demos.meta["seed"]) == (0.15, 1)
    assert np.mean(demos.meta["returns"]) == pytest.approx(inspected["return_mean"], rel=1e-6)
    in_process = collect_demos(load_expert(str(hopper_file), "hopper"), "hopper", episodes=3, seed=1)
    assert inspected["n_transitions"] == in_process.n_transitions
    np.testing.assert_allclose(demos.actions, in_process.actions, atol=1e-6)


def test_cli_evaluate_json(hopper_file):
    proc = run_cli("expert", "evaluate", "--task", "hopper", "--expert", str(hopper_file), "--episodes", "2",
                   "--seed", "4", "--json", check=True)
    stats = json.loads(proc.stdout)
    expected = evaluate_expert(load_actor(hopper_file), "hopper", episodes=2, seed=4)
    assert stats["expert"] == str(hopper_file) and stats["episodes"] == 2
    assert stats["returns"] == pytest.approx(expected["returns"], rel=1e-5)
    for key in ("return_mean", "return_std", "return_min", "return_max"):
        assert stats[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6)


def test_missing_bundled_expert_is_a_one_line_exit_2(tmp_path):
    missing = next((t.name for t in list_tasks() if bundled_expert_path(t.name) is None), None)
    if missing is None:
        pytest.skip("every task has a bundled expert")
    for args in (["expert", "evaluate", "--task", missing],
                 ["demos", "collect", "--task", missing, "--out", str(tmp_path / "d.npz")]):
        proc = run_cli(*args)
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "no bundled expert" in lines[0] and "nppac expert train" in lines[0]
        assert proc.stdout == ""


def test_expert_config_is_sac_with_automatic_entropy_temperature():
    cfg = expert_config("walker2d", steps=5000).resolved()
    assert (cfg.algo, cfg.auto_alpha, cfg.target_entropy, cfg.steps) == ("sac", True, -6.0, 5000)
    with pytest.raises(NppacError, match="algo 'sac'"):
        expert_config("hopper", overrides=["algo=nppac"])


def test_cli_train_exports_the_best_expert_and_export_harvests_the_run(tmp_path):
    run = tmp_path / "run"
    proc = run_cli("expert", "train", "--task", "hopper", "--steps", "400", "--out", str(run), "--quiet",
                   *TINY_TRAINING, "--json", check=True)
    summary = json.loads(proc.stdout)
    meta = json.loads((run / "expert.json").read_text())
    with (run / "progress.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["phase"] == "online"]  # the untrained step-0 policy is no expert
    returns = [float(r["eval_return"]) for r in rows]
    assert summary["expert"] == str(run / "expert.safetensors") and summary["env_steps"] == 400
    assert meta["task"] == "hopper" and meta["eval_return"] == max(returns)
    assert meta["epoch"] == 1 + int(np.argmax(returns)) and meta["env_steps"] == 200 * meta["epoch"]
    assert meta["run_steps"] == 400

    actor = load_expert(str(run), "hopper")
    obs, _ = get_task("hopper").make_env(seed=0).reset(seed=0)
    action = actor.act(np.stack([obs, 10 * obs]))
    assert action.shape == (2, 3) and np.all(np.abs(action) <= 1.0)

    harvested = tmp_path / "latest.safetensors"
    exported = json.loads(run_cli("expert", "export", "--run", str(run), "--out", str(harvested), "--json",
                                  check=True).stdout)
    assert (exported["epoch"], exported["env_steps"], exported["eval_return"]) == (2, 400, returns[-1])
    final, latest = load_file(run / "actor.safetensors"), load_file(harvested)
    assert all(torch.equal(final[k], latest[k]) for k in final)
    assert json.loads(harvested.with_suffix(".json").read_text()) == exported

    resumed = run_cli("expert", "train", "--out", str(run), "--resume", "--quiet", "--json", check=True)
    assert json.loads(resumed.stdout)["rows_this_call"] == 0
    assert json.loads((run / "expert.json").read_text()) == meta
    extended = json.loads(run_cli("expert", "train", "--out", str(run), "--resume", "--steps", "600", "--quiet",
                                  "--json", check=True).stdout)
    assert (extended["rows_this_call"], extended["env_steps"]) == (1, 600)
    shrink = run_cli("expert", "train", "--out", str(run), "--resume", "--steps", "400", "--quiet")
    assert shrink.returncode == 2 and len(shrink.stderr.strip().splitlines()) == 1 and "at least" in shrink.stderr


def test_train_keeps_the_best_evaluated_actor_not_the_last(tmp_path, monkeypatch):
    scripted = iter([9.0, 5.0, 1.0, 3.0])  # the untrained step-0 policy scores best and is still no expert
    monkeypatch.setattr(loop, "evaluate", lambda *args, **kwargs: Evaluation([next(scripted)], None))
    overrides = [s for s in TINY_TRAINING if s != "--set"]
    summary = train_expert(expert_config("hopper", steps=600, overrides=overrides), tmp_path / "run", progress=False)
    meta = json.loads((tmp_path / "run" / "expert.json").read_text())
    assert (meta["epoch"], meta["env_steps"], meta["eval_return"]) == (1, 200, 5.0)
    assert summary["expert_eval_return"] == 5.0 and summary["final_eval_return"] == 3.0
    best, last = load_file(tmp_path / "run" / "expert.safetensors"), load_file(tmp_path / "run" / "actor.safetensors")
    assert not all(torch.equal(best[k], last[k]) for k in best)


def test_a_run_that_is_no_experts_or_does_not_fit_its_checkpoint_is_refused(tmp_path):
    from nppac.diagnostics.evaluation import evaluate_policy
    from nppac.training import TrainConfig, train

    overrides = [s for s in TINY_TRAINING if s != "--set"]
    run = tmp_path / "run"
    train(TrainConfig(task="hopper", algo="sac", steps=200).with_overrides(overrides), run, progress=False)
    # A cut eval_return is no number: the export records none.
    progress = run / "progress.csv"
    lines = progress.read_text().splitlines()
    column = lines[0].split(",").index("eval_return")
    last = lines[-1].split(",")
    last[column] = ""
    progress.write_text("\n".join([*lines[:-1], ",".join(last)]) + "\n")
    assert export_expert(run, tmp_path / "e.safetensors")["eval_return"] is None
    config = json.loads((run / "config.json").read_text())
    TrainConfig(task="hopper", algo="bc", steps=200).save(run / "config.json")
    with pytest.raises(NppacError, match="is a bc run, not an expert's \\(sac\\)"):
        train_expert(None, run, resume=True, steps=400, progress=False)
    (run / "config.json").write_text(json.dumps({**config, "actor_hidden": [64, 64]}))
    (run / "actor.safetensors").unlink()  # evaluated from its checkpoint, as a run still training is
    for read in (lambda: export_expert(run, tmp_path / "f.safetensors"), lambda: evaluate_policy(run, n_episodes=1)):
        with pytest.raises(NppacError, match="checkpoint .*checkpoint.pt does not fit the run's config.json"):
            read()
    assert not (tmp_path / "f.safetensors").exists()


def test_export_needs_a_run_with_a_checkpoint(tmp_path):
    with pytest.raises(NppacError, match="not a training run"):
        export_expert(tmp_path, tmp_path / "x.safetensors")


@pytest.mark.parametrize("task", LOCOMOTION)
def test_bundled_expert_loads_and_acts_within_bounds(task):
    path = bundled_expert_path(task)
    if path is None:
        pytest.skip(f"no bundled expert for {task}")
    actor = load_expert("bundled", task)
    info = json.loads(path.with_suffix(".json").read_text())
    assert info["task"] == task and info["env_steps"] > 0 and np.isfinite(info["eval_return"])
    obs, _ = get_task(task).make_env(seed=0).reset(seed=0)
    action = actor.act(obs)
    assert action.shape == (get_task(task).act_dim,) and np.all(np.abs(action) <= 1.0)


@pytest.mark.parametrize("task", LOCOMOTION)
def test_bundled_demos_load_validate_and_match_their_recorded_returns(task):
    path = get_task(task).bundled_demos
    if path is None:
        pytest.skip(f"no bundled demonstrations for {task}")
    demos = load_npz(path, task=task)
    recorded = np.asarray(demos.meta["returns"])
    assert len(recorded) == len(demos)
    assert recorded.min() <= demos.returns.mean() <= recorded.max()
    np.testing.assert_allclose(demos.returns, recorded, rtol=1e-4, atol=1e-3)
    assert demos.actions.min() >= -1.0 and demos.actions.max() <= 1.0
    expert = bundled_expert_path(task)
    if expert is not None and "eval_10" in (info := json.loads(expert.with_suffix(".json").read_text())):
        # Noise of std 0.15 costs return (the noisy hopper falls in about half its episodes),
        # but the set must still be the expert's behaviour (docs/experts.md).
        expert_return = info["eval_10"]["return_mean"]
        assert 0.4 * expert_return <= demos.returns.mean() <= 1.2 * expert_return
