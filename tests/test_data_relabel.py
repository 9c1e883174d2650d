"""Demonstrations loaded for a binary hand task carry its binary reward (nppac.data.relabel)."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest

from nppac.data import inspect_demos, load_demos, load_npz, save_npz
from nppac.data.relabel import FROM_INFOS
from nppac.errors import NppacError
from nppac.tasks import DOOR_OPEN, get_task
from tests.builders import binary_paths, write_pickle


def door_paths(opened_at: list[int | None], steps: int = 40) -> list[dict]:
    """Door-shaped trajectories (39-dim states) with a dense reward; the hinge (obs[28]) passes 1.35 at step k."""
    rng = np.random.default_rng(2)
    paths = []
    for k in opened_at:
        observations = rng.normal(size=(steps, 39)) * 0.1
        observations[:, 28] = 0.0 if k is None else np.where(np.arange(steps) >= k, 1.4, 1.3)
        paths.append({"observations": observations, "actions": rng.uniform(-1, 1, (steps, 28)),
                      "rewards": rng.normal(size=steps) * 5 + 20})
    return paths


def test_door_rewards_follow_the_hinge_of_the_next_observation(tmp_path, caplog):
    path = write_pickle(tmp_path, door_paths([10, None, 39]))
    with caplog.at_level(logging.INFO, logger="nppac.data.relabel"):
        demos = load_demos(path, task="door-binary", allow_pickle=True)
    # After step t the state is observation t + 1: the goal first holds after step k − 1.
    # The last step's successor is unknown in mjrl pickles and repeats the last observation.
    expected = [np.arange(40) >= 9, np.zeros(40, bool), np.arange(40) >= 38]
    for traj, success in zip(demos, expected):
        np.testing.assert_array_equal(traj.rewards, np.where(success, 0.0, -1.0).astype(np.float32))
        np.testing.assert_array_equal(traj.infos["success"], success)
    assert demos.meta["reward_relabelled"] == DOOR_OPEN.description == "door hinge angle ≥ 1.35 rad (obs[28])"
    relabel_lines = [r for r in caplog.records if r.name == "nppac.data.relabel"]
    assert len(relabel_lines) == 1 and "2 of 3 trajectories reach the goal" in relabel_lines[0].getMessage()
    summary = inspect_demos(demos)
    assert summary["reward_relabelled"] == DOOR_OPEN.description
    assert summary["return_mean"] == pytest.approx(-(9 + 40 + 38) / 3)


def test_relabelling_is_kept_through_npz_and_not_repeated(tmp_path):
    demos = load_demos(write_pickle(tmp_path, door_paths([5])), task="door-binary", allow_pickle=True)
    again = load_npz(save_npz(demos, tmp_path / "door.npz"))
    assert again.task == "door-binary" and again.meta["reward_relabelled"] == DOOR_OPEN.description
    np.testing.assert_array_equal(again.trajectories[0].rewards, demos.trajectories[0].rewards)


def test_without_a_task_or_on_a_dense_task_rewards_are_kept(tmp_path):
    paths = door_paths([5])
    demos = load_demos(write_pickle(tmp_path, paths), allow_pickle=True)
    np.testing.assert_array_equal(demos.trajectories[0].rewards, paths[0]["rewards"].astype(np.float32))
    assert "reward_relabelled" not in demos.meta


def test_binary_rewards_are_the_sets_own_labels(tmp_path):
    paths = binary_paths([25, 3])
    demos = load_demos(write_pickle(tmp_path, paths), task="pen-binary", allow_pickle=True)
    for traj, path in zip(demos, paths):
        np.testing.assert_array_equal(traj.rewards, path["rewards"].astype(np.float32))
        assert traj.infos == {}
    assert "reward_relabelled" not in demos.meta


def hammer_paths(with_success: bool) -> list[dict]:
    rng = np.random.default_rng(3)
    paths = []
    for k in (4, 0):
        path = {"observations": rng.normal(size=(12, 46)), "actions": rng.uniform(-1, 1, (12, 26)),
                "rewards": rng.normal(size=12)}
        if with_success:
            path["env_infos"] = {"goal_achieved": np.arange(12) >= 12 - k}
        paths.append(path)
    return paths


def test_without_a_predicate_success_flags_are_read(tmp_path):
    demos = load_demos(write_pickle(tmp_path, hammer_paths(with_success=True)), task="hammer-binary", allow_pickle=True)
    assert demos.meta["reward_relabelled"] == FROM_INFOS
    assert [float(t.rewards.sum()) for t in demos] == [-8.0, -12.0]


def test_without_a_predicate_or_success_flags_the_set_is_refused(tmp_path):
    path = write_pickle(tmp_path, hammer_paths(with_success=False))
    with pytest.raises(NppacError, match=r"rewards are not binary .*\(task 'hammer-binary' has no success predicate"):
        load_demos(path, task="hammer-binary", allow_pickle=True)


def test_published_door_set_is_relabelled(door_file):
    demos = load_demos(door_file, task="door-binary", allow_pickle=True)
    assert (len(demos), demos.n_transitions, demos.obs_dim, demos.act_dim) == (25, 6729, 39, 28)
    steps_at_goal = [int(t.infos["success"].sum()) for t in demos]
    assert sum(n > 0 for n in steps_at_goal) == 7  # trajectories that ever open the door
    assert sum(n > 25 for n in steps_at_goal) == 6  # DAPG's success: more than 25 steps at the goal
    assert inspect_demos(demos)["success_rate"] == 6 / 25
    with open(door_file, "rb") as f:
        raw = pickle.load(f)
    for traj, path in zip(demos, raw):
        assert set(np.unique(traj.rewards)) <= {0.0, -1.0}
        # The dense door reward adds +10 exactly when the hinge passes 1.35 after the step.
        dense = np.asarray(path["rewards"])
        np.testing.assert_array_equal(traj.rewards == 0.0, dense > 15.0)
    assert get_task("door-binary").success_from_obs is DOOR_OPEN


def test_published_pen_labels_are_kept(pen_file):
    """The AWAC pen set's binary labels are not the environment's predicate on its own states; kept as published."""
    demos = load_demos(pen_file, task="pen-binary", allow_pickle=True)
    assert "reward_relabelled" not in demos.meta
    predicate = get_task("pen-binary").success_from_obs
    agree = sum(int(np.sum(predicate.holds(t.next_observations) == (t.rewards == 0.0))) for t in demos)
    assert (agree, demos.n_transitions) == (3254, 4975)
