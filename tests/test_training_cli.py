from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time

from tests.builders import TINY_SETS
from tests.conftest import run_cli


def _epochs(out):
    with (out / "progress.csv").open(newline="") as f:
        return [int(r["epoch"]) for r in csv.DictReader(f)]


def test_unknown_set_key_exits_2_naming_it(tmp_path):
    proc = run_cli("train", "--task", "halfcheetah", "--algo", "sac", "--out", str(tmp_path / "r"),
                   "--set", "not_a_field=3")
    assert proc.returncode == 2
    assert "'not_a_field'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()


def test_existing_dir_without_resume_and_resume_without_run_exit_2(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "progress.csv").write_text("")
    proc = run_cli("train", "--task", "halfcheetah", "--algo", "sac", "--out", str(tmp_path / "r"))
    assert proc.returncode == 2 and "--resume" in proc.stderr
    proc = run_cli("train", "--resume", "--out", str(tmp_path / "missing"))
    assert proc.returncode == 2 and "nothing to resume" in proc.stderr


def test_resume_with_a_config_it_does_not_know_names_the_file_and_key(tmp_path):
    from nppac.training import TrainConfig

    run = tmp_path / "r"
    run.mkdir()
    stored = {**TrainConfig(task="halfcheetah", algo="sac").to_dict(), "old_name": 3}
    text = json.dumps(stored)
    (run / "config.json").write_text(text)
    proc = run_cli("train", "--resume", "--out", str(run))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(run / "config.json") in lines[0] and "old_name" in lines[0]
    assert (run / "config.json").read_text() == text

def test_resume_names_each_option_it_ignores(tmp_path, monkeypatch, capsys):
    from nppac.training import TrainConfig
    from tests.builders import nppac_in_process

    run = tmp_path / "r"
    run.mkdir()
    TrainConfig(task="halfcheetah", algo="sac", steps=1000).save(run / "config.json")
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")  # refused after the note: nothing trains
    code, _, stderr = nppac_in_process(monkeypatch, capsys, "train", "--resume", "--out", str(run), "--algo", "sac",
                                       "--device", "cpu", "--set", "gamma=0.9", "--demos", "d.npz", "--quiet")
    note, error = stderr.strip().splitlines()
    assert code == 2 and error.startswith("error: ") and "checkpoint.pt" in error
    assert note.endswith("ignoring --demos d.npz, --device cpu, --set gamma=0.9 (only --steps may change)")
    assert "--algo" not in note  # the run's own algorithm, not ignored


def test_killed_run_resumes_with_each_epoch_once(tmp_path):
    from nppac.data import save_npz
    from tests.builders import tiny_demos

    demos = save_npz(tiny_demos(), tmp_path / "demos.npz")
    out = tmp_path / "run"
    # ppac-nn: the NN prior is fitted from --demos, kept in run/prior and reloaded from there on --resume.
    args = ["train", "--task", "halfcheetah", "--algo", "ppac-nn", "--demos", str(demos), "--steps", "1200",
            "--seed", "3", "--out", str(out), *TINY_SETS, "--set", "prior_iters=3", "--set", "init_epochs=1"]
    proc = subprocess.Popen([sys.executable, "-m", "nppac", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "checkpoint.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _epochs(out)
    assert 1 <= len(killed_at) < 8, "the run should be killed part-way"

    proc = run_cli("train", "--resume", "--out", str(out), "--json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["epochs"] == 8 and summary["env_steps"] == 1200
    assert _epochs(out) == list(range(0, 9))
    config = json.loads((out / "config.json").read_text())
    assert (config["seed"], config["steps"], config["actor_hidden"], config["algo"]) == (3, 1200, [32, 32], "ppac-nn")
    assert (out / "prior" / "settings.json").is_file()
