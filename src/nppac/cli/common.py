"""Small helpers shared by the CLI modules."""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np


def _default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def emit_json(obj: Any) -> None:
    """Print one JSON document on stdout (and nothing else)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=_default) + "\n")
    sys.stdout.flush()


def to_json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=_default)
