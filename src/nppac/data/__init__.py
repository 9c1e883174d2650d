"""Demonstrations in, validated: loaders for the common formats, nppac's ``.npz``, checks."""

from nppac.data.demos import Demonstrations, Trajectory
from nppac.data.loaders import (
    load_d4rl_hdf5,
    load_demos,
    load_minari,
    load_mjrl_pickle,
    load_npz,
    load_rlkit_npy,
    save_npz,
)
from nppac.data.validate import inspect_demos, validate, validate_structure

__all__ = ["Demonstrations", "Trajectory", "inspect_demos", "load_d4rl_hdf5", "load_demos", "load_minari",
           "load_mjrl_pickle", "load_npz", "load_rlkit_npy", "save_npz", "validate", "validate_structure"]
