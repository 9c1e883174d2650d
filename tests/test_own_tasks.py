"""Your own task and your own data: an environment of this module's own, registered with gymnasium, its
demonstrations given as arrays, and N-PPAC trained on it through the API, the CLI and a suite."""

from __future__ import annotations

import csv
import json
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch

import nppac
import nppac.tasks as tasks
from nppac.data import Demonstrations, inspect_demos, load_demos
from nppac.errors import NppacError
from nppac.tasks import OWN, get_task, register_task
from tests.builders import nppac_in_process

ENV_ID = "NppacTestReach-v0"
HORIZON = 40
TINY = dict(steps_per_epoch=150, updates_per_epoch=30, warmup_steps=150, eval_episodes=1, batch_size=32,
            actor_hidden=(32, 32), critic_hidden=(32, 32), init_epochs=2, prior_iters=3, num_threads=1)
TINY_SETS = [a for k, v in TINY.items()
             for a in ("--set", f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}")]


class Reach(gym.Env):
    """A point steered toward a goal in the plane: observation (x, y, goal x, goal y), action a velocity in
    [−2, 2]² (not the [−1, 1] nppac acts in), reward −distance. Random numbers are drawn at a reset only."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
        self.action_space = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
        self.position, self.goal = np.zeros(2), np.zeros(2)

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.position, self.goal]).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = self.np_random.uniform(-1, 1, 2)
        self.goal = self.np_random.uniform(-1, 1, 2)
        return self._obs(), {}

    def step(self, action):
        self.position = self.position + 0.05 * np.clip(action, -2.0, 2.0)
        return self._obs(), -float(np.linalg.norm(self.position - self.goal)), False, False, {}


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=Reach, max_episode_steps=HORIZON)


def reach_task() -> tasks.Task:
    """``tests.test_own_tasks:reach_task``: the environment as a task of its own name and settings."""
    return register_task("reach", ENV_ID, eval_episodes=2, actor_hidden=(32, 32), batch_size=32)


def expert_arrays(episodes: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """Flat D4RL arrays of an expert steering at the goal, its actions in the environment's units ([−2, 2])."""
    env = gym.make(ENV_ID)
    columns: dict[str, list] = {"observations": [], "actions": [], "rewards": [], "timeouts": [],
                                "next_observations": []}
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        for _ in range(HORIZON):
            action = np.clip(5.0 * (obs[2:] - obs[:2]), -2.0, 2.0).astype(np.float32)
            nxt, reward, _, truncated, _ = env.step(action)
            for key, value in zip(columns, (obs, action, reward, truncated, nxt)):
                columns[key].append(value)
            obs = nxt
    arrays = {k: np.asarray(v) for k, v in columns.items()}
    arrays["terminals"] = np.zeros(len(arrays["actions"]), bool)
    return arrays


@pytest.fixture(autouse=True)
def own_registry():
    """Each test registers and resolves tasks of its own: the registry is as it was afterwards."""
    registered, resolved = dict(tasks._TASKS), dict(tasks._RESOLVED)
    yield
    tasks._TASKS.clear()
    tasks._TASKS.update(registered)
    tasks._RESOLVED.clear()
    tasks._RESOLVED.update(resolved)


def rows(run) -> list[dict[str, str]]:
    with (run / "progress.csv").open() as f:
        return list(csv.DictReader(f))


def test_a_gymnasium_id_is_a_task_acting_in_the_unit_box():
    task = get_task(ENV_ID)
    assert (task.name, task.obs_dim, task.act_dim, task.horizon, task.reward) == (ENV_ID, 4, 2, HORIZON, "dense")
    assert task.defaults == OWN and task.eval_episodes == 5000 // HORIZON and task.bundled_demos is None
    env = task.make_env(seed=3)
    np.testing.assert_array_equal(env.action_space.low, -1.0)
    obs, _ = env.reset(seed=3)
    nxt, *_ = env.step(np.array([1.0, -0.5], np.float32))  # the environment's 2.0, -1.0
    np.testing.assert_allclose(nxt[:2] - obs[:2], [0.1, -0.05], atol=1e-6)
    assert get_task(ENV_ID) is task  # made once
    assert ENV_ID not in [t.name for t in tasks.list_tasks()]  # named, not registered
    assert get_task("HalfCheetah-v5").obs_dim == 17  # `nppac tasks` prints it; it is a task too


def test_register_task_with_its_own_settings_and_demonstrations(tmp_path):
    path = tmp_path / "reach.npz"
    np.savez(path, **expert_arrays(episodes=1))
    task = register_task("reach", lambda: Reach(), horizon=20, eval_episodes=3, demos=path, kernel="matern52",
                         actor_hidden=[64], batch_size=8)
    assert get_task("reach") is task and task in tasks.list_tasks()
    assert (task.horizon, task.eval_episodes, task.bundled_demos) == (20, 3, path)
    assert (task.defaults.kernel, task.defaults.actor_hidden, task.defaults.batch_size) == ("matern52", (64,), 8)
    assert task.env_id.endswith("test_register_task_with_its_own_settings_and_demonstrations.<locals>.<lambda>")
    env = task.make_env(seed=0)
    env.reset(seed=0)
    steps = 0
    while not env.step(np.zeros(2, np.float32))[3]:
        steps += 1
    assert steps + 1 == 20  # the factory's environment, capped at the task's horizon
    config = nppac.NPPAC("reach").config.resolved()
    assert (config.prior_kernel, config.actor_hidden, config.batch_size, config.eval_episodes) == \
        ("matern52", (64,), 8, 3)


class Discrete(Reach):
    def __init__(self) -> None:
        super().__init__()
        self.action_space = gym.spaces.Discrete(3)


class Unbounded(Reach):
    def __init__(self) -> None:
        super().__init__()
        self.action_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)


class DictObservations(Reach):
    def __init__(self) -> None:
        super().__init__()
        self.observation_space = gym.spaces.Dict({"x": gym.spaces.Box(-1, 1, (2,))})


@pytest.mark.parametrize("env, kwargs, message", [
    (Discrete, {"horizon": 5}, "action space Discrete(3) is discrete"),
    (Unbounded, {"horizon": 5}, "is unbounded (infinite low or high)"),
    (DictObservations, {"horizon": 5}, "is not a flat Box; nppac reads an observation as one vector"),
    (Reach, {}, "the environment has no time limit; give the episode length"),
    (Reach, {"horizon": 5, "alpah": 0.1}, "unknown setting(s) alpah; a task's defaults are alpha, kernel"),
    (Reach, {"horizon": 0}, "horizon=0; give a whole number ≥ 1"),
    (Reach, {"horizon": 5, "kernel": "cosine"}, "kernel='cosine'; choose one of: rbf, matern12"),
    ("NoSuchEnv-v0", {}, "'NoSuchEnv-v0' is not a registered gymnasium id"),
])
def test_environments_nppac_cannot_learn_in_are_refused_in_one_line(env, kwargs, message):
    with pytest.raises(NppacError, match="^task 'mine': .*" + message.replace("(", r"\(").replace(")", r"\)")):
        register_task("mine", env, **kwargs)
    assert "mine" not in [t.name for t in tasks.list_tasks()]


@pytest.mark.parametrize("name", [".", ".."])
def test_a_name_that_is_a_folder_of_its_own_is_refused(name):
    with pytest.raises(NppacError, match="not '.' or '..' \\(it names run folders\\)"):
        register_task(name, ENV_ID)
    with pytest.raises(NppacError, match="^task 5: expected a task's name"):
        get_task(5)  # type: ignore[arg-type]


def test_the_papers_names_stay_the_papers():
    with pytest.raises(NppacError, match="'halfcheetah' is one of nppac's own tasks"):
        register_task("halfcheetah", ENV_ID)


def test_the_cli_refuses_a_discrete_gymnasium_task_in_one_line(monkeypatch, capsys, tmp_path):
    code, out, err = nppac_in_process(monkeypatch, capsys, "train", "--task", "CartPole-v1", "--algo", "sac",
                                      "--out", str(tmp_path / "run"))
    assert code == 2 and out == ""
    assert err.splitlines() == ["error: task 'CartPole-v1': action space Discrete(2) is discrete; nppac's policies "
                                "act in a continuous, bounded Box"]


def test_arrays_are_checked_as_a_file_is(tmp_path):
    arrays = expert_arrays(episodes=2)
    demos = Demonstrations.from_arrays(**arrays, task=ENV_ID)
    assert [len(t) for t in demos] == [HORIZON, HORIZON] and demos.format == "arrays" and demos.task == ENV_ID
    assert not demos.trajectories[0].timeouts[:-1].any() and demos.trajectories[0].timeouts[-1]
    # D4RL's keys in a .npz are read as an HDF5 file's are: the same set.
    np.savez(tmp_path / "d4rl.npz", **arrays)
    from_file = load_demos(tmp_path / "d4rl.npz", task=ENV_ID)
    assert from_file.format == "d4rl"
    for a, b in zip(demos, from_file):
        for field in ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    # A NaN, a short field or the wrong dimensions: the message a file gets, naming the source given.
    broken = dict(arrays, actions=arrays["actions"].copy())
    broken["actions"][45, 1] = np.nan
    np.savez(tmp_path / "nan.npz", **broken)
    with pytest.raises(NppacError) as from_arrays_error:
        Demonstrations.from_arrays(**broken, source=str(tmp_path / "nan.npz"))
    with pytest.raises(NppacError) as file_error:
        load_demos(tmp_path / "nan.npz")
    assert str(from_arrays_error.value) == str(file_error.value) == \
        f"{tmp_path / 'nan.npz'}: trajectory 1: field 'actions': has 1 NaN/Inf values (first at step 5) once " \
        "stored as float32; repair or drop those steps"
    with pytest.raises(NppacError, match=r"^<arrays>: field 'rewards': has 79 rows but 'actions' has 80$"):
        Demonstrations.from_arrays(**dict(arrays, rewards=arrays["rewards"][:-1]))
    with pytest.raises(NppacError, match=r"field 'observations': has 3 dims but task 'NppacTestReach-v0' expects 4"):
        Demonstrations.from_arrays(arrays["observations"][:, :3], arrays["actions"], task=ENV_ID)


def test_arrays_in_the_environments_units_are_rescaled_to_the_unit_box(caplog):
    arrays = expert_arrays(episodes=1)
    env = gym.make(ENV_ID)
    demos = Demonstrations.from_arrays(arrays["observations"], arrays["actions"], action_space=env.action_space)
    np.testing.assert_allclose(demos.actions, arrays["actions"] / 2.0, atol=1e-7)
    assert demos.meta["actions_rescaled"] and demos.trajectories[0].rewards.tolist() == [0.0] * HORIZON
    # Given as they are, many actions lie outside [-1, 1]: reported with their share, refused where learning clips.
    raw = Demonstrations.from_arrays(arrays["observations"], arrays["actions"])
    share = float(np.mean(np.abs(arrays["actions"]) > 1.001))
    assert share > 0.1 and "actions should be normalized" in caplog.text
    summary = inspect_demos(raw)
    assert (summary["action_min"], summary["action_max"]) == (arrays["actions"].min(), arrays["actions"].max())
    assert summary["actions_outside"] == np.sum(np.abs(arrays["actions"]) > 1.001)
    assert summary["actions_outside_share"] == pytest.approx(share)
    with pytest.raises(NppacError, match=rf"lie outside \[-1, 1\] \(max \|a\| = 2; {100 * share:.3g}% of 80\), more "
                                         r"than the 10% that learning clips: are they in the environment's own units"):
        nppac.fit_prior(raw, task=ENV_ID)


def test_an_environment_object_and_arrays_train_nppac_through_the_api(tmp_path):
    env = gym.make(ENV_ID)
    arrays = expert_arrays()
    demos = Demonstrations.from_arrays(arrays["observations"], arrays["actions"], arrays["rewards"],
                                       timeouts=arrays["timeouts"], action_space=env.action_space)
    prior = nppac.fit_prior(demos, task=env, iters=3)
    mean, _ = prior.predict(torch.as_tensor(demos.states[:5]))
    assert mean.shape == (5, 2)
    seen = []
    model = nppac.NPPAC(env, prior=prior, demos=demos, seed=0, **TINY).learn(300, tmp_path / "run",
                                                                             callback=seen.append, progress=False)
    assert model.config.task == ENV_ID
    assert [r["env_steps"] for r in seen] == [0, 150, 300] and all(np.isfinite(r["eval_return"]) for r in seen)
    assert model.predict(np.zeros(4, np.float32))[0].shape == (2,)
    references = json.loads((tmp_path / "run" / "references.json").read_text())
    assert references["demos"]["return"] == pytest.approx(float(np.mean(demos.returns)))


def test_the_cli_trains_on_a_gymnasium_id_with_d4rl_arrays_and_reruns_from_its_config(tmp_path, monkeypatch,
                                                                                    capsys):
    arrays = expert_arrays()
    arrays["actions"] = arrays["actions"] / 2.0  # normalized, as D4RL's are
    np.savez(tmp_path / "reach.npz", **arrays)
    code, out, err = nppac_in_process(monkeypatch, capsys, "data", "inspect", str(tmp_path / "reach.npz"),
                                      "--task", ENV_ID, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["format"], summary["n_trajectories"], summary["actions_outside"]) == ("d4rl", 4, 0)
    assert summary["action_max"] == pytest.approx(1.0)
    code, _, err = nppac_in_process(monkeypatch, capsys, "train", "--task", ENV_ID, "--algo", "nppac", "--demos",
                                    str(tmp_path / "reach.npz"), "--steps", "300", "--out", str(tmp_path / "run"),
                                    "--quiet", *TINY_SETS)
    assert code == 0, err
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["task"] == ENV_ID and config["max_clipped_actions"] == 0.1
    assert [r["env_steps"] for r in rows(tmp_path / "run")] == ["0", "150", "300"]


def test_a_suite_finds_a_task_by_module_and_function(tmp_path):
    from nppac.experiments import LocalRunner, load_suite, run_suite

    arrays = expert_arrays()
    arrays["actions"] = arrays["actions"] / 2.0
    np.savez(tmp_path / "reach.npz", **arrays)
    settings = "\n".join(f"{k} = {list(v) if isinstance(v, tuple) else v}" for k, v in TINY.items())
    (tmp_path / "suite.toml").write_text(textwrap.dedent(f"""
        tasks = ["tests.test_own_tasks:reach_task"]
        algos = ["nppac"]
        seeds = 1
        [settings]
        steps = 300
        demos = "reach.npz"
        {settings}
        [task."tests.test_own_tasks:reach_task"]
        warmup_steps = 150
    """))
    suite = load_suite(tmp_path / "suite.toml")
    (result,) = run_suite(suite, tmp_path / "out", LocalRunner(workers=1), progress=False)
    assert result.outcome == "finished", result.error
    run = tmp_path / "out" / "tests.test_own_tasks:reach_task" / "nppac" / "seed-0"
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "tests.test_own_tasks:reach_task" and config["eval_episodes"] == 1
    assert get_task("tests.test_own_tasks:reach_task") is get_task("reach")
    assert [r["env_steps"] for r in rows(run)] == ["0", "150", "300"]


def test_a_package_lists_its_tasks_as_entry_points(tmp_path, monkeypatch, capsys):
    dist = tmp_path / "reach_tasks-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: reach-tasks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[nppac.tasks]\nreach-installed = tests.test_own_tasks:reach_task\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    task = get_task("reach-installed")
    assert task.name == "reach" and task.eval_episodes == 2
    code, out, _ = nppac_in_process(monkeypatch, capsys, "tasks", "--json")
    assert code == 0 and [r["name"] for r in json.loads(out)][-1] == "reach"


def test_module_function_mistakes_are_named(tmp_path, monkeypatch):
    with pytest.raises(NppacError, match=r"^task 'no_such_module:f': no module named 'no_such_module'"):
        get_task("no_such_module:f")
    with pytest.raises(NppacError, match=r"module tests.test_own_tasks has no 'nothing': neither a function"):
        get_task("tests.test_own_tasks:nothing")
    with pytest.raises(NppacError, match=r"tests.test_own_tasks:expert_arrays returned dict; return the Task"):
        get_task("tests.test_own_tasks:expert_arrays")
    with pytest.raises(NppacError, match=r"^unknown task 'reach2'; choose one of: halfcheetah"):
        get_task("reach2")
