"""Helpers shared by the GP and NN priors: input checks and the saved-prior layout.

A saved prior is a directory with ``settings.json`` (``kind``, dimensions, config,
fit summary) and ``weights.safetensors`` (tensors).
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from nppac.errors import NppacError

Progress = Callable[[str, int, int], None]
"""Called as ``progress(stage, completed, total)`` during fitting (e.g. to drive a progress bar)."""

C = TypeVar("C")

SETTINGS = "settings.json"
WEIGHTS = "weights.safetensors"


def check_data(states: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Float32 (n, d) states and (n, T) actions with n ≥ 1 and finite values."""
    states, actions = as_numpy(states).astype(np.float32, copy=False), as_numpy(actions).astype(np.float32, copy=False)
    if states.ndim != 2 or actions.ndim != 2 or len(states) != len(actions) or len(states) == 0:
        raise NppacError(f"prior data must be (n, obs_dim) states and (n, act_dim) actions with n ≥ 1, "
                         f"got {states.shape} and {actions.shape}")
    if not (np.isfinite(states).all() and np.isfinite(actions).all()):
        raise NppacError("prior data contains NaN or Inf values; clean the demonstrations first")
    return states, actions


def check_states(states: torch.Tensor, obs_dim: int) -> None:
    """Raise a one-line :class:`NppacError` unless ``states`` is (batch, obs_dim)."""
    if states.ndim != 2 or states.shape[1] != obs_dim:
        raise NppacError(f"prior expects states of shape (batch, {obs_dim}), got {tuple(states.shape)}")


def as_numpy(arr: np.ndarray | torch.Tensor) -> np.ndarray:
    return arr.detach().cpu().numpy() if isinstance(arr, torch.Tensor) else np.asarray(arr)


def write_saved(directory: str | Path, settings: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Write ``settings.json`` and ``weights.safetensors`` into ``directory`` (created if needed)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(out / WEIGHTS))
    (out / SETTINGS).write_text(json.dumps(settings, indent=2) + "\n")


def read_settings(directory: str | Path) -> dict[str, Any]:
    """``settings.json`` of a saved prior; missing or broken files raise :class:`NppacError`."""
    root = Path(directory)
    path = root / SETTINGS
    if not path.is_file():
        raise NppacError(f"{path} not found: is {root} a directory written by `nppac prior fit`?")
    try:
        settings = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise NppacError(f"{path} is not valid JSON ({err.msg}); re-run `nppac prior fit`") from None
    if not isinstance(settings, dict) or "kind" not in settings:
        raise NppacError(f"{path} has no 'kind' field; re-run `nppac prior fit`")
    return settings


def read_saved(directory: str | Path, kind: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """settings.json and weights.safetensors of a saved prior of ``kind``."""
    settings = read_settings(directory)
    if settings["kind"] != kind:
        raise NppacError(f"{Path(directory) / SETTINGS}: kind is {settings['kind']!r}, expected {kind!r}")
    weights = Path(directory) / WEIGHTS
    if not weights.is_file():
        raise NppacError(f"{weights} not found: is {directory} a directory written by `nppac prior fit`?")
    return settings, load_file(str(weights))


def config_from_settings(config_cls: type[C], settings: dict[str, Any], device: str | torch.device) -> C:
    """The saved ``settings["config"]`` as ``config_cls`` on ``device``; keys it no longer has are ignored."""
    known = {f.name for f in fields(config_cls)}  # type: ignore[arg-type]
    config = config_cls(**{k: v for k, v in settings["config"].items() if k in known})
    config.device = str(device)  # type: ignore[attr-defined]
    return config
