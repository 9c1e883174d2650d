"""``nppac evaluate`` and ``nppac.evaluate_policy``: a trained run's final actor on the run's own evaluation
protocol, checked against the rows the run logged and against episodes recomputed one after another."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from scipy import stats

import nppac
from nppac.agents.networks import Actor, load_actor
from nppac.diagnostics.evaluation import wilson_interval
from nppac.errors import NppacError
from nppac.tasks import get_task, register_task
from nppac.training import TrainConfig, train
from nppac.training.experts import evaluate_expert
from tests.builders import nppac_in_process, tiny

EPISODES = 2
"""Evaluation episodes per row of the tiny run: its three rows (step 0 and two epochs) read 6 episodes."""
SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evaluate") / "run"
    train(TrainConfig(algo="sac", seed=4, **tiny("sac", eval_episodes=EPISODES)), out, progress=False)
    return out


def _rows(run: Path) -> list[dict[str, str]]:
    with (run / "progress.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _one_after_another(actor: Actor, task: str, seed: int, episodes: int, horizon: int) -> tuple[list, list]:
    """Returns and per-episode success of the mean action, episode after episode of one seeded environment."""
    spec = get_task(task)
    env = gym.wrappers.TimeLimit(spec.make_env(seed=seed), max_episode_steps=horizon)
    returns, successes = [], []
    for _ in range(episodes):
        obs, _ = env.reset()
        total, flags = 0.0, []
        for _ in range(horizon):
            obs, reward, terminated, truncated, info = env.step(actor.act(obs))
            total += float(reward)
            flags.append(bool(info.get("success", False)))
            if terminated or truncated:
                break
        returns.append(total)
        successes.append(sum(flags) > (spec.success_steps or 0))
    return returns, successes


def test_a_run_evaluates_to_the_episodes_its_own_evaluations_logged(run):
    result = nppac.evaluate_policy(run, n_episodes=3 * EPISODES)
    rows = _rows(run)
    assert len(rows) == 3 and (result.task, result.seed, result.horizon) == ("halfcheetah", 4 + 10_000, 60)
    # The run's evaluation environment carries one stream across its rows: its last row's episodes are the 5th and
    # 6th of the stream, and the final actor is the one that row evaluated.
    last = result.returns[2 * EPISODES:]
    assert np.mean(last) == pytest.approx(float(rows[-1]["eval_return"]), abs=1e-5)
    assert min(last) == pytest.approx(float(rows[-1]["eval_return_min"]), abs=1e-5)
    returns, _ = _one_after_another(load_actor(run / "actor.safetensors"), "halfcheetah", result.seed, 6, 60)
    np.testing.assert_allclose(result.returns, returns, rtol=1e-5, atol=1e-5)  # one batched forward
    mean, half = np.mean(result.returns), stats.t.ppf(0.975, 5) * np.std(result.returns, ddof=1) / np.sqrt(6)
    assert result.successes is None and result.success_rate is None
    assert result.mean == result.mean_return == mean and result.interval == pytest.approx((mean - half, mean + half))
    assert result.interval[0] < result.mean < result.interval[1]
    assert result.worst_episode == int(np.argmin(returns)) and result.worst_return == min(result.returns)
    assert result.policy == str(run / "actor.safetensors")


def test_a_model_evaluates_as_its_run_and_an_actor_needs_a_task(run):
    by_path = nppac.evaluate_policy(run)
    assert by_path.episodes == EPISODES
    by_model = nppac.evaluate_policy(nppac.Model.load(run))
    assert by_model.returns == by_path.returns and by_model.interval == by_path.interval
    with pytest.raises(NppacError, match="task="):
        nppac.evaluate_policy(load_actor(run / "actor.safetensors"))


def test_a_run_without_its_final_actor_evaluates_its_latest_checkpoint(run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "actor.safetensors").unlink()
    result = nppac.evaluate_policy(copy)
    assert result.returns == nppac.evaluate_policy(run).returns and "checkpoint at 300 env steps" in result.policy


class Threshold(gym.Env):
    """A binary task: the observation x ~ U(−1, 1), drawn at a reset; the goal holds while the action exceeds x."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.x = np.zeros(1, np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = self.np_random.uniform(-1, 1, 1).astype(np.float32)
        return self.x, {}

    def step(self, action):
        return self.x, 0.0, False, False, {"success": bool(action[0] > self.x[0])}


def test_a_success_rate_has_wilson_s_interval_inside_0_1():
    register_task("threshold", Threshold, reward="binary", horizon=5, success_steps=2)
    actor = Actor(1, 1, (8, 8), "gaussian_tanh_mean")
    result = nppac.evaluate_policy(actor, task="threshold", n_episodes=20, seed=3)
    returns, successes = _one_after_another(actor, "threshold", 3, 20, 5)
    assert result.returns == returns and result.successes == successes
    k, n, z = sum(successes), 20, stats.norm.ppf(0.975)
    assert 0 < k < n  # both outcomes occur: the rate is not a boundary case
    p = k / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (
        1 + z * z / n)
    assert result.success_rate == result.mean == p
    assert result.interval == pytest.approx((centre - half, centre + half))
    assert result.worst_episode == int(np.argmin(returns))
    for k in (0, 7, 20):
        lo, hi = wilson_interval(k, 20)
        assert 0 <= lo <= k / 20 <= hi <= 1 and lo < hi


def test_cli_prints_the_python_numbers_and_refuses_a_folder_that_is_not_a_run(run, monkeypatch, capsys, tmp_path):
    code, out, _ = nppac_in_process(monkeypatch, capsys, "evaluate", str(run), "--episodes", "3", "--json")
    assert code == 0
    printed, expected = json.loads(out), nppac.evaluate_policy(run, n_episodes=3)
    assert printed["returns"] == expected.returns and printed["interval"] == list(expected.interval)
    assert printed["worst_episode"] == expected.worst_episode and printed["mean"] == expected.mean
    code, out, _ = nppac_in_process(monkeypatch, capsys, "evaluate", str(run), "--episodes", "3", "--seed", "7")
    assert code == 0 and out.startswith("halfcheetah: mean return") and "worst episode" in out and "seed 7" in out
    for bad in (tmp_path, tmp_path / "missing"):
        code, out, err = nppac_in_process(monkeypatch, capsys, "evaluate", str(bad))
        assert code == 2 and out == "" and err.count("\n") == 1 and "no config.json" in err


def test_expert_evaluate_takes_a_training_run_directory_and_its_task(run, monkeypatch, capsys):
    code, out, err = nppac_in_process(monkeypatch, capsys, "expert", "evaluate", "--expert", str(run), "--episodes",
                                      "2", "--seed", "1", "--horizon", "30", "--json", "--quiet")
    assert code == 0, err
    expected = evaluate_expert(load_actor(run / "actor.safetensors"), "halfcheetah", 2, seed=1, horizon=30)
    assert json.loads(out)["returns"] == pytest.approx(expected["returns"], rel=1e-6)


def _nppac_subprocess(*args: str, path: str = SRC, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nppac", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": path, **env})


def test_video_without_a_renderer_is_one_line_naming_what_to_set(run, tmp_path):
    proc = _nppac_subprocess("evaluate", str(run), "--video", str(tmp_path / "v.mp4"), MUJOCO_GL="invalid")
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "MUJOCO_GL=egl" in lines[0] and "osmesa" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_video_without_moviepy_is_one_line_naming_the_package(run, tmp_path, monkeypatch, capsys):
    class Rendering:
        def render(self):
            return np.zeros((4, 4, 3), np.uint8)

        def close(self):
            pass

    monkeypatch.setattr("nppac.training.envs.make_env", lambda *args, **kwargs: Rendering())
    monkeypatch.setitem(sys.modules, "moviepy", None)
    code, out, err = nppac_in_process(monkeypatch, capsys, "evaluate", str(run), "--video", str(tmp_path / "v.mp4"))
    assert code == 2 and out == "" and err.count("\n") == 1 and "pip install moviepy" in err
    assert list(tmp_path.iterdir()) == []


FAKE_MOVIEPY = """
import json


class ImageSequenceClip:
    def __init__(self, frames, fps):
        self.frames, self.fps = frames, fps

    def write_videofile(self, path, logger=None):
        with open(path, "w") as f:
            json.dump({"frames": len(self.frames), "shape": list(self.frames[0].shape)}, f)
"""


def test_video_records_the_worst_episode_through_gymnasium_s_recorder(run, tmp_path):
    """moviepy stands in as a module that writes what it was given, so the frames can be counted."""
    fake = tmp_path / "fake"
    (fake / "moviepy" / "video" / "io").mkdir(parents=True)
    for folder in ("moviepy", "moviepy/video", "moviepy/video/io"):
        (fake / folder / "__init__.py").write_text("")
    (fake / "moviepy/video/io/ImageSequenceClip.py").write_text(textwrap.dedent(FAKE_MOVIEPY))
    video = tmp_path / "worst.mp4"
    proc = _nppac_subprocess("evaluate", str(run), "--episodes", "3", "--video", str(video), "--json",
                             path=f"{fake}{os.pathsep}{SRC}", MUJOCO_GL="egl")
    if proc.returncode == 2 and "cannot render" in proc.stderr:
        pytest.skip(f"no EGL renderer here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["video"] == str(video) and result["worst_episode"] == int(np.argmin(result["returns"]))
    written = json.loads(video.read_text())
    assert written["frames"] == 1 + 60 and written["shape"][2] == 3  # the reset's frame and one per step
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake", "worst.mp4"]
