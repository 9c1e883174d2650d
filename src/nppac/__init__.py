"""nppac: KL-regularized actor-critic RL with non-parametric behavioral reference policies.

The model classes (``NPPAC``, ``PPACNN``, ``NPPACNNStd``, ``SAC``, ``SACBC``, ``AWAC``, ``BC``, ``Model``)
and ``fit_prior`` are imported on first use (:mod:`nppac.api`), so that ``import nppac`` and the CLI
start without loading torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = ("Model", "NPPAC", "PPACNN", "NPPACNNStd", "SAC", "SACBC", "AWAC", "BC", "MODELS", "fit_prior")
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        from nppac import api

        return getattr(api, name)
    raise AttributeError(f"module 'nppac' has no attribute {name!r}")
