"""The lock beside an output directory: exclusive, re-entrant, named by its holder, and gone once released."""

from __future__ import annotations

import fcntl
import os

from nppac.outputs import DirectoryLock


def test_a_released_lock_leaves_no_file_and_can_be_taken_again(tmp_path):
    out = tmp_path / "run"
    with DirectoryLock(out) as lock:
        assert lock.acquired and (tmp_path / ".run.lock").read_text() == f"{os.getpid()}\n"
        with DirectoryLock(out) as inner:  # re-entrant: the inner release keeps the outer lock
            assert inner.acquired
        assert (tmp_path / ".run.lock").exists()
    assert not (tmp_path / ".run.lock").exists()
    with DirectoryLock(out) as again:
        assert again.acquired
    assert list(tmp_path.iterdir()) == []


def test_a_lock_held_elsewhere_is_busy_names_its_holder_and_stays(tmp_path):
    path = tmp_path / ".run.lock"
    with path.open("w") as held:  # another holder (its own open file, as another process would have)
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242\n")
        held.flush()
        with DirectoryLock(tmp_path / "run") as lock:
            assert not lock.acquired and lock.holder == 4242
        assert path.read_text() == "4242\n"


def test_a_file_removed_by_the_holder_it_waited_on_is_not_the_lock(tmp_path, monkeypatch):
    """Between opening the file and locking it, the previous holder released it and removed it: the lock is
    taken on the file now at the path, not on the removed one (which would let two processes hold it)."""
    path = tmp_path / ".run.lock"
    real_flock = fcntl.flock
    calls = []

    def flock_after_the_holder_left(fd, op):
        if not calls:
            os.unlink(path)  # the previous holder's release
        calls.append(fd)
        return real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock_after_the_holder_left)
    with DirectoryLock(tmp_path / "run") as lock:
        assert lock.acquired and len(calls) == 2
        assert os.path.samestat(os.fstat(lock.fd), os.stat(path))
    assert not path.exists()
