"""Helpers shared by the GP and NN priors: input checks and the saved-prior layout.

A saved prior is a directory with ``settings.json`` (``kind``, dimensions, config,
fit summary, and ``"format": "nppac-prior"``, by which commands recognize a prior they
may replace) and ``weights.safetensors`` (tensors).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Literal, Protocol, Self, TypeVar

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from nppac.errors import NppacError
from nppac.outputs import atomic_file, write_atomic
from nppac.settings import typed

Progress = Callable[[str, int, int], None]
"""Called as ``progress(stage, completed, total)`` during fitting (e.g. to drive a progress bar)."""




class _Saved(Protocol):
    """What :func:`read_fitted` and :func:`loaded` need of a GP or NN prior class and its instances."""

    kind: str
    fit_seconds: float | None
    fit_info: dict[str, Any]

    def __init__(self, config: Any, obs_dim: int, act_dim: int) -> None: ...

    def to(self, device: str | torch.device) -> Self: ...

    def check_parameters(self, where: str | Path, /) -> None: ...


P = TypeVar("P", bound=_Saved)

SETTINGS = "settings.json"
WEIGHTS = "weights.safetensors"
PRIOR_FORMAT = "nppac-prior"
"""The ``format`` of a saved prior's ``settings.json``: what tells a prior's folder from any other."""
SAVED_FIELDS: dict[str, Any] = {
    "kind": str, "format": str, "format_version": int, "obs_dim": int, "act_dim": int, "config": dict[str, Any],
    "fit_seconds": float | None, "fit": dict[str, Any], "conditioning": Literal["exact", "inducing"], "n": int,
    "train_mll": tuple[str, float] | None, "mean": str, "std": str,
}
"""The declared type of each field of a saved prior's ``settings.json`` (a GP's ``conditioning``, ``n`` and
``train_mll``; a mean-std prior's part kinds ``mean`` and ``std``); those of ``config`` are its config class's."""


def check_data(states: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Float32 (n, d) states and (n, T) actions with n ≥ 1 and finite values."""
    with np.errstate(over="ignore"):  # values beyond float32's range become Inf, reported below
        states = as_numpy(states).astype(np.float32, copy=False)
        actions = as_numpy(actions).astype(np.float32, copy=False)
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
    with atomic_file(out / WEIGHTS) as f:  # not save_file, which creates files with mode 0600
        f.write(save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}))
    write_atomic(out / SETTINGS, json.dumps({**settings, "format": PRIOR_FORMAT}, indent=2) + "\n")


def is_saved_prior(directory: str | Path) -> bool:
    """Whether ``directory`` holds a saved prior, judged by content: its ``settings.json`` carries
    :data:`PRIOR_FORMAT`, or (a prior saved before the marker) reads as a prior's settings (a ``kind``,
    positive integer dimensions) beside the prior's weights, or the two parts of a mean-std prior."""
    root = Path(directory)
    try:
        settings = json.loads((root / SETTINGS).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(settings, dict):
        return False
    if settings.get("format") == PRIOR_FORMAT:
        return True
    dims = [settings.get(k) for k in ("obs_dim", "act_dim")]
    if not (isinstance(settings.get("kind"), str) and all(type(d) is int and d > 0 for d in dims)):
        return False
    if "mean" in settings and "std" in settings:
        return is_saved_prior(root / "mean") and is_saved_prior(root / "std")
    return (root / WEIGHTS).is_file()


def read_settings(directory: str | Path) -> dict[str, Any]:
    """``settings.json`` of a saved prior; missing or broken files raise :class:`NppacError`."""
    root = Path(directory)
    path = root / SETTINGS
    if not path.is_file():
        raise NppacError(f"{path} not found: is {root} a directory written by `nppac prior fit`?")
    try:
        settings = json.loads(path.read_text())
    except ValueError as err:
        raise NppacError(f"{path} is not valid JSON ({err}); re-run `nppac prior fit`") from None
    if not isinstance(settings, dict) or "kind" not in settings:
        raise NppacError(f"{path} has no 'kind' field; re-run `nppac prior fit`")
    with typed_in(path):
        return {k: typed(k, v, SAVED_FIELDS[k]) if k in SAVED_FIELDS else v for k, v in settings.items()}


@contextmanager
def typed_in(path: Path, table: str = "") -> Iterator[None]:
    """A setting of ``path`` (in its ``table``) of another type than it declares (:func:`nppac.settings.typed`),
    named with the file."""
    try:
        yield
    except NppacError as err:
        raise NppacError(f"{path}: {table}{err}; correct the value or re-run `nppac prior fit`") from None


def read_saved(directory: str | Path, kind: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """settings.json and weights.safetensors of a saved prior of ``kind``, refused in one line naming the file
    without positive dimensions, unreadable, or with a tensor holding NaN or Inf (it would predict NaN)."""
    settings = read_settings(directory)
    path = Path(directory) / SETTINGS
    if settings["kind"] != kind:
        raise NppacError(f"{path}: kind is {settings['kind']!r}, expected {kind!r}")
    for name in ("obs_dim", "act_dim"):
        value = settings.get(name)
        if value is None or value < 1:
            raise NppacError(f"{path}: {name} is {value!r}, expected a positive integer; re-run `nppac prior fit`")
    weights = Path(directory) / WEIGHTS
    if not weights.is_file():
        raise NppacError(f"{weights} not found: is {directory} a directory written by `nppac prior fit`?")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError) as err:
        reason = str(err).strip().splitlines()[0]
        raise NppacError(f"{weights}: not a readable safetensors file ({reason}); re-run `nppac prior fit`") from None
    for name, tensor in tensors.items():
        check_real(tensor, name, weights)
        if not torch.isfinite(tensor).all():
            raise NppacError(f"{weights}: tensor {name!r} holds NaN or Inf values; the prior is damaged, "
                             "re-run `nppac prior fit`")
    return settings, tensors


def check_real(tensor: torch.Tensor, name: str, path: str | Path) -> None:
    """Refuse a tensor that is not of a real floating dtype (complex, bool, integer): casting it to float would drop
    an imaginary part with only a torch warning, or read flags and counts as weights."""
    if not tensor.is_floating_point():
        dtype = str(tensor.dtype).removeprefix("torch.")
        raise NppacError(f"{path}: tensor {name!r} has dtype {dtype}, expected real floating-point values (a cast "
                         "would drop an imaginary part, or read flags or counts as parameters); re-create the file")


def check_positive(where: str | Path, values: dict[str, torch.Tensor], fix: str) -> None:
    """Refuse the first entry of ``values`` (name → tensor) that is not finite and > 0, naming it and its value."""
    for name, tensor in values.items():
        flat = tensor.detach().reshape(-1)
        bad = ~(torch.isfinite(flat) & (flat > 0))
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            entry = f"{name}[{i}]" if flat.numel() > 1 else name
            raise NppacError(f"{where}: {entry} = {float(flat[i]):.6g}, but it must be positive and finite; {fix}")


def check_predictions(where: str | Path, mean: torch.Tensor, std: torch.Tensor, at: str) -> None:
    """Refuse a prior whose μ0 is not finite or whose σ0 is not finite and > 0 at the states ``at`` names."""
    for name, values, ok in (("μ0", mean, torch.isfinite(mean)), ("σ0", std, torch.isfinite(std) & (std > 0))):
        if not bool(ok.all()):
            row, dim = (int(i) for i in (~ok).nonzero()[0])
            raise NppacError(f"{where}: the prior predicts {name} = {float(values[row, dim]):.6g} for action dim {dim} "
                             f"at {at} {row}; a prior must predict a finite mean and a positive σ0 there, re-fit it")


def load_weights(module: torch.nn.Module, tensors: dict[str, torch.Tensor], directory: str | Path) -> None:
    """Load ``tensors`` into ``module`` (built from settings.json) after checking names and shapes
    (:func:`check_shapes`)."""
    expected = module.state_dict()
    check_shapes(directory, tensors, {name: tuple(want.shape) for name, want in expected.items()})
    module.load_state_dict({name: tensors[name] for name in expected})


def check_shapes(directory: str | Path, tensors: dict[str, torch.Tensor], shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse, naming the first, a tensor of ``shapes`` (name → shape) that ``tensors`` lacks or holds in another
    shape: settings.json and weights.safetensors do not belong together (an edited dimension, files of two priors)."""
    weights = Path(directory) / WEIGHTS
    for name, want in shapes.items():
        if name not in tensors:
            raise NppacError(f"{weights}: tensor {name!r} is missing; re-run `nppac prior fit`")
        if tuple(tensors[name].shape) != want:
            raise NppacError(
                f"{weights}: tensor {name!r} has shape {tuple(tensors[name].shape)} but the dimensions in {SETTINGS} "
                f"need {want}; the two files do not belong together, re-run `nppac prior fit`"
            )


def saved_settings(prior: Any, **extra: Any) -> dict[str, Any]:
    """``settings.json`` of a fitted GP or NN prior: kind, dimensions, config, ``extra``, the fit summary."""
    return {"kind": prior.kind, "format_version": 1, "obs_dim": prior.obs_dim, "act_dim": prior.act_dim,
            "config": asdict(prior.config), **extra, "fit_seconds": prior.fit_seconds, "fit": prior.fit_info}


def read_fitted(cls: type[P], config_cls: type[Any], directory: str | Path, device: str | torch.device
                ) -> tuple[P, dict[str, Any], dict[str, torch.Tensor]]:
    """An unfitted ``cls`` built from a saved prior's settings (:func:`read_saved`: its config typed as declared,
    on ``device``, keys the config no longer has ignored), the settings and the tensors."""
    settings, tensors = read_saved(directory, cls.kind)
    known = {f.name for f in fields(config_cls)}
    with typed_in(Path(directory) / SETTINGS, "config."):
        config = config_cls(**{k: v for k, v in settings.get("config", {}).items() if k in known})
    config.device = str(device)
    return cls(config, int(settings["obs_dim"]), int(settings["act_dim"])), settings, tensors


def loaded(prior: P, settings: dict[str, Any], directory: str | Path, device: str | torch.device) -> P:
    """A prior read by :func:`read_fitted`, with its fit summary, on ``device``, once its parameters pass its
    ``check_parameters``."""
    prior.fit_seconds, prior.fit_info = settings.get("fit_seconds"), settings.get("fit", {})
    prior.to(device).check_parameters(Path(directory) / WEIGHTS)
    return prior
