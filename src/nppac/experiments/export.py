"""A suite's small outputs, copied out for sharing or committing: what its report is made from.

``export_suite(OUT, DEST)`` copies the manifest, each finished or diverged run's small files (config, progress,
status, references, provenance) and the shared priors' JSON records; checkpoints, buffers, weights and logs stay
behind. ``nppac suite report DEST`` regenerates the report from the copy alone. DEST mirrors OUT: exporting again
removes what OUT no longer calls finished or diverged. An export knows itself by its ``suite.json`` (the manifest
plus its format, the suite's fingerprint and the files it wrote; older exports by their content), and replaces
only its own files, of the same suite. Every file is copied whole, and ``suite.json`` lists every file that may
be there before any is copied.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from nppac.errors import NppacError
from nppac.experiments.runners import DONE_STATES, run_state
from nppac.experiments.suite import MANIFEST_NAME, Suite, read_manifest
from nppac.outputs import DirectoryLock, check_output_dir, copy_atomic, real_output, refuse_links, write_atomic
from nppac.training.rundir import RUN_FILES, RunDir

EXPORT_FORMAT = "nppac-suite-export"
"""The ``format`` of an export's ``suite.json``."""


def export_suite(out: str | Path, dest: str | Path) -> list[Path]:
    """Copy the small files of the suite in ``out`` to ``dest`` (new, empty, or an earlier export of the same
    suite); returns the files written."""
    out, dest = Path(out).resolve(), real_output(dest)
    if not (out / MANIFEST_NAME).exists():
        raise NppacError(f"{out} has no {MANIFEST_NAME}; pass the --out directory of `nppac suite run`")
    suite = read_manifest(out)
    if dest == out:
        raise NppacError(f"{dest} is the suite directory itself; export to another directory")
    with DirectoryLock(dest) as lock:
        if not lock.acquired:
            raise NppacError(f"{dest} is in use: {lock.busy()}; wait for it to end, or export elsewhere")
        earlier = _earlier_export(dest, suite, out)
        plan = _plan(out, suite)
        manifest = json.loads((out / MANIFEST_NAME).read_text())

        def record(files: set[str]) -> Path:
            marked = {**manifest, "format": EXPORT_FORMAT, "suite_sha256": suite.fingerprint(), "files": sorted(files)}
            return write_atomic(dest / MANIFEST_NAME, json.dumps(marked, indent=2) + "\n")

        dest.mkdir(parents=True, exist_ok=True)
        record(earlier | set(plan))  # from here on a kill leaves DEST recognizable, each of its files listed
        written = [copy_atomic(source, dest / name) for name, source in plan.items()]
        for name in sorted(earlier - set(plan)):
            _remove(dest, name)
        return [record(set(plan)), *written]


def _plan(out: Path, suite: Suite) -> dict[str, Path]:
    """What an export of ``out`` holds: its relative path → the file it is copied from."""
    sources = []
    for spec in suite.runs:
        directory = spec.directory(out)
        if run_state(directory) in DONE_STATES:
            sources += RunDir(directory).exported_files()
    if (out / "priors").is_dir():
        sources += sorted((out / "priors").rglob("*.json"))
    return {source.relative_to(out).as_posix(): source for source in sources}


def _earlier_export(dest: Path, suite: Suite, out: Path) -> set[str]:
    """The files an earlier export of ``suite`` wrote into ``dest`` (none when it is new or empty); refused in one
    line: a ``dest`` holding anything else or another suite's export, a link inside it, an unreadable manifest."""
    check_output_dir(dest, reuse=lambda d: (d / MANIFEST_NAME).is_file(), reused="an earlier export")
    if not dest.is_dir() or not any(dest.iterdir()):
        return set()
    refuse_links(dest, f"the export {dest}")
    path = dest / MANIFEST_NAME
    anew = f"export to a new destination, or delete {dest} and export again"
    try:
        found = json.loads(path.read_text())
        if not isinstance(found, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as err:
        raise NppacError(f"{path} cannot be read ({err}), so {dest} cannot be told from any other folder; "
                         f"if it is an earlier export, delete it and export again; else choose a new destination"
                         ) from None
    if found.get("format") == EXPORT_FORMAT:
        files, fingerprint = found.get("files"), found.get("suite_sha256")
        if not (isinstance(files, list) and all(isinstance(f, str) and _inside(f) for f in files)):
            raise NppacError(f"{path}: its list of exported files is damaged; {anew}")
    else:  # written before exports recorded themselves: recognized by holding nothing an export does not write
        files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file() and p != path)
        foreign = [f for f in files if not _exported(f) and not _reported(f)]
        if foreign:
            raise NppacError(f"{dest} holds {foreign[0]}, which an export does not write: it is not an earlier "
                             "export; choose a new destination")
        files = [f for f in files if _exported(f)]
        try:
            fingerprint = read_manifest(dest).fingerprint()
        except NppacError as err:
            raise NppacError(f"{err}; so {dest} is not recognizable as an earlier export: {anew}") from None
    if fingerprint != suite.fingerprint():
        raise NppacError(f"{dest} holds an export of suite {found.get('name')!r} whose runs or settings differ from "
                         f"those of {out}'s suite {suite.name!r}; {anew}")
    return set(files)


def _inside(name: str) -> bool:
    """Whether a recorded file name stays inside the export (relative, no ``..``)."""
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts


def _exported(name: str) -> bool:
    """Whether an export writes a file of this name: a run's file, or a shared prior's JSON record."""
    parts = PurePosixPath(name).parts
    return ((len(parts) == 4 and parts[2].startswith("seed-") and parts[3] in RUN_FILES)
            or (len(parts) > 1 and parts[0] == "priors" and name.endswith(".json")))


def _reported(name: str) -> bool:
    """Whether ``nppac suite report`` writes a file of this name into a suite directory (kept by an export)."""
    parts = PurePosixPath(name).parts
    return name in ("report.md", "report.json") or (len(parts) == 2 and parts[0] == "figures"
                                                     and name.endswith(".png"))


def _remove(dest: Path, name: str) -> None:
    """Remove a file an earlier export wrote, then the folders that it leaves empty (``dest`` holds no links)."""
    path = dest / name
    path.unlink(missing_ok=True)
    for folder in path.parents:
        if folder == dest or not folder.is_dir() or any(folder.iterdir()):
            break
        folder.rmdir()
