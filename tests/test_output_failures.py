"""Output that cannot be written ends in one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import errno
import subprocess
import sys

import numpy as np
import pytest

from nppac.data import save_npz
from tests.builders import make_demos, nppac_in_process


@pytest.mark.parametrize("code, text", [(errno.ENOSPC, "No space left on device"),
                                        (errno.EROFS, "Read-only file system")])
def test_a_full_or_read_only_disk_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys, code, text):
    rng = np.random.default_rng(0)
    save_npz(make_demos(rng.normal(size=(6, 3)), rng.uniform(-1, 1, size=(6, 2))), tmp_path / "in.npz")

    def full(demos, path):
        raise OSError(code, text, str(path))

    import nppac.cli.data

    monkeypatch.setattr(nppac.cli.data, "save_npz", full)
    status, out, err = nppac_in_process(monkeypatch, capsys, "data", "convert", str(tmp_path / "in.npz"),
                                        str(tmp_path / "out.npz"))
    assert status == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: cannot write {tmp_path / 'out.npz'}: {text}")
    assert not (tmp_path / "out.npz").exists()


def test_a_closed_stdout_or_stderr_ends_quietly_with_a_nonzero_exit():
    for redirect in (">&-", "2>&- >&-"):
        proc = subprocess.run(["bash", "-c", f"{sys.executable} -m nppac tasks --json {redirect}"],
                              capture_output=True, text=True)
        assert proc.returncode != 0 and "Traceback" not in proc.stderr


def test_a_run_trains_with_stderr_closed(tmp_path):
    """Its logs go nowhere, and gymnasium's GLFW loader (a helper process) still finds the library."""
    settings = ["steps_per_epoch=100", "warmup_steps=100", "updates_per_epoch=5", "eval_episodes=1", "horizon=20",
                "batch_size=16"]
    command = (f"{sys.executable} -m nppac train --task hopper --algo sac --steps 100 --quiet --out {tmp_path / 'run'} "
               + " ".join(f"--set {s}" for s in settings) + " 2>&-")
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    assert proc.returncode == 0 and (tmp_path / "run" / "actor.safetensors").exists()


def test_a_full_disk_at_a_checkpoint_keeps_the_last_good_one_and_the_run_resumes(tmp_path, monkeypatch, capsys):
    import nppac.training.loop as loop

    real, calls = loop.save_checkpoint, []

    def full_on_second(state, path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path) + ".tmp")
        real(state, path)

    monkeypatch.setattr(loop, "save_checkpoint", full_on_second)
    args = ["train", "--task", "hopper", "--algo", "sac", "--steps", "200", "--quiet", "--out", str(tmp_path / "run"),
            *[a for s in ("steps_per_epoch=100", "warmup_steps=100", "updates_per_epoch=5", "eval_episodes=1",
                          "horizon=20", "batch_size=16") for a in ("--set", s)]]
    status, _, err = nppac_in_process(monkeypatch, capsys, *args)
    assert status == 1 and err.count("\n") == 1 and "No space left on device" in err
    monkeypatch.setattr(loop, "save_checkpoint", real)
    status, _, err = nppac_in_process(monkeypatch, capsys, "train", "--resume", "--quiet",
                                      "--out", str(tmp_path / "run"))
    assert status == 0 and (tmp_path / "run" / "actor.safetensors").exists()


def test_a_suite_that_cannot_write_its_manifest_is_one_line(tmp_path, monkeypatch, capsys):
    from nppac.experiments.suite import Suite

    (tmp_path / "s.toml").write_text('tasks = ["hopper"]\nalgos = ["sac"]\nseeds = 1\n')

    def read_only(self, out):
        raise OSError(errno.EROFS, "Read-only file system", str(out) + "/suite.json.tmp")

    monkeypatch.setattr(Suite, "write_manifest", read_only)
    status, _, err = nppac_in_process(monkeypatch, capsys, "suite", "run", str(tmp_path / "s.toml"), "--out",
                                      str(tmp_path / "out"))
    assert status == 1 and err.count("\n") == 1 and "suite.json.tmp: Read-only file system" in err
