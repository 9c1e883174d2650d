"""Replications: runs of identical settings are one cell, whichever suite folder holds them.

Two runs replicate one cell when their configurations (``config.json``, completed as older runs ran:
:func:`nppac.training.config.migrate`) are equal apart from the seed, where they ran (``device``,
``num_threads``), the path of the prior they read (the fit is fixed by the demonstrations and prior settings,
which are compared) and the folders of their input files (compared by file name). The code that ran is not
compared (older runs do not record it): compare two suites' step-0 columns before reading a pooled cell.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nppac.errors import NppacError
from nppac.training.config import PATH_FIELDS, migrate
from nppac.training.rundir import RunDir

LOCATION_FIELDS: tuple[str, ...] = ("seed", "device", "num_threads", "prior")
"""Fields that say where or on what a run ran, or which of its replications it is: not compared."""


def setting_key(config: Mapping[str, Any]) -> str:
    """The settings of a run (its ``config.json``) that replications share, as one canonical string."""
    filled = migrate(dict(config))
    kept = {k: v for k, v in filled.items() if k not in LOCATION_FIELDS}
    for name in PATH_FIELDS:
        if kept.get(name):
            kept[name] = Path(str(kept[name])).name
    return json.dumps(kept, sort_keys=True, default=str)


def cell_setting_key(runs: Iterable[Path]) -> str | None:
    """The settings the runs of one suite column share (None when they differ or a config.json is missing)."""
    try:
        configs = [RunDir(run).config() for run in runs]
    except NppacError:
        return None
    keys = {setting_key(config) for config in configs}
    return keys.pop() if len(keys) == 1 else None


def differing_settings(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The compared settings in which two runs' configs differ: name → (a's value, b's value)."""
    left, right = json.loads(setting_key(a)), json.loads(setting_key(b))
    return {k: (left.get(k), right.get(k)) for k in sorted(set(left) | set(right)) if left.get(k) != right.get(k)}
