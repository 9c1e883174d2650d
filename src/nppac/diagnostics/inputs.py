"""What the diagnostics read: demonstration states and saved priors, with readable labels."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nppac.errors import NppacError

_DETAIL_KEYS = ("kernel", "head", "variant")
"""Settings that tell priors of one kind apart, shown beside the kind in panel titles."""


@dataclass(frozen=True)
class LabelledPrior:
    """A prior with the label its panel or line is drawn under."""

    label: str
    """E.g. ``GP (matern52) · prior_gp``."""
    prior: Any
    """Anything with ``predict(states) -> (mean, std)``, ``kind``, ``obs_dim`` and ``act_dim``."""
    source: str = ""
    """Where it was loaded from (empty for priors built in memory)."""


def prior_label(kind: str, directory: Path) -> str:
    """``KIND (details) · dirname``, the details (:data:`_DETAIL_KEYS`) read from ``directory/settings.json``, flat
    or nested one level (``{"config": {...}}``)."""
    try:
        settings = json.loads((directory / "settings.json").read_text())
    except (OSError, ValueError):
        settings = None
    scopes = [settings, *(v for v in settings.values() if isinstance(v, dict))] if isinstance(settings, dict) else []
    details: list[str] = []
    for key in _DETAIL_KEYS:
        for scope in scopes:
            value = scope.get(key)
            if isinstance(value, str) and value not in details:
                details.append(value)
                break
    return kind.upper() + (f" ({', '.join(details)})" if details else "") + f" · {directory.name}"


VARIANCE_CHOICES = ("exact", "love", "both")
"""Which GP variance the diagnostics draw: exact, LOVE's (the published code's), or each GP once with each."""


def load_labelled_priors(directories: Sequence[str | Path], variance: str = "exact") -> list[LabelledPrior]:
    """Load each saved prior (``nppac.priors.load_prior``) and label it.

    ``variance`` (:data:`VARIANCE_CHOICES`) sets a GP's σ0 estimate; with "both" each GP
    appears twice, its LOVE copy labelled "(LOVE)". Priors without a GP σ0 appear once.
    """
    from nppac.priors import load_prior, use_variance

    if variance not in VARIANCE_CHOICES:
        raise NppacError(f"--variance {variance!r}; choose one of: {', '.join(VARIANCE_CHOICES)}")
    loaded = []
    for directory in directories:
        directory = Path(directory)
        if not directory.is_dir():
            raise NppacError(
                f"prior directory {directory} does not exist; pass a directory written by `nppac prior fit`"
            )
        prior = load_prior(directory)
        label = prior_label(prior.kind, directory)
        is_gp = use_variance(prior, "love" if variance == "love" else "exact")
        loaded.append(LabelledPrior(label + (" (LOVE)" if is_gp and variance == "love" else ""), prior, str(directory)))
        if is_gp and variance == "both":
            love = load_prior(directory)
            use_variance(love, "love")
            loaded.append(LabelledPrior(label + " (LOVE)", love, str(directory)))
    return loaded


def demonstration_states(path: str | Path, allow_pickle: bool = False) -> np.ndarray:
    """(n, obs_dim) float32 states of a demonstration file in any format ``load_demos`` reads."""
    from nppac.data import load_demos

    return load_demos(path, allow_pickle=allow_pickle).states


def check_dims(states: np.ndarray, priors: Sequence[LabelledPrior], data: str | Path) -> None:
    """Fail with one line when a prior was fitted on states of another dimension."""
    for p in priors:
        if p.prior.obs_dim != states.shape[1]:
            raise NppacError(
                f"prior {p.source or p.label} expects {p.prior.obs_dim}-dim states but {data} has "
                f"{states.shape[1]}-dim states; pass the demonstrations the prior was fitted on"
            )
