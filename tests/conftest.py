"""Shared fixtures: paths to the optional published data and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("NPPAC_SHARED_DATA", REPO.parent / "shared" / "data"))
PEN_FILE = SHARED_DATA / "pen2_sparse.npy"
DOOR_FILE = SHARED_DATA / "door-v0_demos.pickle"


@pytest.fixture
def pen_file() -> Path:
    """The published pen-binary demonstrations; tests using it skip when absent."""
    if not PEN_FILE.exists():
        pytest.skip(f"published pen set not found at {PEN_FILE}")
    return PEN_FILE


@pytest.fixture
def door_file() -> Path:
    """The published DAPG door demonstrations (dense reward); tests using it skip when absent."""
    if not DOOR_FILE.exists():
        pytest.skip(f"published door set not found at {DOOR_FILE}")
    return DOOR_FILE


def run_cli(*args: str, check: bool = False, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``nppac ARGS`` in a subprocess, capturing stdout and stderr as text."""
    proc = subprocess.run(
        [sys.executable, "-m", "nppac", *args], capture_output=True, text=True, cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"nppac {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc
