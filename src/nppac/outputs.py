"""Where results go: output paths checked before any work, files replaced whole.

Every command that writes checks its output first, so a clash (a directory where a
file is due, an existing file where a directory is due, a missing or read-only
folder) fails in a second, not after an hour of fitting. Files are written to a
temporary sibling and renamed (:func:`atomic_file`): a reader, or a crash, never
meets half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from nppac.errors import NppacError

PathLike = str | os.PathLike[str]


def check_output_file(path: PathLike, suffixes: str | tuple[str, ...], make_folders: bool = False) -> Path:
    """``path`` as a :class:`Path` once it can be written as a file ending in one of ``suffixes``.

    An existing file is accepted (it is replaced whole); an existing directory is not.
    The folder must exist and be writable, unless ``make_folders``: then the nearest
    existing folder above it must be writable (the writer creates the rest).
    """
    out = Path(path)
    allowed = (suffixes,) if isinstance(suffixes, str) else suffixes
    if out.is_dir():
        raise NppacError(f"{out} is a directory; give a file path such as {out / ('out' + allowed[0])}")
    if out.suffix.lower() not in allowed:
        raise NppacError(f"{out}: the output file must end in {' or '.join(allowed)}")
    if make_folders:
        _check_writable(out, _nearest_existing(out.parent))
    elif not out.parent.is_dir():
        raise NppacError(f"{out}: the folder {out.parent} does not exist; create it first")
    else:
        _check_writable(out, out.parent)
    return out


def check_output_dir(path: PathLike, reuse: Callable[[Path], bool] | None = None) -> Path:
    """``path`` as a :class:`Path` once it can become an output directory.

    A missing directory is created later (the nearest existing folder above it must be
    writable); an existing one must be empty, or pass ``reuse`` (e.g. it holds an
    earlier result of the same command, which is replaced).
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise NppacError(f"{out} is a file; the output must be a directory (a new or empty one)")
    if out.is_dir():
        if any(out.iterdir()) and not (reuse is not None and reuse(out)):
            raise NppacError(f"{out} exists and is not empty; choose a new directory or empty this one")
        _check_writable(out, out)
    else:
        _check_writable(out, _nearest_existing(out.parent))
    return out


@contextmanager
def atomic_file(path: PathLike) -> Iterator[IO[bytes]]:
    """Write ``path`` through a temporary sibling that replaces it only once complete.

    The new file gets the permissions a plain ``open`` would give it (not mkstemp's 0600).
    """
    out = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _nearest_existing(folder: Path) -> Path:
    """``folder`` or its nearest existing ancestor, which must be a directory."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise NppacError(f"{candidate} is a file, so no folder can be created inside it")
            return candidate
    return Path(".")


def _check_writable(out: Path, folder: Path) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise NppacError(f"{out}: cannot write into {folder} (no permission); choose another location")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
