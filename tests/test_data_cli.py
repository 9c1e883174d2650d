"""``nppac data inspect`` and ``nppac data convert`` as a user runs them."""

from __future__ import annotations

import json
import pickle

import numpy as np

from nppac.data import load_demos, load_npz
from tests.builders import assert_same, binary_paths
from tests.conftest import run_cli


def write_pickle(path, paths):
    with open(path, "wb") as f:
        pickle.dump(paths, f)
    return path


def assert_user_error(proc, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_pickle_refused_without_flag(tmp_path):
    path = write_pickle(tmp_path / "demos.pkl", binary_paths([1]))
    assert_user_error(run_cli("data", "inspect", str(path), "--json"), str(path), "--allow-pickle")
    assert_user_error(run_cli("data", "convert", str(path), str(tmp_path / "out.npz")), "--allow-pickle")
    assert not (tmp_path / "out.npz").exists()


def test_inspect_json_matches_independent_numbers(tmp_path):
    successes = [30, 22, 21, 19, 0]
    paths = binary_paths(successes)
    paths[0]["actions"][3, 2] = 1.7  # reported on stderr, never on stdout
    returns = np.array([np.sum(p["rewards"]) for p in paths])
    path = write_pickle(tmp_path / "pen.pkl", paths)
    proc = run_cli("data", "inspect", str(path), "--task", "pen-binary", "--allow-pickle", "--json", check=True)
    summary = json.loads(proc.stdout)
    assert summary["format"] == "mjrl" and summary["task"] == "pen-binary"
    assert (summary["n_trajectories"], summary["n_transitions"], summary["obs_dim"], summary["act_dim"]) == \
        (5, 150, 45, 24)
    assert summary["return_mean"] == np.mean(returns) == -(150 - 92) / 5
    assert np.isclose(summary["return_std"], np.std(returns))
    assert (summary["return_min"], summary["return_max"]) == (-30.0, 0.0)
    assert summary["success_rate"] == 3 / 5  # more than 20 successful steps: 30, 22, 21
    assert "1 action values lie outside [-1, 1] (max |a| = 1.7; 0.0278% of 3600)" in proc.stderr
    assert (summary["action_max"], summary["actions_outside"]) == (np.float32(1.7), 1)
    assert summary["actions_outside_share"] == 1 / 3600


def test_inspect_table(tmp_path):
    path = write_pickle(tmp_path / "pen.pkl", binary_paths([30, 0]))
    proc = run_cli("data", "inspect", str(path), "--allow-pickle", check=True)
    assert "n_transitions" in proc.stdout and "60" in proc.stdout and "-15" in proc.stdout


def test_convert_then_load_equals_original(tmp_path):
    paths = binary_paths([30, 5])
    paths[1]["actions"][0, 0] = -3.0
    source = write_pickle(tmp_path / "pen.pkl", paths)
    out = tmp_path / "pen.npz"
    out.write_bytes(b"old")  # an explicit output is replaced
    proc = run_cli("data", "convert", str(source), str(out), "--allow-pickle", "--task", "pen-binary", "--clip-actions",
                   check=True)
    assert "2 trajectories, 60 transitions" in proc.stdout
    converted = load_npz(out)
    assert converted.task == "pen-binary" and converted.meta["origin"] == {"source": str(source), "format": "mjrl"}
    assert_same(converted, load_demos(source, allow_pickle=True, clip_actions=True))
    assert converted.trajectories[1].actions[0, 0] == -1.0


def test_failed_convert_keeps_the_old_output(tmp_path):
    paths = binary_paths([30])
    source = write_pickle(tmp_path / "pen.pkl", paths)
    out = tmp_path / "pen.npz"
    out.write_bytes(b"old")
    assert_user_error(run_cli("data", "convert", str(source), str(out), "--allow-pickle", "--task", "door-binary"),
                      "trajectory 0", "'observations'", "door-binary")
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pen.npz", "pen.pkl"]


def test_pen_inspect(pen_file):
    raw = np.load(pen_file, allow_pickle=True)
    rewards = [p["rewards"][: len(p["actions"])] for p in raw]  # rlkit zips the per-step lists
    returns = np.array([r.sum() for r in rewards])
    proc = run_cli("data", "inspect", str(pen_file), "--task", "pen-binary", "--allow-pickle", "--json", check=True)
    summary = json.loads(proc.stdout)
    assert (summary["n_trajectories"], summary["n_transitions"], summary["obs_dim"], summary["act_dim"]) == \
        (25, 4975, 45, 24)
    assert np.isclose(summary["return_mean"], returns.mean()) and np.isclose(summary["return_std"], returns.std())
    assert (summary["return_min"], summary["return_max"]) == (returns.min(), returns.max())
    assert summary["success_rate"] == np.mean([np.sum(r == 0) > 20 for r in rewards])
