"""A suite's small outputs, copied out for sharing or committing: what its report is made from.

``export_suite(OUT, DEST)`` copies the manifest (``suite.json``), each finished or diverged run's
``config.json``, ``progress.csv``, ``status.json``, ``references.json`` and ``provenance.json``, and the
JSON records of the shared priors (settings, fit metrics, provenance). Checkpoints,
replay buffers, weights and TensorBoard logs stay behind. DEST mirrors OUT: exporting
again into it removes what OUT no longer calls finished or diverged (a run whose
``status.json`` was deleted to retry it). ``nppac suite report DEST``
then regenerates the report from the copy alone (the other runs show as pending), and
``nppac suite run`` into a copy skips its finished and diverged runs and trains the rest from the
start: a run in progress has no checkpoint in the copy to resume from, so it is not copied.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from nppac.errors import NppacError
from nppac.experiments.runners import DONE_STATES, run_state
from nppac.experiments.suite import MANIFEST_NAME, read_manifest
from nppac.outputs import check_output_dir

RUN_FILES = ("config.json", "progress.csv", "status.json", "references.json", "provenance.json")
"""What a run's report row and figure are made from."""


def export_suite(out: str | Path, dest: str | Path) -> list[Path]:
    """Copy the small files of the suite in ``out`` to ``dest``; returns the files written.

    ``dest`` must be new, empty, or an earlier export of the same suite (made to mirror ``out``: runs that
    ``out`` does not call finished or diverged are removed from it).
    """
    out, dest = Path(out), Path(dest)
    if not (out / MANIFEST_NAME).exists():
        raise NppacError(f"{out} has no {MANIFEST_NAME}; pass the --out directory of `nppac suite run`")
    suite = read_manifest(out)
    if dest.resolve() == out.resolve():
        raise NppacError(f"{dest} is the suite directory itself; export to another directory")

    def same_suite(d: Path) -> bool:
        return (d / MANIFEST_NAME).exists() and read_manifest(d).name == suite.name

    check_output_dir(dest, reuse=same_suite)
    written = [_copy(out / MANIFEST_NAME, dest / MANIFEST_NAME)]
    done = set()
    for spec in suite.runs:
        source = spec.directory(out)
        if run_state(source) not in DONE_STATES:
            continue
        done.add(spec.directory(dest))
        for name in RUN_FILES:
            if (source / name).is_file():
                written.append(_copy(source / name, spec.directory(dest) / name))
            else:
                (spec.directory(dest) / name).unlink(missing_ok=True)
    priors = out / "priors"
    if priors.is_dir():
        for record in sorted(priors.rglob("*.json")):
            written.append(_copy(record, dest / record.relative_to(out)))
    _remove_stale(dest, done, set(written))
    return written


def _remove_stale(dest: Path, runs: set[Path], written: set[Path]) -> None:
    """Make an earlier export mirror the suite: runs the suite no longer calls finished or diverged (a
    ``status.json`` deleted to retry one, a run the manifest dropped) and prior records it no longer has."""
    for directory in sorted(dest.glob("*/*/seed-*")):
        if directory.is_dir() and directory not in runs:
            shutil.rmtree(directory)
            for parent in (directory.parent, directory.parent.parent):
                if not any(parent.iterdir()):
                    parent.rmdir()
    for record in sorted(dest.glob("priors/**/*.json")):
        if record not in written:
            record.unlink()


def _copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target
