"""Whatever a file holds, a reader returns valid demonstrations or raises NppacError, never anything else.

Hypothesis writes nppac .npz files, D4RL HDF5 files and mjrl pickles whose fields have
random dtypes (strings, complex, half floats, small ints), shapes, NaN/Inf/1e300
values and trajectory lengths, starting from a valid set so that most draws get past
the first check.
"""

from __future__ import annotations

import json
import pickle

import h5py
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from nppac.data import Demonstrations, load_demos  # noqa: E402
from nppac.data.trajectories import FIELDS  # noqa: E402
from nppac.errors import NppacError  # noqa: E402

# Hypothesis' own float16/int casts of the drawn values overflow on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")

DTYPES = ["float64", "float32", "float16", "int64", "int8", "uint8", "bool", "complex128", "S2", "<U3"]
SPECIAL = [np.nan, np.inf, -np.inf, 1e300, 0.5, 7.0, -1.0, 0.0, 1.0]
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@st.composite
def any_array(draw: st.DrawFn, text: bool = True) -> np.ndarray:
    """An array of any dtype and small shape; floats favour the values that break readers."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES if text else DTYPES[:-2])))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
    if dtype.kind in "fc":
        return draw(hnp.arrays(dtype, shape, elements=st.sampled_from(SPECIAL) | st.floats(-3, 3, width=16)))
    return draw(hnp.arrays(dtype, shape))


@st.composite
def flat_fields(draw: st.DrawFn, text: bool = True) -> dict[str, np.ndarray]:
    """A valid one-trajectory set of flat fields, some of them replaced by anything or removed."""
    n = draw(st.integers(1, 6))
    fields = {
        "observations": np.zeros((n, 3)), "next_observations": np.ones((n, 3)), "actions": np.zeros((n, 2)),
        "rewards": np.zeros(n), "terminals": np.zeros(n, bool), "timeouts": np.arange(n) == n - 1,
    }
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        if draw(st.booleans()):
            fields[key] = draw(any_array(text))
        else:
            del fields[key]
    return fields


HEADERS = st.sampled_from([
    {"schema": "nppac-demos", "version": 1, "task": None, "meta": {}},
    {"schema": "nppac-demos", "version": 1, "task": "hopper", "meta": {}},
    {"schema": "nppac-demos", "version": 1, "task": "no-such-task", "meta": {}},
    {"schema": "nppac-demos", "version": 1, "task": 3, "meta": []},
    {"schema": "nppac-demos", "version": 1},
    [1, 2], "text", None,
]).map(json.dumps) | st.just("{not json")


def assert_valid(demos: Demonstrations) -> None:
    for traj in demos:
        for name in ("observations", "actions", "rewards", "next_observations"):
            value = getattr(traj, name)
            assert value.dtype == np.float32 and np.isfinite(value).all()
        assert traj.terminals.dtype == bool and traj.timeouts.dtype == bool
        assert traj.observations.ndim == 2 and len(traj.observations) == len(traj.actions) > 0


def load_or_refuse(path, **kwargs) -> None:
    try:
        demos = load_demos(path, **kwargs)
    except NppacError as err:
        assert "\n" not in str(err)
        return
    assert_valid(demos)


@PROPERTY_SETTINGS
@given(fields=flat_fields(), lengths=any_array(text=False) | st.none(), header=HEADERS)
def test_npz_reader(tmp_path, fields, lengths, header):
    n = len(fields["actions"]) if "actions" in fields and np.ndim(fields["actions"]) else 0
    path = tmp_path / "demos.npz"
    np.savez(path, **fields, lengths=np.array([n]) if lengths is None else lengths, meta=np.array(header))
    load_or_refuse(path)


@PROPERTY_SETTINGS
@given(fields=flat_fields(text=False))
def test_d4rl_reader(tmp_path, fields):
    path = tmp_path / "demos.h5"
    with h5py.File(path, "w") as f:
        for key, value in fields.items():
            f[key] = value
    load_or_refuse(path)


@PROPERTY_SETTINGS
@given(trajectories=st.lists(flat_fields(), min_size=0, max_size=3))
def test_mjrl_reader(tmp_path, trajectories):
    path = tmp_path / "demos.pkl"
    with open(path, "wb") as f:
        pickle.dump(trajectories, f)
    load_or_refuse(path, allow_pickle=True)


@PROPERTY_SETTINGS
@given(fields=flat_fields())
def test_arrays_and_d4rl_npz(tmp_path, fields):
    """Arrays given in memory, and D4RL's keys saved in a .npz, meet the same checks as a file."""
    others = {key: value for key, value in fields.items() if key not in ("observations", "actions")}
    try:
        demos = Demonstrations.from_arrays(fields.get("observations"), fields.get("actions"), **others)
    except NppacError as err:
        assert "\n" not in str(err)
    else:
        assert_valid(demos)
    path = tmp_path / "d4rl.npz"
    np.savez(path, **fields)
    load_or_refuse(path)
