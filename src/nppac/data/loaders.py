"""Reading demonstrations from the formats users bring, and nppac's own ``.npz``.

Every public loader returns *validated* :class:`Demonstrations` (float32 arrays,
bool terminals/timeouts; :func:`nppac.data.validate.validate`). :func:`load_demos`
picks the loader from the path:

====================  ===========  ==================================================
path                  format       layout
====================  ===========  ==================================================
``*.npz``             ``npz``      nppac's own (:func:`save_npz`)
``*.npz``             ``d4rl``     flat D4RL arrays (no nppac ``meta`` entry)
``*.npy``             ``rlkit``    rlkit/AWAC path list: object array of path dicts
``*.pkl/.pickle``     ``mjrl``     DAPG/mjrl path list: pickled list of path dicts
``*.h5/.hdf5``        ``d4rl``     flat D4RL arrays split at terminals | timeouts
a directory           ``minari``   a local Minari dataset (never downloaded)
``minari:ID``         ``minari``   dataset ID in the local Minari store
====================  ===========  ==================================================

Path dicts (rlkit and mjrl alike) need ``observations`` (or a list of dicts holding ``state_observation``, else
``observation``), ``actions`` and ``rewards``. Conventions shared by all readers:

* A trajectory that ends without a terminal ends in a time-out at its last step.
* Missing ``next_observations`` (mjrl pickles, old D4RL files) are ``observations`` shifted, the last step's
  repeated and a time-out unless terminal (``meta["derived_next_observations"]``).
* A rewards list one longer than the actions (the published AWAC hand sets) loses its trailing entry, as rlkit's
  own loader does (``meta["dropped_trailing_rewards"]`` counts those trajectories).
* A per-step success flag (:data:`SUCCESS_KEYS` in the env infos) is kept as ``infos["success"]``; other infos
  are dropped. Terminals, time-outs and success flags must be 0/1 in every format.
* Minari datasets need Box spaces: no task reads a dict observation.

Pickle-based files (``.pkl``, ``.pickle``, object ``.npy``) can run arbitrary code when loaded, so they are
refused unless ``allow_pickle=True``.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nppac.data.demos import Demonstrations, from_flat, shifted
from nppac.data.trajectories import FIELDS, Trajectory
from nppac.data.validate import per_step, real_array, step_flags, validate_structure, where
from nppac.errors import NppacError
from nppac.outputs import atomic_file, check_output_file
from nppac.tasks import get_task

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

SUCCESS_KEYS = ("success", "goal_achieved", "is_success")
"""Names under which datasets report the per-step success predicate."""
NPZ_SCHEMA = "nppac-demos"
NPZ_VERSION = 1
_PICKLE_SUFFIXES = (".pkl", ".pickle")
_HDF5_SUFFIXES = (".h5", ".hdf5")
_INFO_PREFIX = "infos/"


MINARI_PREFIX = "minari:"
"""``minari:D4RL/pen/human-v2``: a dataset of the local Minari store, by its id."""


def load_demos(
    path: PathLike, task: str | None = None, allow_pickle: bool = False, clip_actions: bool = False,
    max_clipped: float = 1.0,
) -> Demonstrations:
    """Load and validate a demonstration set, the reader chosen from the path (module docs).

    ``task`` checks the dimensions and gives a binary task's reward; ``clip_actions`` clips actions outside
    [−1, 1], refused when more than ``max_clipped`` of the values lie outside (:func:`nppac.data.validate.validate`).
    """
    if task is not None:
        get_task(task)  # an unknown task name is reported before any file is read
    location = local_path(path)
    return _read(location, allow_pickle).checked(task, clip_actions, max_clipped)


def is_minari_id(path: PathLike) -> bool:
    """Whether ``path`` names a dataset of the local Minari store (``minari:ID``) rather than a file."""
    return str(path).startswith(MINARI_PREFIX)


def local_path(path: PathLike) -> Path:
    """The file or folder a demonstration source names: ``minari:ID`` is the dataset's folder in the local Minari
    store (``MINARI_DATASETS_PATH``, else ``~/.minari/datasets``); a path that does not exist is refused."""
    if not is_minari_id(path):
        return _existing(path)
    dataset_id = str(path)[len(MINARI_PREFIX):]
    if not dataset_id:
        raise NppacError(f"{path}: give a Minari dataset id after 'minari:', e.g. minari:D4RL/pen/human-v2")
    minari = _optional("minari", "minari", Path(str(path)))
    folder = Path(minari.storage.get_dataset_path(dataset_id))
    if not (folder / "data" / "metadata.json").exists():
        raise NppacError(
            f"{path}: not in the local Minari store ({folder} has no data/metadata.json); nppac never downloads: "
            f"on a machine with internet access run `minari download {dataset_id}`, then copy {folder} to this "
            "machine's store (or point MINARI_DATASETS_PATH at the store holding it)")
    return folder


def load_rlkit_npy(
    path: PathLike, task: str | None = None, allow_pickle: bool = False, clip_actions: bool = False,
) -> Demonstrations:
    """An rlkit/AWAC path list saved with :func:`numpy.save` (an object array of dicts)."""
    return _read_rlkit_npy(_existing(path), allow_pickle).checked(task, clip_actions)


def load_mjrl_pickle(
    path: PathLike, task: str | None = None, allow_pickle: bool = False, clip_actions: bool = False,
) -> Demonstrations:
    """A DAPG/mjrl pickle: a list of dicts with observations, actions, rewards, init_state_dict."""
    return _read_mjrl_pickle(_existing(path), allow_pickle).checked(task, clip_actions)


def load_d4rl_hdf5(path: PathLike, task: str | None = None, clip_actions: bool = False) -> Demonstrations:
    """A D4RL-style HDF5 file: flat observations, actions, rewards, terminals[, timeouts, next_observations]."""
    return _read_d4rl_hdf5(_existing(path)).checked(task, clip_actions)


def load_minari(path: PathLike, task: str | None = None, clip_actions: bool = False) -> Demonstrations:
    """A Minari dataset in a local directory (the dataset folder or its ``data/`` folder)."""
    return _read_minari(_existing(path)).checked(task, clip_actions)


def load_npz(path: PathLike, task: str | None = None, clip_actions: bool = False) -> Demonstrations:
    """nppac's own ``.npz`` (written by :func:`save_npz`); the stored task is used unless ``task`` is given."""
    return _read_npz(_existing(path)).checked(task, clip_actions)


def save_npz(demos: Demonstrations, path: PathLike) -> Path:
    """Write ``demos`` to nppac's compressed ``.npz`` format, replacing ``path`` whole; returns the path.

    Layout: every field of :data:`FIELDS` concatenated over trajectories, ``lengths`` (n_trajectories,) int64 to
    split them again, ``infos/<key>`` for each per-step info, and ``meta``, a JSON string with the schema name and
    version, ``task`` and ``demos.meta`` (with ``origin``, the source and format first read). No entry needs pickle.
    """
    out = check_output_file(path, ".npz")
    demos = validate_structure(demos)
    meta = dict(demos.meta)
    meta.setdefault("origin", {"source": demos.source, "format": demos.format})
    header = {"schema": NPZ_SCHEMA, "version": NPZ_VERSION, "task": demos.task, "meta": meta}
    try:
        header_text = json.dumps(header)
    except TypeError as err:
        raise NppacError(f"{where(demos.source)}: metadata cannot be stored as JSON ({err})") from None
    arrays = demos.flat()
    arrays["lengths"] = np.array([len(t) for t in demos], dtype=np.int64)
    for key in demos.trajectories[0].infos:
        arrays[_INFO_PREFIX + key] = np.concatenate([t.infos[key] for t in demos])
    arrays["meta"] = np.array(header_text)
    with atomic_file(out) as f:
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]  # numpy's stub lets ** fill allow_pickle: bool
    return out


def _existing(path: PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise NppacError(f"{path}: no such file or directory")
    return path


def _read(path: Path, allow_pickle: bool) -> Demonstrations:
    """Dispatch on the path: directory → Minari, else the suffix."""
    if path.is_dir():
        return _read_minari(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _read_npz(path)
    if suffix == ".npy":
        return _read_rlkit_npy(path, allow_pickle)
    if suffix in _PICKLE_SUFFIXES:
        return _read_mjrl_pickle(path, allow_pickle)
    if suffix in _HDF5_SUFFIXES:
        return _read_d4rl_hdf5(path)
    raise NppacError(
        f"{path}: unknown demonstration format {suffix or '(no extension)'!r}; "
        "use .npz (nppac), .npy (rlkit), .pkl/.pickle (mjrl), .h5/.hdf5 (D4RL) or a Minari dataset folder"
    )


def _refuse_pickle(path: Path, what: str) -> NppacError:
    return NppacError(
        f"{path}: {what} are unpickled when loaded, which can run arbitrary code; "
        "if you trust this file, pass allow_pickle=True (CLI: --allow-pickle)"
    )


def _read_rlkit_npy(path: Path, allow_pickle: bool) -> Demonstrations:
    if not _npy_holds_objects(path):
        raise NppacError(
            f"{path}: a numeric .npy array holds no trajectories; "
            ".npy demonstrations must be rlkit path lists (object arrays of dicts)"
        )
    if not allow_pickle:
        raise _refuse_pickle(path, ".npy files holding Python objects (rlkit path lists)")
    try:
        paths = np.load(path, allow_pickle=True)
    except Exception as err:  # an unpickler can raise anything; the user only needs the file and the cause
        raise NppacError(f"{path}: cannot read as an rlkit .npy path list ({type(err).__name__}: {err})") from None
    return _from_paths(paths, path, "rlkit")


def _npy_holds_objects(path: Path) -> bool:
    """Whether a .npy file stores Python objects, read from its header without unpickling."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                _, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                _, _, dtype = np.lib.format.read_array_header_2_0(f)
    except (OSError, ValueError) as err:
        raise NppacError(f"{path}: not a readable .npy file ({err})") from None
    return dtype.hasobject


def _read_mjrl_pickle(path: Path, allow_pickle: bool) -> Demonstrations:
    if not allow_pickle:
        raise _refuse_pickle(path, "pickle files")
    try:
        with open(path, "rb") as f:
            paths = pickle.load(f)
    except Exception as err:  # an unpickler can raise anything; the user only needs the file and the cause
        raise NppacError(f"{path}: cannot read as a pickled path list ({type(err).__name__}: {err})") from None
    return _from_paths(paths, path, "mjrl")


def _from_paths(paths: Any, path: Path, fmt: str) -> Demonstrations:
    """A list of per-trajectory dicts (rlkit or mjrl layout) → Demonstrations."""
    if isinstance(paths, np.ndarray) and paths.ndim == 0:
        paths = paths.item()
    if isinstance(paths, dict):
        paths = [paths]
    if not isinstance(paths, (Sequence, np.ndarray)) or isinstance(paths, (str, bytes)):
        raise NppacError(f"{path}: expected a list of trajectory dicts, found {type(paths).__name__}")
    trajectories, derived, trimmed = [], False, 0
    for i, item in enumerate(paths):
        if not isinstance(item, dict):
            raise NppacError(f"{where(str(path), i)}: expected a dict of per-step fields, found {type(item).__name__}")
        traj, item_derived, item_trimmed = _path_to_trajectory(item, str(path), i)
        trajectories.append(traj)
        derived |= item_derived
        trimmed += item_trimmed
    meta: dict[str, Any] = {"derived_next_observations": True} if derived else {}
    if trimmed:
        # The published AWAC hand sets store one reward more than actions; rlkit feeds
        # paths to its replay buffer with zip(), which drops that trailing reward.
        logger.debug("%s: dropped the extra trailing reward of %d trajectories", path, trimmed)
        meta["dropped_trailing_rewards"] = trimmed
    return Demonstrations(trajectories, source=str(path), format=fmt, meta=meta)


def _path_to_trajectory(item: dict, source: str, index: int) -> tuple[Trajectory, bool, bool]:
    """One path dict → (trajectory, next observations derived?, trailing reward dropped?)."""
    for key in ("observations", "actions", "rewards"):
        if key not in item:
            raise NppacError(
                f"{where(source, index, key)}: missing; trajectory dicts need observations, actions and rewards"
            )
    observations = _states(item["observations"], source, index, "observations")
    actions = real_array(item["actions"], source, index, "actions")
    steps = len(actions)
    rewards = per_step(real_array(item["rewards"], source, index, "rewards"))
    trimmed = len(rewards) == steps + 1
    if trimmed:
        rewards = rewards[:steps]
    if "terminals" in item:
        terminals = step_flags(item["terminals"], source, index, "terminals")
    else:
        terminals = np.zeros(steps, dtype=bool)
        if steps and bool(item.get("terminated", False)):
            terminals[-1] = True
    if "timeouts" in item:
        timeouts = step_flags(item["timeouts"], source, index, "timeouts")
    else:
        timeouts = _time_out_at_end(terminals)
    derived = "next_observations" not in item
    if derived:
        next_observations, timeouts = shifted(observations, terminals, timeouts)
    else:
        next_observations = _states(item["next_observations"], source, index, "next_observations")
    infos = {}
    success = _success_flags(item.get("env_infos"), source, index)
    if success is not None:
        infos["success"] = success
    traj = Trajectory(observations, actions, rewards, terminals, timeouts, next_observations, infos)
    return traj, derived, trimmed


def _states(value: Any, source: str, index: int | None, field: str) -> np.ndarray:
    """Observations as an array; a list of dicts is read at ``state_observation`` (else ``observation``)."""
    if _is_sequence(value) and len(value) and isinstance(value[0], dict):
        key = next((k for k in ("state_observation", "observation") if k in value[0]), None)
        if key is None:
            raise NppacError(
                f"{where(source, index, field)}: steps are dicts without 'state_observation' or 'observation' "
                f"(keys: {sorted(value[0])})"
            )
        try:
            value = [step[key] for step in value]
        except (KeyError, TypeError):
            raise NppacError(f"{where(source, index, field)}: some steps lack the key {key!r}") from None
    return real_array(value, source, index, field)


def _is_sequence(value: Any) -> bool:
    """A list-like of per-step entries (not a string, not a 0-d array)."""
    if isinstance(value, np.ndarray):
        return value.ndim > 0
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _time_out_at_end(terminals: np.ndarray) -> np.ndarray:
    """Time-outs for a trajectory stored without them: the last step, unless it is terminal."""
    timeouts = np.zeros(len(terminals), dtype=bool)
    if len(terminals) and not terminals[-1]:
        timeouts[-1] = True
    return timeouts


def _success_flags(env_infos: Any, source: str, index: int) -> np.ndarray | None:
    """The per-step success flag from env infos stored as a dict of arrays or a list of dicts."""
    if isinstance(env_infos, dict):
        key = next((k for k in SUCCESS_KEYS if k in env_infos), None)
        return None if key is None else step_flags(env_infos[key], source, index, f"env_infos.{key}")
    if _is_sequence(env_infos) and len(env_infos) and isinstance(env_infos[0], dict):
        key = next((k for k in SUCCESS_KEYS if k in env_infos[0]), None)
        if key is None:
            return None
        try:
            steps = [step[key] for step in env_infos]
        except (KeyError, TypeError):
            raise NppacError(f"{where(source, index, f'env_infos.{key}')}: missing in some steps") from None
        return step_flags(steps, source, index, f"env_infos.{key}")
    return None


def _optional(module: str, extra: str, path: Path) -> Any:
    """An optional reader's library, or one line naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise NppacError(f"{path}: reading this format needs {module}; pip install 'nppac[{extra}]'") from None


def _read_d4rl_hdf5(path: Path) -> Demonstrations:
    h5py = _optional("h5py", "hdf5", path)

    try:
        with h5py.File(path, "r") as f:
            if "observations" not in f and (path.parent / "metadata.json").exists():
                return _read_minari(path.parent)
            arrays = {key: f[key][()] for key in FIELDS if key in f and isinstance(f[key], h5py.Dataset)}
            success_key = next((k for k in SUCCESS_KEYS if isinstance(f.get(f"infos/{k}"), h5py.Dataset)), None)
            if success_key is not None:
                arrays["success"] = f[f"infos/{success_key}"][()]
    except OSError as err:
        raise NppacError(f"{path}: not a readable HDF5 file ({err})") from None
    return from_flat(arrays, str(path), "d4rl")


def _read_minari(path: Path) -> Demonstrations:
    """Read with Minari's own reader from a local folder; nothing is downloaded."""
    data_dir = path / "data" if (path / "data" / "metadata.json").exists() else path
    if not (data_dir / "metadata.json").exists():
        raise NppacError(f"{path}: not a Minari dataset folder (no metadata.json in it or in its data/ folder)")
    MinariDataset = _optional("minari", "minari", path).MinariDataset

    source = str(path)
    try:
        dataset = MinariDataset(data_dir)
        episodes = list(dataset.iterate_episodes())
    except Exception as err:  # Minari raises many kinds (version, storage, JSON); the user needs the file and the cause
        raise NppacError(f"{path}: cannot read as a Minari dataset ({type(err).__name__}: {err})") from None
    trajectories = []
    for i, episode in enumerate(episodes):
        for field in ("observations", "actions"):
            value = getattr(episode, field)
            if isinstance(value, dict):
                raise NppacError(
                    f"{where(source, i, field)}: comes from a Dict space (keys {', '.join(sorted(value))}); "
                    "nppac reads Box (flat array) spaces only: flatten them into one array per step and "
                    "write a new dataset"
                )
            if not isinstance(value, np.ndarray):
                raise NppacError(f"{where(source, i, field)}: comes from a {type(value).__name__} space; "
                                 "nppac reads Box (flat array) spaces only")
        actions = real_array(episode.actions, source, i, "actions")
        steps = len(actions)
        # Minari stores one observation more than actions: the reset state comes first.
        observations = real_array(episode.observations, source, i, "observations")
        if len(observations) != steps + 1:
            raise NppacError(f"{where(source, i, 'observations')}: has {len(observations)} entries for {steps} "
                             "actions; Minari episodes hold one more (the reset observation first)")
        terminals = step_flags(episode.terminations, source, i, "terminations")
        timeouts = step_flags(episode.truncations, source, i, "truncations")
        if steps and not (terminals[-1] or timeouts[-1]):
            timeouts = timeouts.copy()
            timeouts[-1] = True
        infos = {}
        # Minari leaves infos None when the dataset was created without them.
        episode_infos = episode.infos if isinstance(episode.infos, dict) else {}
        key = next((k for k in SUCCESS_KEYS if k in episode_infos), None)
        if key is not None:
            success = step_flags(episode_infos[key], source, i, f"infos.{key}")
            # infos, like observations, start with the reset's: step t's flag is entry t + 1.
            infos["success"] = success[1:] if len(success) == steps + 1 else success
        trajectories.append(Trajectory(
            observations[:steps], actions, real_array(episode.rewards, source, i, "rewards"), terminals, timeouts,
            observations[1:], infos,
        ))
    env_spec = dataset.spec.env_spec
    meta = {"dataset_id": dataset.spec.dataset_id, "env_id": env_spec.id if env_spec is not None else None}
    return Demonstrations(trajectories, source=source, format="minari", meta=meta)


def _read_npz(path: Path) -> Demonstrations:
    source = str(path)
    if not zipfile.is_zipfile(path):
        raise NppacError(f"{path}: not a readable .npz file (not a zip archive); re-create or re-convert it")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {key: z[key] for key in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise NppacError(f"{path}: not a readable .npz file ({err})") from None
    if "meta" not in arrays:
        if "observations" in arrays and "actions" in arrays:  # D4RL's flat arrays, saved with numpy
            flat = {key: arrays[key] for key in FIELDS if key in arrays}
            success_key = next((k for k in SUCCESS_KEYS if f"{_INFO_PREFIX}{k}" in arrays), None)
            if success_key is not None:
                flat["success"] = arrays[f"{_INFO_PREFIX}{success_key}"]
            return from_flat(flat, source, "d4rl")
        raise NppacError(
            f"{path}: neither an nppac demonstrations .npz (no 'meta' entry) nor D4RL arrays (observations, "
            "actions, rewards, terminals); write one with `nppac data convert` from a supported format"
        )
    header = _npz_header(arrays.pop("meta"), source)
    for key in (*FIELDS, "lengths"):
        if key not in arrays:
            raise NppacError(f"{where(source, field=key)}: missing; the file is incomplete, re-create it")
    arrays = {key: real_array(value, source, None, key) for key, value in arrays.items()}
    lengths = _npz_lengths(arrays.pop("lengths"), source)
    n, total = len(arrays["actions"]), sum(int(length) for length in lengths)
    if total != n:
        raise NppacError(f"{where(source, field='lengths')}: sum to {total} but 'actions' has {n} rows; "
                         "the file is damaged, re-create it")
    bounds = np.cumsum(lengths)[:-1]
    for key, value in arrays.items():
        if len(value) != n:
            raise NppacError(f"{where(source, field=key)}: has {len(value)} rows but 'actions' has {n}")
    split = {key: np.split(value, bounds) for key, value in arrays.items()}
    info_keys = [key for key in arrays if key.startswith(_INFO_PREFIX)]
    trajectories = [
        Trajectory(
            **{key: split[key][i] for key in FIELDS},
            infos={key[len(_INFO_PREFIX):]: split[key][i] for key in info_keys},
        )
        for i in range(len(lengths))
    ]
    return Demonstrations(trajectories, source=source, format="npz", task=header["task"], meta=header["meta"])


def _npz_header(entry: np.ndarray, source: str) -> dict[str, Any]:
    """The ``meta`` entry of an nppac ``.npz``: a JSON object with schema, version, task and meta."""
    place = where(source, field="meta")
    redo = "re-create the file with `nppac data convert`"
    try:
        header = json.loads(str(entry))
    except ValueError as err:
        raise NppacError(f"{place}: is not valid JSON ({err}); {redo}") from None
    if not isinstance(header, dict):
        raise NppacError(f"{place}: is a JSON {type(header).__name__}, expected an object; {redo}")
    if header.get("schema") != NPZ_SCHEMA or header.get("version") != NPZ_VERSION:
        raise NppacError(
            f"{place}: schema {header.get('schema')!r} version {header.get('version')!r} "
            f"is not {NPZ_SCHEMA!r} version {NPZ_VERSION}; re-create the file with this nppac"
        )
    for key in ("task", "meta"):
        if key not in header:
            raise NppacError(f"{place}: has no {key!r} entry; {redo}")
    if header["task"] is not None and not isinstance(header["task"], str):
        raise NppacError(f"{place}: 'task' is {header['task']!r}, expected a task name or null; {redo}")
    if not isinstance(header["meta"], dict):
        raise NppacError(f"{place}: 'meta' is a JSON {type(header['meta']).__name__}, expected an object; {redo}")
    return header


def _npz_lengths(lengths: np.ndarray, source: str) -> np.ndarray:
    """Trajectory lengths of an nppac ``.npz``: a 1-D array of integers ≥ 0."""
    place = where(source, field="lengths")
    if not np.issubdtype(lengths.dtype, np.integer) or lengths.ndim != 1:
        raise NppacError(f"{place}: must be a 1-D array of integers, found dtype {lengths.dtype}, "
                         f"shape {lengths.shape}; the file is damaged, re-create it")
    negative = np.flatnonzero(lengths < 0)
    if len(negative):
        first = int(negative[0])
        raise NppacError(f"{place}: trajectory {first} has length {int(lengths[first])}; lengths must be ≥ 0, "
                         "the file is damaged, re-create it")
    return lengths
