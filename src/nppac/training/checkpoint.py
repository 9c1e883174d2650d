"""Atomic run checkpoints: a killed run never leaves a half-written one behind."""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nppac.errors import NppacError
from nppac.outputs import atomic_file

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 2
"""Format of the run checkpoints written now (key ``format``). Format 2 caches the prior's σ0 as predicted (the σ0
convention applies in the loss) and keeps an agent's extras in its own state; earlier checkpoints hold no key."""


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` with :func:`torch.save` to a temporary file of its own, then move it over ``path``."""
    with atomic_file(path) as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())


RUN_KEYS = ("epoch", "env_steps", "wall_s", "agent", "replay", "rng")
"""What every run checkpoint holds (the training loop writes one with every evaluated row, which it also holds)."""


def load_checkpoint(
    path: Path, device: str | torch.device = "cpu", required: Sequence[str] = RUN_KEYS, mmap: bool = False,
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors only, no arbitrary pickles), exactly as saved.

    ``required`` names the entries the caller reads (dots reach nested ones: ``agent.actor``). A file that is not
    such a checkpoint (random bytes, a pickle of other objects, a truncated write), one whose bytes changed since it
    was written (each entry of its zip against the CRC-32 stored with it), one holding NaN or Inf in a tensor (no run
    saves one: a diverged run stops before its checkpoint) or one that lacks a required entry raises a one-line
    :class:`NppacError` naming the file. ``mmap`` maps the file instead of reading it.
    """
    path = Path(path)
    not_ours = (f"cannot read checkpoint {path}: it is not a complete checkpoint written by nppac (truncated, "
                "not a torch file, or holding objects other than tensors); restore or remove it")

    def damaged(what: str) -> NppacError:
        return NppacError(f"checkpoint {path} is not the state that was saved: {what}; restore it, or start over "
                          "with a new --out")

    if path.is_file() and not zipfile.is_zipfile(path):  # torch.save writes zip archives
        raise NppacError(not_ours)
    try:
        with zipfile.ZipFile(path) as archive:
            failed = archive.testzip()
    except OSError as err:
        raise NppacError(f"cannot read checkpoint {path}: {err.strerror or err}") from None
    except Exception as err:  # zipfile's BadZipFile, or whatever else a damaged directory of the zip raises
        raise damaged(f"its zip is damaged ({err})") from None
    if failed is not None:
        raise damaged(f"its entry {failed} fails its CRC check (the bytes changed)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on foreign pickle protocols; the error below says enough
            state = torch.load(path, map_location=device, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError:
        raise NppacError(not_ours) from None
    except Exception as err:  # a file with intact checksums that torch cannot read was not written by nppac
        reason = str(err).strip().splitlines()[0] if str(err).strip() else "the file is empty or cut short"
        raise NppacError(f"cannot read checkpoint {path}: {type(err).__name__}: {reason}") from None
    for key in required:
        entry: Any = state
        for part in key.split("."):
            if not isinstance(entry, dict) or part not in entry:
                raise NppacError(f"checkpoint {path} has no entry {key!r}; it is incomplete or not a run checkpoint, "
                                 "restore or remove it")
            entry = entry[part]
    bad = _non_finite(state)
    if bad is not None:
        raise damaged(f"{bad} holds NaN or Inf, which no run saves")
    return state


def _non_finite(entry: Any, name: str = "") -> str | None:
    """The name (``agent.critic.q1.0.weight``) of the first floating-point tensor in ``entry`` with NaN or Inf."""
    if isinstance(entry, torch.Tensor):
        return name if entry.is_floating_point() and not bool(torch.isfinite(entry).all()) else None
    items = entry.items() if isinstance(entry, dict) else enumerate(entry) if isinstance(entry, (list, tuple)) else ()
    for key, value in items:
        found = _non_finite(value, f"{name}.{key}" if name else str(key))
        if found is not None:
            return found
    return None


def rng_state(np_rng: np.random.Generator, envs: dict[str, Any]) -> dict[str, Any]:
    """Random states of torch (CPU and CUDA), numpy and each environment's ``np_random``."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np_rng.bit_generator.state,
        "envs": {name: env.unwrapped.np_random.bit_generator.state for name, env in envs.items()},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any], np_rng: np.random.Generator, envs: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    np_rng.bit_generator.state = state["numpy"]
    for name, env in envs.items():
        env.unwrapped.np_random.bit_generator.state = state["envs"][name]
