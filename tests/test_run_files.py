"""A run described in a file: ``nppac train --config run.toml`` and reruns of a past run's config.json."""

from __future__ import annotations

import json

import pytest

from nppac.errors import NppacError
from nppac.training import TrainConfig
from tests.conftest import run_cli

RUN_TOML = """\
task = "hopper"
algo = "sac"
seed = 3
steps = 300
demos = "demos/hopper.npz"

[settings]
steps_per_epoch = 150
updates_per_epoch = 20
warmup_steps = 150
eval_episodes = 1
horizon = 40
batch_size = 32
actor_hidden = [32, 32]
critic_hidden = [32, 32]
"""


def test_a_toml_run_file_reads_like_a_suite_cell(tmp_path):
    (tmp_path / "run.toml").write_text(RUN_TOML + "auto_alpha = true\n")
    cfg, given = TrainConfig.from_file(tmp_path / "run.toml")
    assert (cfg.task, cfg.algo, cfg.seed, cfg.steps, cfg.updates_per_epoch, cfg.actor_hidden, cfg.auto_alpha) == \
        ("hopper", "sac", 3, 300, 20, (32, 32), True)
    assert cfg.demos == str(tmp_path / "demos/hopper.npz")
    assert {"task", "algo", "updates_per_epoch"} <= given
    (tmp_path / "awac.toml").write_text('task = "hopper"\nalgo = "awac"\n[settings]\nlam = 0.3\n')
    assert TrainConfig.from_file(tmp_path / "awac.toml")[0].algo_settings == {"lam": 0.3}


@pytest.mark.parametrize("text, message", [
    ('task = "hopper"\nstepz = 3\n', "unknown config key 'stepz'"),
    ('task = "hopper"\nsteps = "many"\n', "steps = 'many': expected a whole number"),
    ('task = "hopper"\nalgo = "sac"\nlam = 0.3\n', "unknown config key 'lam' for algo sac"),
    ('task = "hopper"\n[settings]\n[settings.steps]\nx = 1\n', r"steps = \{'x': 1\}: expected a whole number"),
    ('task = "hopper\n', "cannot read run file"),
])
def test_a_bad_run_file_is_refused_in_one_line(tmp_path, text, message):
    (tmp_path / "run.toml").write_text(text)
    with pytest.raises(NppacError, match=message):
        TrainConfig.from_file(tmp_path / "run.toml")


def test_train_from_a_file_with_overrides_and_rerun_a_past_run_with_another_seed(tmp_path):
    (tmp_path / "run.toml").write_text(RUN_TOML.replace('demos = "demos/hopper.npz"\n', ""))
    run_cli("train", "--config", str(tmp_path / "run.toml"), "--set", "updates_per_epoch=10", "--quiet",
            "--out", str(tmp_path / "a"), check=True)
    first = json.loads((tmp_path / "a" / "config.json").read_text())
    assert (first["task"], first["seed"], first["updates_per_epoch"], first["horizon"]) == ("hopper", 3, 10, 40)
    run_cli("train", "--config", str(tmp_path / "a" / "config.json"), "--seed", "5", "--steps", "150", "--quiet",
            "--out", str(tmp_path / "b"), check=True)
    second = json.loads((tmp_path / "b" / "config.json").read_text())
    assert {k for k in first if first[k] != second[k]} == {"seed", "steps"}
    proc = run_cli("train", "--config", str(tmp_path / "run.toml"), "--set", "stepz=1", "--out", str(tmp_path / "c"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "stepz" in proc.stderr


def test_resume_finds_its_demonstrations_from_anywhere_and_refuses_changed_ones(tmp_path):
    from nppac.data import save_npz
    from tests.builders import tiny_demos

    work = tmp_path / "work"
    work.mkdir()
    save_npz(tiny_demos(), work / "demos.npz")
    (work / "run.toml").write_text(RUN_TOML.replace('task = "hopper"', 'task = "halfcheetah"')
                                   .replace('algo = "sac"', 'algo = "sac-bc"')
                                   .replace('demos = "demos/hopper.npz"\n', ""))
    run_cli("train", "--config", "run.toml", "--demos", "demos.npz", "--steps", "150", "--quiet", "--out", "run",
            cwd=work, check=True)
    record = json.loads((work / "run" / "inputs.json").read_text())["demos"]
    assert record["path"] == str((work / "demos.npz").resolve())
    # From another working directory the relative path does not exist; the recorded one is used.
    run_cli("train", "--resume", "--steps", "300", "--quiet", "--out", str(work / "run"), cwd=tmp_path, check=True)
    save_npz(tiny_demos(seed=1), work / "demos.npz")
    proc = run_cli("train", "--resume", "--steps", "450", "--quiet", "--out", str(work / "run"), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "is not the file it started from" in proc.stderr


def _progress_run(tmp_path, text: str):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"algo": "nppac"}))
    (run / "progress.csv").write_text(text)
    return run


HEADER = "phase,epoch,env_steps,wall_s,eval_return,target_kl\n"  # target_kl: an earlier version's name


def test_every_reader_of_progress_reads_the_same_complete_rows_under_todays_names(tmp_path):
    from nppac.diagnostics.curves import load_run
    from nppac.experiments.runners import completed_epochs, measured_pace
    from nppac.experiments.tables.runs import read_rows
    from nppac.training.logger import current_column_names
    from nppac.training.rundir import RunDir

    whole = HEADER + "init,0,0,10,1.0,\nonline,1,100,20,2.0,0.5\nonline,2,200,30,3.0,0.7\n"
    run = _progress_run(tmp_path, whole + "online,3,300,4")  # the last row cut by a kill
    names, rows = RunDir(run).progress()
    assert names == current_column_names(HEADER.strip().split(","), True)
    assert "target_kl" not in names and "next_kl_mean" in names
    assert [r["epoch"] for r in rows] == ["0", "1", "2"] and read_rows(run) == rows
    assert completed_epochs(run) == 2 and measured_pace(run).epochs == 2
    with pytest.raises(NppacError, match="progress.csv is cut or edited: line 5 has 4 of 6 fields"):
        load_run(run)
    (run / "progress.csv").write_text(whole.replace("online,1,100,20,2.0,0.5", "online,1,100,20"))
    assert [r["epoch"] for r in RunDir(run).progress()[1]] == ["0", "2"]
    with pytest.raises(NppacError, match="line 3 has 4 of 6 fields"):
        RunDir(run).progress(strict=True)
    (run / "progress.csv").unlink()
    assert RunDir(run).progress() == ([], []) and completed_epochs(run) == 0 and measured_pace(run) is None
