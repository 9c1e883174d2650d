"""Where a run's code came from, and every time it was started or resumed (``provenance.json``).

A long run may be killed and resumed, possibly by a later version of the code: ``provenance.json`` keeps one entry
per start of ``train`` (when, where, nppac's version and git commit with whether the checkout had local changes, and
the epoch and env step it picked up at).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from functools import cache
from pathlib import Path
from typing import Any

from nppac.training.rundir import PROVENANCE_NAME, RunDir


@cache
def code_version() -> dict[str, Any]:
    """nppac's version, and the git commit of the checkout it is imported from (None outside one)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed: str | None = version("nppac")
    except PackageNotFoundError:
        installed = None
    source = Path(__file__).resolve().parent
    commit: str | None = None
    dirty: bool | None = None
    try:
        commit = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip() or None
        if commit is not None:
            status = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10, check=True).stdout
            dirty = bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {"nppac": installed, "commit": commit, "dirty": dirty}


def resumes(directory: str | Path) -> int:
    """How many times the run in ``directory`` was resumed after its first start."""
    return max(0, len(RunDir(directory).provenance()["starts"]) - 1)


def record_start(directory: str | Path, epoch: int, env_steps: int) -> None:
    """Append this start of the run (time, host, code, where it picks up) to its ``provenance.json``, atomically."""
    run = RunDir(directory)
    record = run.provenance()
    record["starts"].append({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": socket.gethostname(),
                             "pid": os.getpid(), "code": code_version(), "epoch": epoch, "env_steps": env_steps})
    run.write(PROVENANCE_NAME, record)
