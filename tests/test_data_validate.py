"""Validation errors name the file, the trajectory and the field; the action-range policy; inspect."""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import pytest

from nppac.data import Demonstrations, inspect_demos, load_demos, validate
from nppac.data.validate import MAX_CLIPPED_ACTIONS
from nppac.errors import NppacError
from tests.builders import binary_paths, raw_episodes, write_pickle


def mjrl_paths(seed: int = 0, lengths=(5, 7, 3), obs_dim: int = 3, act_dim: int = 2) -> list[dict]:
    return [
        {"observations": ep["states"][:-1], "actions": ep["actions"], "rewards": ep["rewards"]}
        for ep in raw_episodes(seed, lengths, obs_dim, act_dim)
    ]


def error_for(path, **kwargs) -> str:
    with pytest.raises(NppacError) as err:
        load_demos(path, allow_pickle=True, **kwargs)
    message = str(err.value)
    assert message.startswith(f"{path}: "), message
    return message


def test_missing_field(tmp_path):
    paths = mjrl_paths()
    del paths[1]["actions"]
    assert "trajectory 1: field 'actions': missing" in error_for(write_pickle(tmp_path, paths))


def test_ragged_observations(tmp_path):
    paths = mjrl_paths()
    paths[2]["observations"] = [np.zeros(3), np.zeros(4), np.zeros(3)]
    assert "trajectory 2: field 'observations': is ragged" in error_for(write_pickle(tmp_path, paths))


def test_mismatched_lengths(tmp_path):
    paths = mjrl_paths()
    paths[1]["rewards"] = paths[1]["rewards"][:-2]
    assert "trajectory 1: field 'rewards': has 5 steps but 'actions' has 7" in error_for(write_pickle(tmp_path, paths))


@pytest.mark.parametrize("field, value", [("observations", np.nan), ("rewards", np.inf), ("actions", -np.inf)])
def test_non_finite_values(tmp_path, field, value):
    paths = mjrl_paths()
    paths[2][field][1] = value
    message = error_for(write_pickle(tmp_path, paths))
    assert f"trajectory 2: field '{field}': has" in message and "NaN/Inf" in message and "first at step 1" in message


def test_non_finite_next_observation_in_hdf5(tmp_path):
    n = 6
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f["observations"] = np.zeros((n, 3))
        f["next_observations"] = np.where(np.arange(n)[:, None] == 4, np.nan, 0.0) * np.ones((n, 3))
        f["actions"] = np.zeros((n, 2))
        f["rewards"] = np.zeros(n)
        f["terminals"] = np.arange(n) == 2
    assert "trajectory 1: field 'next_observations': has 3 NaN/Inf values (first at step 1)" in error_for(path)


def test_hdf5_missing_field_and_row_mismatch(tmp_path):
    path = tmp_path / "d.hdf5"
    with h5py.File(path, "w") as f:
        f["observations"] = np.zeros((4, 3))
        f["actions"] = np.zeros((4, 2))
        f["rewards"] = np.zeros(4)
    assert "field 'terminals': missing" in error_for(path)
    with h5py.File(path, "a") as f:
        f["terminals"] = np.zeros(3, dtype=bool)
    assert "field 'terminals': has 3 rows but 'actions' has 4" in error_for(path)


@pytest.mark.parametrize("field, dims, expected", [("observations", 10, 11), ("actions", 4, 3)])
def test_dimensions_must_match_the_task(tmp_path, field, dims, expected):
    paths = mjrl_paths(obs_dim=11 if field == "actions" else dims, act_dim=3 if field == "observations" else dims)
    message = error_for(write_pickle(tmp_path, paths), task="hopper")
    assert f"trajectory 0: field '{field}': has {dims} dims but task 'hopper' expects {expected}" in message


def test_dimensions_must_agree_across_trajectories(tmp_path):
    paths = mjrl_paths()
    paths[2]["actions"] = np.zeros((3, 5))
    message = error_for(write_pickle(tmp_path, paths))
    assert "trajectory 2: field 'actions': has 5 dims but trajectory 0 has 2" in message


def test_empty_dataset_and_empty_trajectory(tmp_path):
    assert "no trajectories" in error_for(write_pickle(tmp_path, []))
    paths = mjrl_paths()
    paths[1] = {"observations": np.zeros((0, 3)), "actions": np.zeros((0, 2)), "rewards": np.zeros(0)}
    assert "trajectory 1: field 'actions': is empty" in error_for(write_pickle(tmp_path, paths, "b.pkl"))


def test_terminals_must_be_flags(tmp_path):
    paths = mjrl_paths()
    paths[0]["terminals"] = np.full(5, 0.5)
    assert "trajectory 0: field 'terminals': holds values other than 0/1" in error_for(write_pickle(tmp_path, paths))


def write_flat(tmp_path, fmt: str, arrays: dict[str, np.ndarray]):
    """One trajectory of flat per-step ``arrays`` in ``fmt``: mjrl pickle, D4RL HDF5 or nppac .npz."""
    if fmt == "mjrl":
        return write_pickle(tmp_path, [arrays])
    if fmt == "d4rl":
        path = tmp_path / "demos.h5"
        with h5py.File(path, "w") as f:
            for key, value in arrays.items():
                f[key] = value
        return path
    path = tmp_path / "demos.npz"
    meta = json.dumps({"schema": "nppac-demos", "version": 1, "task": None, "meta": {}})
    n = len(arrays["actions"])
    np.savez(path, **arrays, timeouts=np.arange(n) == n - 1, next_observations=arrays["observations"],
             lengths=np.array([n]), meta=np.array(meta))
    return path


def flat_arrays(n: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"observations": rng.normal(size=(n, 3)), "actions": rng.uniform(-1, 1, (n, 2)),
            "rewards": rng.normal(size=n), "terminals": np.zeros(n)}


READERS = ["mjrl", "d4rl", "npz"]


@pytest.mark.parametrize("fmt", READERS)
@pytest.mark.parametrize("value", [0.5, 7.0])
def test_every_reader_refuses_the_same_bad_flags(tmp_path, fmt, value):
    arrays = flat_arrays()
    arrays["terminals"][2] = value
    message = error_for(write_flat(tmp_path, fmt, arrays))
    assert f"field 'terminals': holds values other than 0/1 (e.g. {value})" in message


@pytest.mark.parametrize("fmt", READERS)
def test_every_reader_refuses_complex_values(tmp_path, fmt):
    arrays = flat_arrays()
    arrays["rewards"] = arrays["rewards"] + 0.5j
    assert "field 'rewards': holds complex numbers (dtype complex128)" in error_for(write_flat(tmp_path, fmt, arrays))


@pytest.mark.parametrize("fmt", READERS)
def test_finite_in_float64_but_not_in_float32_is_refused(tmp_path, fmt):
    arrays = flat_arrays()
    arrays["observations"][3, 1] = 1e300  # finite as stored, Inf once cast to float32
    message = error_for(write_flat(tmp_path, fmt, arrays))
    assert "field 'observations': has 1 NaN/Inf values (first at step 3) once stored as float32" in message


def test_success_flags_must_cover_every_step(tmp_path):
    paths = mjrl_paths()
    paths[1]["env_infos"] = {"success": np.zeros(6, dtype=bool)}
    message = error_for(write_pickle(tmp_path, paths))
    assert "trajectory 1: field 'infos.success': has 6 steps but 'actions' has 7" in message


def test_unknown_task_is_reported_first(tmp_path):
    with pytest.raises(NppacError, match="unknown task 'pen'"):
        load_demos(tmp_path / "missing.npz", task="pen")


def out_of_range_demos(tmp_path) -> tuple:
    paths = mjrl_paths()
    paths[0]["actions"][0, 0] = 1.5
    paths[1]["actions"][2, 1] = -1.25
    paths[2]["actions"][0, 0] = 1.0005  # within the tolerance: neither reported nor counted
    return write_pickle(tmp_path, paths), paths


def test_out_of_range_actions_warn(tmp_path, caplog):
    path, paths = out_of_range_demos(tmp_path)
    with caplog.at_level(logging.WARNING, logger="nppac.data"):
        demos = load_demos(path, allow_pickle=True)
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "2 action values lie outside [-1, 1] (max |a| = 1.5; 6.67% of 30)" in record.getMessage()
    assert "--clip-actions" in record.getMessage() and str(path) in record.getMessage()
    assert demos.trajectories[0].actions[0, 0] == np.float32(1.5)


def test_clip_actions(tmp_path, caplog):
    path, paths = out_of_range_demos(tmp_path)
    with caplog.at_level(logging.WARNING, logger="nppac.data"):
        demos = load_demos(path, allow_pickle=True, clip_actions=True, max_clipped=MAX_CLIPPED_ACTIONS)
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.levelno == logging.WARNING
    assert "2 action values lie outside [-1, 1] (max |a| = 1.5; 6.67% of 30); clipped to [-1, 1]" in record.getMessage()
    for traj, p in zip(demos, paths):
        np.testing.assert_array_equal(traj.actions, np.clip(p["actions"], -1, 1).astype(np.float32))
    assert demos.meta["clipped_actions"] == 2


def test_clipping_more_than_the_limit_is_refused_unless_allowed(tmp_path):
    path, paths = out_of_range_demos(tmp_path)
    message = error_for(path, clip_actions=True, max_clipped=0.05)
    assert message.endswith(": 2 action values lie outside [-1, 1] (max |a| = 1.5; 6.67% of 30), more than the 5% "
                            "that learning clips: are they in the environment's own units? Normalize them to [-1, 1] "
                            "(Demonstrations.from_arrays(..., action_space=env.action_space) rescales them), or, to "
                            "learn from them clipped, raise max_clipped_actions (nppac train: --set "
                            "max_clipped_actions=1; nppac prior fit: --max-clipped-actions 1)")
    assert load_demos(path, allow_pickle=True, clip_actions=True, max_clipped=2 / 30).meta["clipped_actions"] == 2
    # Only where actions are clipped: read as they are, the set is reported, never refused.
    assert load_demos(path, allow_pickle=True, max_clipped=0.0).trajectories[0].actions[0, 0] == np.float32(1.5)


def test_inspect_shows_the_action_range_and_the_share_outside(tmp_path):
    path, paths = out_of_range_demos(tmp_path)
    summary = inspect_demos(load_demos(path, allow_pickle=True))
    values = np.concatenate([p["actions"] for p in paths]).astype(np.float32)
    assert (summary["action_min"], summary["action_max"]) == (values.min(), 1.5) and values.min() == -1.25
    assert (summary["actions_outside"], summary["actions_outside_share"]) == (2, 2 / 30)


def test_validate_leaves_its_input_alone(tmp_path):
    path, _ = out_of_range_demos(tmp_path)
    demos = load_demos(path, allow_pickle=True)
    before = demos.trajectories[0].actions.copy()
    clipped = validate(demos, clip_actions=True)
    np.testing.assert_array_equal(demos.trajectories[0].actions, before)
    assert clipped.trajectories[0].actions.max() == 1.0


def test_inspect_numbers(tmp_path):
    successes = [25, 21, 20, 3]  # pen succeeds with more than 20 successful steps: 2 of 4
    paths = binary_paths(successes)
    returns = np.array([p["rewards"].sum() for p in paths])  # = k - 30
    summary = inspect_demos(load_demos(write_pickle(tmp_path, paths), allow_pickle=True), task="pen-binary")
    assert summary["format"] == "mjrl"
    assert (summary["n_trajectories"], summary["n_transitions"], summary["obs_dim"], summary["act_dim"]) == \
        (4, 120, 45, 24)
    assert summary["return_mean"] == pytest.approx(np.mean(returns)) == -(30 * 4 - 69) / 4
    assert summary["return_std"] == pytest.approx(np.sqrt(np.mean((returns - returns.mean()) ** 2)))
    assert (summary["return_min"], summary["return_max"]) == (-27.0, -5.0)
    assert summary["success_rate"] == 0.5 and summary["success_from"] == "rewards"


def test_inspect_prefers_success_flags(tmp_path):
    paths = binary_paths([25, 25, 0, 0])
    for p, flags in zip(paths, [30, 0, 30, 0]):
        p["env_infos"] = {"goal_achieved": np.arange(30) < flags}
    summary = inspect_demos(load_demos(write_pickle(tmp_path, paths), allow_pickle=True, task="pen-binary"))
    assert summary["success_rate"] == 0.5 and summary["success_from"] == "infos"


def test_inspect_without_binary_task_has_no_success_rate(tmp_path, caplog):
    demos = load_demos(write_pickle(tmp_path, binary_paths([25])), allow_pickle=True)
    assert "success_rate" not in inspect_demos(demos)
    dense = binary_paths([25])
    dense[0]["rewards"] = dense[0]["rewards"] + 0.5
    with caplog.at_level(logging.WARNING, logger="nppac.data"):
        demos = load_demos(write_pickle(tmp_path, dense, "dense.pkl"), allow_pickle=True)
        summary = inspect_demos(demos, task="pen-binary")
    assert "success_rate" not in summary and "not binary" in caplog.text


def test_in_memory_demonstrations_are_named(tmp_path):
    with pytest.raises(NppacError, match="<in-memory demonstrations>: no trajectories"):
        validate(Demonstrations([]))


def test_a_set_saved_for_another_environment_is_refused_for_a_task_of_the_same_dimensions(tmp_path):
    from nppac.data import save_npz
    from tests.builders import tiny_demos

    path = save_npz(tiny_demos("walker2d"), tmp_path / "walker.npz")  # walker2d and halfcheetah: 17 and 6 dims
    with pytest.raises(NppacError, match=r"walker\.npz.*saved for task 'walker2d' \(Walker2d-v5\), not for "
                                         r"'halfcheetah' \(HalfCheetah-v5\)"):
        load_demos(path, task="halfcheetah")
    # The same environment under another name, or another version of it, is the same task's.
    assert load_demos(path, task="Walker2d-v4").task == "Walker2d-v4"
    assert load_demos(path).task == load_demos(path, task="walker2d").task == "walker2d"
