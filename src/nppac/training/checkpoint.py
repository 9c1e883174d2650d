"""Atomic run checkpoints: a killed run never leaves a half-written one behind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nppac.errors import NppacError

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` with :func:`torch.save` to a temporary file, then move it over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors only, no arbitrary pickles)."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except (OSError, RuntimeError, EOFError) as err:
        raise NppacError(f"cannot read checkpoint {path}: {err.__class__.__name__}: {err}") from None


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
