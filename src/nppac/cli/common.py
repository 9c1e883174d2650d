"""Small helpers shared by the CLI modules."""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

DEVICE = typer.Option("cpu", "--device", help="cpu or cuda.")
QUIET = typer.Option(False, "--quiet", help="No progress bar.")
"""Options several commands share."""


def _default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def to_json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=_default)


def emit_json(obj: Any) -> None:
    """Print one JSON document on stdout (and nothing else)."""
    sys.stdout.write(to_json_text(obj) + "\n")
    sys.stdout.flush()


_UNBOUNDED = 10_000
"""A width no table reaches: measured against it, a table reports its natural width."""


def print_table(table: Table) -> None:
    """Print ``table`` on stdout; piped or redirected, at its natural width, so no cell is cut short."""
    console = Console()
    if not console.is_terminal:
        natural = console.measure(table, options=console.options.update_width(_UNBOUNDED)).maximum
        console = Console(width=max(natural, console.width))
    console.print(table)


def set_threads(threads: int) -> None:
    """``--threads``: torch's CPU threads (0: torch's default)."""
    import torch

    from nppac.errors import NppacError

    if threads < 0:
        raise NppacError(f"--threads must be ≥ 0, got {threads}")
    if threads:
        torch.set_num_threads(threads)
