"""Where results go: output paths checked before any work (a clash fails in a second, not after an hour of
fitting), files replaced whole (:func:`atomic_file`: a reader, or a crash, never meets half a file), one writer per
run directory whatever link leads to it (:class:`DirectoryLock`), and no deleting through links (:func:`refuse_links`).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import inspect
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from nppac.errors import NppacError

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def check_output_file(path: PathLike, suffixes: str | tuple[str, ...], make_folders: bool = False) -> Path:
    """``path`` once it can be written as a file ending in one of ``suffixes`` (an existing file is replaced whole).
    Its folder must exist and be writable, unless ``make_folders``: then the nearest existing folder above it."""
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


def check_output_dir(path: PathLike, reuse: Callable[[Path], bool] | None = None, reused: str = "") -> Path:
    """``path`` once it can become an output directory: missing (the nearest existing folder above it writable),
    empty, or passing ``reuse`` (an earlier result of the same command, which ``reused`` names in the refusal)."""
    out = Path(path)
    real_output(out)
    if out.exists() and not out.is_dir():
        raise NppacError(f"{out} is a file; the output must be a directory (a new or empty one)")
    if out.is_dir():
        if any(out.iterdir()) and not (reuse is not None and reuse(out)):
            other = f", and it is not {reused}" if reused else ""
            raise NppacError(f"{out} exists and is not empty{other}; choose a new directory or empty this one")
        _check_writable(out, out)
    else:
        _check_writable(out, _nearest_existing(out.parent))
    return out


def real_output(path: PathLike) -> Path:
    """``path`` with its symbolic links resolved: what a command locks, writes and deletes is the place itself,
    whichever link led to it. A link to a place that does not exist is refused in one line."""
    out = Path(path)
    if out.is_symlink() and not out.exists():
        raise NppacError(f"{out} is a symbolic link to {os.readlink(out)}, which does not exist; "
                         "create that directory or choose another output")
    return out.resolve()


@contextmanager
def atomic_file(path: PathLike) -> Iterator[IO[bytes]]:
    """Write ``path`` through a temporary sibling that replaces it only once complete, with the permissions a plain
    ``open`` gives (not mkstemp's 0600)."""
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


def write_atomic(path: PathLike, data: str | bytes) -> Path:
    """Replace ``path`` whole with ``data`` (text is UTF-8) through :func:`atomic_file`: a kill leaves the old
    file or the new one, and two writers never share a temporary file."""
    with atomic_file(path) as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return Path(path)


def copy_atomic(source: PathLike, target: PathLike) -> Path:
    """Copy ``source`` over ``target`` through :func:`atomic_file` (folders created)."""
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as src, atomic_file(target) as f:
        shutil.copyfileobj(src, f)
    return Path(target)


def refuse_links(directory: PathLike, what: str = "the output") -> None:
    """Refuse, in one line, a symbolic link anywhere below ``directory``: writing or deleting through it would
    touch what lies outside the directory a command owns."""
    for root, dirs, files in os.walk(directory):
        for name in sorted([*dirs, *files]):
            link = Path(root) / name
            if link.is_symlink():
                raise NppacError(f"{link} is a symbolic link (to {os.readlink(link)}); nppac does not write or delete "
                                 f"through links inside {what}: remove the link, or choose another directory")


class DirectoryLock:
    """An exclusive, non-blocking ``flock`` on ``.NAME.lock`` beside the directory's real path ``NAME``.

    The OS releases it however its holder ends (a kill included); one that ends normally also removes the file. The
    holder's pid in the file names it to a process turned away (:attr:`holder`). Re-entrant within a process (a suite
    run holds its run's lock and calls ``train``). Where the filesystem has no locks (some network mounts) or the file
    cannot be created, the work goes on without one.
    """

    _held: dict[Path, int] = {}
    """Lock files this process holds → how many times it entered them."""

    def __init__(self, directory: PathLike) -> None:
        directory = Path(directory).resolve()  # every path to the directory, links included, takes the same lock
        self.path = directory.with_name(f".{directory.name}.lock")
        self.key = self.path.absolute()
        self.fd: int | None = None
        self.acquired = False
        self.holder: int | None = None
        """The pid written by the process holding the lock, when another one does."""

    def __enter__(self) -> DirectoryLock:
        if self.key in self._held:
            self._held[self.key] += 1
            self.acquired = True
            return self
        while True:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o666)
            except OSError as err:  # a read-only or missing folder: the checks of the work itself report it
                log.debug("cannot create the lock %s (%s); going on without it", self.path, err)
                self.acquired = True
                return self
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.holder = _read_pid(fd)
                os.close(fd)
                return self
            except OSError as err:
                log.debug("cannot lock %s (%s); going on without a lock", self.path, err)
                os.close(fd)
                self.acquired = True
                return self
            if _same_file(fd, self.path):
                break
            # The holder we waited on removed the file on release: lock the one now at the path instead.
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd, self.acquired = fd, True
        self._held[self.key] = 1
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.acquired or self.key not in self._held:
            return
        self._held[self.key] -= 1
        if self._held[self.key] == 0:  # the outermost entry, which opened the file: closing it unlocks
            del self._held[self.key]
            if self.fd is not None:
                # Removed while still held, so that no lock file is left beside the output; a process that
                # opened it meanwhile sees it is gone once it gets the lock, and takes a new one.
                with contextlib.suppress(OSError):
                    if _same_file(self.fd, self.path):
                        self.path.unlink()
                os.close(self.fd)

    def busy(self) -> str:
        """Who holds the lock, as words for a message."""
        who = f"process {self.holder}" if self.holder is not None else "another process"
        return f"{who} holds {self.path}"


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is still the file at ``path``."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None


def one_writer(argument: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a function that writes into the directory passed as ``argument``: each call holds its
    :class:`DirectoryLock`, and a call while another process holds it raises :class:`NppacError`."""
    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def locked(*args: Any, **kwargs: Any) -> Any:
            directory = Path(signature.bind(*args, **kwargs).arguments[argument])
            with DirectoryLock(directory) as lock:
                if not lock.acquired:
                    raise NppacError(f"{directory} is in use: {lock.busy()} and is writing into it; wait for it "
                                     "to end (or stop it) before training there, or choose another --out")
                return func(*args, **kwargs)
        return locked
    return decorate


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


def content_hash(path: Path) -> str:
    """sha256 of a file, or of every file below a directory (a Minari dataset), names included."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def relative_link(path: Path | None, relative_to: Path | None) -> str | None:
    """``path`` as a report names it: relative to the report's directory ``relative_to`` when given."""
    if path is None:
        return None
    return os.path.relpath(path, relative_to) if relative_to else str(path)
