import json
import subprocess
import sys

import numpy as np
import pytest

from nppac.cli import main
from nppac.errors import NppacError
from nppac.tasks import get_task, list_tasks
from tests.conftest import run_cli

TASK_NAMES = [t.name for t in list_tasks()]


@pytest.mark.parametrize("name", TASK_NAMES)
def test_task_builds_resets_deterministically_and_steps(name):
    task = get_task(name)
    env_a, env_b = task.make_env(), task.make_env()
    obs_a, _ = env_a.reset(seed=123)
    obs_b, _ = env_b.reset(seed=123)
    obs_c, _ = env_b.reset(seed=124)
    assert obs_a.shape == (task.obs_dim,)
    np.testing.assert_array_equal(obs_a, obs_b)
    assert not np.array_equal(obs_a, obs_c)
    assert env_a.action_space.shape == (task.act_dim,)
    np.testing.assert_array_equal(env_a.action_space.low, -1.0)
    np.testing.assert_array_equal(env_a.action_space.high, 1.0)
    obs, reward, terminated, truncated, info = env_a.step(np.zeros(task.act_dim, dtype=np.float32))
    assert obs.shape == (task.obs_dim,)
    assert np.isfinite(reward)
    assert env_a.spec.max_episode_steps == task.horizon


@pytest.mark.parametrize("name", [n for n in TASK_NAMES if get_task(n).reward == "binary"])
def test_binary_reward_follows_success_flag(name):
    task = get_task(name)
    env = task.make_env(seed=0)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(30):
        _, reward, _, _, info = env.step(rng.uniform(-1, 1, task.act_dim).astype(np.float32))
        assert reward == (0.0 if info["success"] else -1.0)


def test_binary_reward_is_zero_when_success(monkeypatch):
    """Force the success flag on to see the 0 branch (random actions rarely succeed)."""
    task = get_task("door-binary")
    env = task.make_env(seed=0)
    inner = env.env
    original = inner.step

    def succeeded(action):
        obs, r, term, trunc, info = original(action)
        return obs, r, term, trunc, {**info, "success": True}

    monkeypatch.setattr(inner, "step", succeeded)
    _, reward, _, _, info = env.step(np.zeros(task.act_dim, dtype=np.float32))
    assert reward == 0.0 and "dense_reward" in info


def test_episode_success_convention():
    door, pen = get_task("door-binary"), get_task("pen-binary")
    assert door.episode_success([True] * 26 + [False] * 174)
    assert not door.episode_success([True] * 25 + [False] * 175)
    assert pen.episode_success([True] * 21)
    assert not pen.episode_success([True] * 20)


def test_unknown_task_is_a_user_error():
    with pytest.raises(NppacError, match="unknown task 'nope'"):
        get_task("nope")


def test_ant_has_no_contact_forces():
    assert get_task("ant").obs_dim == 27


def test_cli_tasks_json_lists_eight_tasks():
    proc = run_cli("tasks", "--json", check=True)
    rows = json.loads(proc.stdout)
    assert [r["name"] for r in rows] == TASK_NAMES and len(rows) == 8
    for r in rows:
        assert set(r) == {"name", "env_id", "obs_dim", "act_dim", "horizon", "reward"}
        assert r["reward"] in ("dense", "binary")


def test_cli_unknown_option_exits_2():
    proc = run_cli("tasks", "--bogus")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: No such option: --bogus (see 'nppac tasks --help')"]


def test_cli_tasks_table_piped_keeps_every_name_whole(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["tasks"])  # captured: stdout is not a terminal, as in `nppac tasks | grep door`
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for task in list_tasks():
        row = next(line for line in out.splitlines() if f" {task.name} " in line)
        assert task.env_id in row and task.defaults.actor in row
    assert "…" not in out


def test_envs_are_built_without_third_party_notices():
    """MuJoCo's settotalmass warning (HalfCheetah's model file) and gymnasium-robotics' import notice stay away."""
    code = ("from nppac.tasks import get_task\n"
            "for name in ('halfcheetah', 'door-binary'):\n"
            "    get_task(name).make_env(seed=0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def hinge_at(env, angle: float) -> None:
    inner = env.unwrapped
    qpos = inner.data.qpos.copy()
    qpos[inner.door_hinge_addrs] = angle
    inner.set_state(qpos, inner.data.qvel.copy())


def pen_on_target(env) -> None:
    inner = env.unwrapped
    inner.model.body_quat[inner.target_obj_body_id] = inner.data.xquat[inner.obj_body_id]


def ball_on_target(env) -> None:
    inner = env.unwrapped
    inner.model.site_pos[inner.target_obj_site_id] = inner.data.xpos[inner.obj_body_id]


@pytest.mark.parametrize("name, force", [
    ("door-binary", lambda env, k: hinge_at(env, [0.0, 1.30, 1.34, 1.36, 1.5][k])),
    ("pen-binary", lambda env, k: pen_on_target(env) if k % 2 else None),
    ("relocate-binary", lambda env, k: ball_on_target(env) if k % 2 else None),
])
def test_success_from_obs_is_the_environments_success(name, force):
    """The predicate on the observation after a step equals the env's info["success"] for that step."""
    task = get_task(name)
    env = task.make_env()
    rng = np.random.default_rng(0)
    flags, predicted = [], []
    for k in range(5):
        env.reset(seed=k)
        force(env, k)
        for _ in range(8):
            obs, _, _, _, info = env.step(rng.uniform(-0.1, 0.1, task.act_dim).astype(np.float32))
            flags.append(bool(info["success"]))
            predicted.append(bool(task.success_from_obs.holds(obs[None])[0]))
    assert predicted == flags
    assert 0 < sum(flags) < len(flags)  # both branches were checked


def test_hammer_has_no_success_predicate_on_observations():
    # Its goal (the nail driven to the board's "nail_goal" site) is not in the observation.
    assert get_task("hammer-binary").success_from_obs is None
    assert all(t.success_from_obs is None for t in list_tasks() if t.reward == "dense")
