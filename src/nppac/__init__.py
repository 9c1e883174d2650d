"""nppac: KL-regularized actor-critic RL with non-parametric behavioral reference policies.

The model classes (``NPPAC``, ``PPACNN``, ``NPPACNNStd``, ``SAC``, ``SACBC``, ``AWAC``, ``BC``, ``Model``)
and ``fit_prior`` (:mod:`nppac.api`), ``evaluate_policy`` (:mod:`nppac.diagnostics.evaluation`),
``register_task`` (:mod:`nppac.tasks`) and ``Demonstrations`` (:mod:`nppac.data`) are imported on
first use, so that ``import nppac`` and the CLI start without loading torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = ("Model", "NPPAC", "PPACNN", "NPPACNNStd", "SAC", "SACBC", "AWAC", "BC", "MODELS", "fit_prior")
_LAZY = {**dict.fromkeys(_API, "nppac.api"), "register_task": "nppac.tasks", "Demonstrations": "nppac.data",
         "evaluate_policy": "nppac.diagnostics.evaluation"}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nppac' has no attribute {name!r}")
