"""Every demonstration format, written with its own writer and read back by nppac."""

from __future__ import annotations

import json
import pathlib
import pickle
import re

import h5py
import numpy as np
import pytest

from nppac.data import (
    Demonstrations,
    Trajectory,
    load_d4rl_hdf5,
    load_demos,
    load_minari,
    load_mjrl_pickle,
    load_npz,
    load_rlkit_npy,
    save_npz,
)
from nppac.errors import NppacError
from tests.builders import LENGTHS, OBS_DIM, assert_same, raw_episodes, write_minari


def assert_matches_episodes(demos: Demonstrations, episodes: list[dict], next_known: bool = True) -> None:
    """The loaded set holds the episodes in float32, with nppac's terminal/time-out convention."""
    assert len(demos) == len(episodes)
    for traj, ep in zip(demos, episodes):
        steps = len(ep["actions"])
        assert traj.observations.dtype == np.float32 and traj.terminals.dtype == bool
        np.testing.assert_array_equal(traj.observations, ep["states"][:steps].astype(np.float32))
        np.testing.assert_array_equal(traj.actions, ep["actions"].astype(np.float32))
        np.testing.assert_array_equal(traj.rewards, ep["rewards"].astype(np.float32))
        expected_next = ep["states"][1:] if next_known else \
            np.concatenate([ep["states"][1:steps], ep["states"][steps - 1:steps]])
        np.testing.assert_array_equal(traj.next_observations, expected_next.astype(np.float32))
        last = np.arange(steps) == steps - 1
        np.testing.assert_array_equal(traj.terminals, last & ep["terminal"])
        np.testing.assert_array_equal(traj.timeouts, last & (not ep["terminal"]))


def test_npz_round_trip_is_exact(tmp_path):
    episodes = raw_episodes()
    demos = Demonstrations(
        [Trajectory(
            ep["states"][:-1].astype(np.float32), ep["actions"].astype(np.float32), ep["rewards"].astype(np.float32),
            np.eye(len(ep["actions"]), dtype=bool)[-1] & ep["terminal"],
            np.eye(len(ep["actions"]), dtype=bool)[-1] & (not ep["terminal"]),
            ep["states"][1:].astype(np.float32), {"success": ep["success"]},
        ) for ep in episodes],
        source="memory", format="rlkit", task=None, meta={"note": [1, 2]},
    )
    path = save_npz(demos, tmp_path / "demos.npz")
    loaded = load_npz(path)
    assert_same(loaded, demos)
    assert loaded.format == "npz" and loaded.source == str(path)
    assert loaded.meta == {"origin": {"source": "memory", "format": "rlkit"}, "note": [1, 2]}
    with np.load(path, allow_pickle=False) as z:  # no entry needs pickle
        np.testing.assert_array_equal(z["lengths"], LENGTHS)
        assert z["observations"].shape == (sum(LENGTHS), OBS_DIM)
    again = load_npz(save_npz(loaded, tmp_path / "again.npz"))
    assert_same(again, demos)
    assert again.meta == loaded.meta  # the origin survives re-saving


def test_npz_keeps_the_task(tmp_path):
    episodes = raw_episodes(lengths=(4,), obs_dim=11, act_dim=3)
    path = tmp_path / "hop.pkl"
    with open(path, "wb") as f:
        pickle.dump([{"observations": e["states"][:-1], "actions": e["actions"], "rewards": e["rewards"]}
                     for e in episodes], f)
    saved = save_npz(load_demos(path, task="hopper", allow_pickle=True), tmp_path / "hop.npz")
    assert load_demos(saved).task == "hopper"


def rlkit_paths(episodes: list[dict]) -> list[dict]:
    """rlkit's layout: dict observations, (T, 1) rewards and terminals, per-step env_infos."""
    return [{
        "observations": [{"state_observation": s, "observation": s * 0} for s in ep["states"][:-1]],
        "next_observations": [{"state_observation": s, "observation": s * 0} for s in ep["states"][1:]],
        "actions": ep["actions"],
        "rewards": ep["rewards"][:, None],
        "terminals": (np.arange(len(ep["actions"])) == len(ep["actions"]) - 1)[:, None] * float(ep["terminal"]),
        "agent_infos": [{} for _ in ep["actions"]],
        "env_infos": [{"goal_achieved": bool(s)} for s in ep["success"]],
    } for ep in episodes]


def test_rlkit_npy_round_trip(tmp_path):
    episodes = raw_episodes()
    path = tmp_path / "paths.npy"
    np.save(path, np.array(rlkit_paths(episodes), dtype=object))
    demos = load_rlkit_npy(path, allow_pickle=True)
    assert demos.format == "rlkit"
    assert_matches_episodes(demos, episodes)
    for traj, ep in zip(demos, episodes):
        np.testing.assert_array_equal(traj.infos["success"], ep["success"])
    assert_same(load_demos(path, allow_pickle=True), demos)


def test_rlkit_extra_trailing_reward_is_dropped(tmp_path):
    episodes = raw_episodes()
    paths = rlkit_paths(episodes)
    for p in paths:
        p["rewards"] = np.append(p["rewards"], 99.0)
    path = tmp_path / "paths.npy"
    np.save(path, np.array(paths, dtype=object))
    demos = load_demos(path, allow_pickle=True)
    assert_matches_episodes(demos, episodes)
    assert demos.meta["dropped_trailing_rewards"] == len(LENGTHS)


def test_mjrl_pickle_derives_next_observations(tmp_path):
    episodes = raw_episodes()
    paths = [{
        "observations": ep["states"][:-1],
        "actions": ep["actions"],
        "rewards": ep["rewards"],
        "init_state_dict": {"qpos": np.zeros(4)},
        "terminated": ep["terminal"],
        "env_infos": {"goal_achieved": ep["success"]},
    } for ep in episodes]
    path = tmp_path / "demos.pickle"
    with open(path, "wb") as f:
        pickle.dump(paths, f)
    demos = load_mjrl_pickle(path, allow_pickle=True)
    assert demos.format == "mjrl" and demos.meta == {"derived_next_observations": True}
    assert_matches_episodes(demos, episodes, next_known=False)
    for traj, ep in zip(demos, episodes):
        np.testing.assert_array_equal(traj.infos["success"], ep["success"])


def write_d4rl(path: pathlib.Path, episodes: list[dict], with_next: bool = True, open_end: bool = False) -> None:
    """Flat D4RL arrays; ``open_end`` leaves the last episode without a time-out."""
    ends = [np.arange(len(ep["actions"])) == len(ep["actions"]) - 1 for ep in episodes]
    timeouts = np.concatenate([end & (not ep["terminal"]) for end, ep in zip(ends, episodes)])
    if open_end:
        timeouts[-1] = False
    with h5py.File(path, "w") as f:
        f["observations"] = np.concatenate([ep["states"][:-1] for ep in episodes])
        if with_next:
            f["next_observations"] = np.concatenate([ep["states"][1:] for ep in episodes])
        f["actions"] = np.concatenate([ep["actions"] for ep in episodes])
        f["rewards"] = np.concatenate([ep["rewards"] for ep in episodes])
        f["terminals"] = np.concatenate([end & ep["terminal"] for end, ep in zip(ends, episodes)])
        f["timeouts"] = timeouts
        f["infos/success"] = np.concatenate([ep["success"] for ep in episodes])
        f["infos/qpos"] = np.zeros((len(timeouts), 4))


@pytest.mark.parametrize("with_next", [True, False])
def test_d4rl_hdf5_splits_at_terminals_and_timeouts(tmp_path, with_next):
    episodes = raw_episodes()
    path = tmp_path / "d4rl.hdf5"
    write_d4rl(path, episodes, with_next=with_next, open_end=True)
    demos = load_d4rl_hdf5(path)
    assert demos.format == "d4rl"
    assert [len(t) for t in demos] == list(LENGTHS)
    assert_matches_episodes(demos, episodes, next_known=with_next)
    assert demos.meta.get("derived_next_observations", False) is not with_next
    for traj, ep in zip(demos, episodes):
        assert list(traj.infos) == ["success"]
        np.testing.assert_array_equal(traj.infos["success"], ep["success"])
    assert_same(load_demos(path), demos)


def test_minari_round_trip(tmp_path, monkeypatch):
    episodes = raw_episodes()
    folder = write_minari(tmp_path, monkeypatch, episodes)
    demos = load_minari(folder)
    assert demos.format == "minari" and demos.meta["dataset_id"] == "nppac-test-v0"
    for ep in episodes:  # Minari stores float32 states and actions
        ep["states"], ep["actions"] = ep["states"].astype(np.float32), ep["actions"].astype(np.float32)
    assert_matches_episodes(demos, episodes)
    for traj, ep in zip(demos, episodes):
        np.testing.assert_array_equal(traj.infos["success"], ep["success"])
    assert_same(load_demos(folder / "data"), demos)
    assert_same(load_demos(folder / "data" / "main_data.hdf5"), demos)


def test_a_minari_id_reads_the_local_store_and_never_downloads(tmp_path, monkeypatch, capsys):
    import minari

    from tests.builders import nppac_in_process

    episodes = raw_episodes()
    folder = write_minari(tmp_path, monkeypatch, episodes)  # MINARI_DATASETS_PATH=tmp_path, dataset nppac-test-v0
    assert_same(load_demos("minari:nppac-test-v0"), load_demos(folder))
    code, out, err = nppac_in_process(monkeypatch, capsys, "data", "inspect", "minari:nppac-test-v0", "--json")
    assert code == 0, err
    assert json.loads(out)["n_transitions"] == sum(LENGTHS)

    def no_download(*args, **kwargs):
        raise AssertionError("nppac must not download")

    monkeypatch.setattr(minari, "download_dataset", no_download)
    monkeypatch.setattr(minari, "load_dataset", no_download)
    with pytest.raises(NppacError) as err_info:
        load_demos("minari:D4RL/pen/human-v2", task="pen-binary")
    message = str(err_info.value)
    store = tmp_path / "D4RL" / "pen" / "human-v2"
    assert message.startswith(f"minari:D4RL/pen/human-v2: not in the local Minari store ({store} has no data/")
    assert "run `minari download D4RL/pen/human-v2`" in message and "\n" not in message
    code, _, err = nppac_in_process(monkeypatch, capsys, "train", "--task", "pen-binary", "--algo", "bc", "--demos",
                                    "minari:D4RL/pen/human-v2", "--out", str(tmp_path / "run"))
    assert code == 2 and len(err.splitlines()) == 1 and "minari download D4RL/pen/human-v2" in err


def test_d4rl_arrays_in_an_npz_read_as_the_hdf5_file(tmp_path):
    episodes = raw_episodes()
    write_d4rl(tmp_path / "d4rl.hdf5", episodes, with_next=False)
    with h5py.File(tmp_path / "d4rl.hdf5") as f:
        arrays = {key: f[key][()] for key in ("observations", "actions", "rewards", "terminals", "timeouts")}
        arrays["infos/success"] = f["infos/success"][()]
    np.savez(tmp_path / "d4rl.npz", **arrays)
    from_npz, from_hdf5 = load_demos(tmp_path / "d4rl.npz"), load_demos(tmp_path / "d4rl.hdf5")
    assert from_npz.format == "d4rl" and from_npz.meta == {"derived_next_observations": True}
    assert_same(from_npz, from_hdf5)
    del arrays["terminals"]
    np.savez(tmp_path / "short.npz", **arrays)
    with pytest.raises(NppacError, match=r"short.npz: field 'terminals': missing; D4RL files need observations"):
        load_demos(tmp_path / "short.npz")


@pytest.mark.parametrize("infos", ["none", "other"])
def test_minari_without_success_flags(tmp_path, monkeypatch, infos):
    episodes = raw_episodes()
    demos = load_minari(write_minari(tmp_path, monkeypatch, episodes, infos=infos))
    for ep in episodes:
        ep["states"], ep["actions"] = ep["states"].astype(np.float32), ep["actions"].astype(np.float32)
    assert_matches_episodes(demos, episodes)
    assert all(traj.infos == {} for traj in demos)  # only a success flag is kept


def test_minari_dict_observations_are_refused(tmp_path, monkeypatch):
    folder = write_minari(tmp_path, monkeypatch, raw_episodes(), dict_observations=True)
    with pytest.raises(NppacError, match=r"trajectory 0: field 'observations': comes from a Dict space "
                                         r"\(keys goal, joints\); nppac reads Box"):
        load_demos(folder)


def test_published_pen_set(pen_file):
    demos = load_demos(pen_file, task="pen-binary", allow_pickle=True)
    assert (len(demos), demos.n_transitions, demos.obs_dim, demos.act_dim) == (25, 4975, 45, 24)
    raw = np.load(pen_file, allow_pickle=True)
    for traj, path in zip(demos, raw):
        assert traj.observations.dtype == np.float32 and traj.actions.dtype == np.float32
        observations = np.array([o["state_observation"] for o in path["observations"]], dtype=np.float32)
        np.testing.assert_array_equal(traj.observations, observations)
        np.testing.assert_array_equal(traj.rewards, path["rewards"][:len(path["actions"])].astype(np.float32))
        assert not traj.terminals.any()
        np.testing.assert_array_equal(np.flatnonzero(traj.timeouts), [len(traj) - 1])


def write_trap_pickle(path: pathlib.Path, marker: pathlib.Path) -> None:
    """A pickle whose loading creates ``marker``: proof that refusing happens before unpickling."""

    class Trap:
        def __reduce__(self):
            return (pathlib.Path.touch, (marker,))

    if path.suffix == ".npy":
        np.save(path, np.array([Trap()], dtype=object))
    else:
        with open(path, "wb") as f:
            pickle.dump([Trap()], f)


@pytest.mark.parametrize("name", ["demos.pkl", "demos.pickle", "paths.npy"])
def test_pickles_are_refused_without_opt_in(tmp_path, name):
    path, marker = tmp_path / name, tmp_path / "ran"
    write_trap_pickle(path, marker)
    with pytest.raises(NppacError, match="allow_pickle=True") as err:
        load_demos(path)
    assert str(path) in str(err.value) and "--allow-pickle" in str(err.value) and "arbitrary code" in str(err.value)
    assert not marker.exists()
    with pytest.raises(NppacError, match="trajectory 0"):  # opting in does unpickle (and the content is no path)
        load_demos(path, allow_pickle=True)
    assert marker.exists()


def test_numeric_npy_is_not_demonstrations(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((3, 2)))
    with pytest.raises(NppacError, match="no trajectories"):
        load_demos(path)


def corrupt(path: pathlib.Path, content: bytes) -> pathlib.Path:
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("name, content, message", [
    ("missing.npz", None, "no such file"),
    ("demos.csv", b"a,b\n", "unknown demonstration format '.csv'"),
    ("demos", b"a,b\n", "unknown demonstration format '(no extension)'"),
    ("bad.npz", b"not a zip", "not a readable .npz"),
    ("bad.h5", b"not hdf5", "not a readable HDF5"),
    ("bad.npy", b"\x93NUMPY", "not a readable .npy"),
    ("bad.pkl", b"\x80\x04junk", "cannot read as a pickled path list"),
])
def test_unreadable_paths_name_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(NppacError, match=re.escape(message)) as err:
        load_demos(path, allow_pickle=True)
    assert str(err.value).startswith(str(path))


def test_truncated_npz_is_reported(tmp_path):
    episodes = raw_episodes()
    source = tmp_path / "d.hdf5"
    write_d4rl(source, episodes)
    good = save_npz(load_demos(source), tmp_path / "good.npz").read_bytes()
    with pytest.raises(NppacError, match="not a readable .npz") as err:
        load_demos(corrupt(tmp_path / "cut.npz", good[: len(good) // 2]))
    assert "cut.npz" in str(err.value)


def test_foreign_npz_and_folder_are_reported(tmp_path):
    np.savez(tmp_path / "foreign.npz", x=np.zeros(3))
    with pytest.raises(NppacError, match="no 'meta' entry"):
        load_demos(tmp_path / "foreign.npz")
    (tmp_path / "folder").mkdir()
    with pytest.raises(NppacError, match="not a Minari dataset folder"):
        load_demos(tmp_path / "folder")


def test_save_npz_is_atomic(tmp_path, monkeypatch):
    source = tmp_path / "d.hdf5"
    write_d4rl(source, raw_episodes())
    demos = load_demos(source)
    out = save_npz(demos, tmp_path / "out.npz")
    before = out.read_bytes()

    def broken(file, **arrays):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", broken)
    with pytest.raises(OSError, match="disk full"):
        save_npz(demos, out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.hdf5", "out.npz"]


def test_save_npz_rejects_other_suffixes(tmp_path):
    source = tmp_path / "d.hdf5"
    write_d4rl(source, raw_episodes())
    with pytest.raises(NppacError, match="must end in .npz"):
        save_npz(load_demos(source), tmp_path / "out.npy")


@pytest.mark.parametrize("module, suffix, extra", [("h5py", ".hdf5", "hdf5"), ("minari", "", "minari")])
def test_an_optional_reader_without_its_library_names_the_extra(tmp_path, monkeypatch, module, suffix, extra):
    import sys

    from nppac.data import load_demos

    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: importing it raises ImportError
    if suffix:
        path = tmp_path / f"d{suffix}"
        path.write_bytes(b"")
    else:
        path = tmp_path / "dataset"
        (path / "data").mkdir(parents=True)
        (path / "data" / "metadata.json").write_text("{}")
    with pytest.raises(NppacError, match=rf"needs {module}; pip install 'nppac\[{extra}\]'"):
        load_demos(path)
