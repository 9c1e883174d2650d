"""The kinds of prior: ``kind`` (in a prior's ``settings.json``) → its class, its config class, its loader.

:data:`PRIOR_KINDS` holds the priors that are fitted (gp, nn); :data:`LOADERS` reads
any saved prior back, and :mod:`nppac.priors.mean_std` adds its own kinds to it
(``gp-mean-nn-std``, …), whose parts it reads through this table.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from nppac.errors import NppacError
from nppac.priors.base import Prior
from nppac.priors.common import SETTINGS, read_settings
from nppac.priors.gp import GPConfig, GPPrior
from nppac.priors.nn import NNConfig, NNPrior

PRIOR_KINDS: dict[str, tuple[type[GPPrior] | type[NNPrior], Any]] = {
    "gp": (GPPrior, GPConfig),
    "nn": (NNPrior, NNConfig),
}
"""Kind of a fitted prior → (its class, its config dataclass)."""

Loader = Callable[[str | Path, str | torch.device], Prior]

LOADERS: dict[str, Loader] = {kind: cls.load for kind, (cls, _) in PRIOR_KINDS.items()}
"""Kind in a saved prior's ``settings.json`` → the function that loads it (mean-std kinds: nppac.priors.mean_std)."""


def load_prior(directory: str | Path, device: str | torch.device = "cpu") -> Prior:
    """Load a prior saved by ``prior.save(directory)`` (kind read from settings.json)."""
    kind = read_settings(directory)["kind"]
    if kind not in LOADERS:
        raise NppacError(f"{Path(directory) / SETTINGS}: unknown prior kind {kind!r}")
    return LOADERS[kind](directory, device)
