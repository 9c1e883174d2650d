"""Commands touch only what they own: their outputs are known by content, links are resolved before locking and
never followed out of an output when deleting, and files are replaced whole."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from nppac.data import save_npz
from nppac.errors import NppacError
from nppac.experiments import export_suite, load_suite, write_report
from nppac.experiments.export import RUN_FILES
from nppac.outputs import DirectoryLock
from tests.builders import make_demos, nppac_in_process

TINY = """
steps = 300
steps_per_epoch = 100
updates_per_epoch = 20
warmup_steps = 100
eval_episodes = 1
horizon = 50
batch_size = 32
"""


def suite_file(root: Path, name: str = "s", seeds: int = 2, extra: str = "", algos: str = '["sac"]') -> Path:
    path = root / f"{name}-{seeds}{len(extra)}.toml"
    path.write_text(f'name = "{name}"\ntasks = ["hopper"]\nalgos = {algos}\nseeds = {seeds}\n[settings]{TINY}{extra}')
    return path


def finished_suite(root: Path, name: str = "s", seeds: int = 2, extra: str = "") -> Path:
    """A suite directory whose runs are all finished (their files written here, not trained)."""
    suite = load_suite(suite_file(root, name, seeds, extra))
    out = root / f"{name}-{seeds}{len(extra)}-out"
    suite.write_manifest(out)
    for spec in suite.runs:
        directory = spec.directory(out)
        directory.mkdir(parents=True)
        for file in RUN_FILES:
            (directory / file).write_text(f"{spec.key} {file}\n" * 50)
        (directory / "status.json").write_text('{"status": "finished"}\n')
    (out / "priors" / "hopper-gp-0").mkdir(parents=True)
    (out / "priors" / "hopper-gp-0" / "metrics.json").write_text("{}\n")
    return out


def snapshot(root: Path) -> dict[str, object]:
    """Every entry below ``root``, links as links: what a command must leave as it found it."""
    found: dict[str, object] = {}
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            found[key] = (("link", os.readlink(path)) if path.is_symlink() else
                          ("dir",) if path.is_dir() else ("file", path.read_bytes()))
    return found


def one_line_refusal(code: int, err: str) -> None:
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err


# ------------------------------------------------------------------ every command that writes an output folder

def _gpytorch_state_dict(path: Path) -> Path:
    """A multitask GP's state dict for 3-dim states and 2-dim actions, as `prior import` reads it."""
    task, data = "covar_module.task_covar_module.", "covar_module.data_covar_module."
    torch.save({task + "covar_factor": torch.ones(2, 1), task + "raw_var": torch.zeros(2),
                data + "raw_lengthscale": torch.zeros(1, 3), "mean_module.base_means.0.constant": torch.zeros(1),
                "mean_module.base_means.1.constant": torch.zeros(1), "likelihood.raw_task_noises": torch.zeros(2),
                "likelihood.raw_noise": torch.zeros(1)}, path)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """What the commands read: demonstrations, a gpytorch file, a suite file, a suite directory, a trained run."""
    root = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    demos = save_npz(make_demos(rng.normal(size=(20, 3)), rng.uniform(-1, 1, size=(20, 2))), root / "demos.npz")
    # ppac-nn reads demonstrations that do not exist: were the suite started, its runs would fail at once.
    toml = suite_file(root, "tiny", 1, '\n[algo.ppac-nn]\ndemos = "missing.npz"\n', algos='["ppac-nn"]')
    from nppac.training import TrainConfig, train

    run = root / "run"
    train(TrainConfig(task="hopper", algo="sac", steps=100, steps_per_epoch=100, warmup_steps=100,
                      updates_per_epoch=2, eval_episodes=1, horizon=20, batch_size=16), run, progress=False)
    return {"demos": demos, "gpytorch": _gpytorch_state_dict(root / "gp.pt"), "suite": toml,
            "suite_out": finished_suite(root, "reported", 1), "run": run}


COMMANDS = {
    "train": lambda i, o: ["train", "--task", "hopper", "--algo", "sac", "--steps", "100", "--quiet", "--out", o],
    "expert train": lambda i, o: ["expert", "train", "--task", "hopper", "--steps", "100", "--quiet", "--out", o],
    "prior fit": lambda i, o: ["prior", "fit", "--data", str(i["demos"]), "--kind", "nn", "--iters", "1", "--out", o],
    "prior import": lambda i, o: ["prior", "import", "--gpytorch", str(i["gpytorch"]), "--data", str(i["demos"]),
                                  "--kernel", "rbf", "--out", o],
    "prior combine": lambda i, o: ["prior", "combine", "--mean", str(i["run"]), "--std", str(i["run"]), "--out", o],
    "quickstart": lambda i, o: ["quickstart", "--task", "hopper", "--steps", "100", "--quiet", "--out", o],
    "suite run": lambda i, o: ["suite", "run", str(i["suite"]), "--out", o, "--quiet"],
    "suite report": lambda i, o: ["suite", "report", str(i["suite_out"]), "--out", f"{o}/report.md"],
    "suite export": lambda i, o: ["suite", "export", str(i["suite_out"]), o],
    "expert export": lambda i, o: ["expert", "export", "--run", str(i["run"]), "--out", f"{o}/expert.safetensors"],
}
"""Each command that writes into a folder, given its inputs and that folder."""

FOREIGN = {"settings.json": '{"mine": true}\n', "metrics.json": "{}\n", "config.json": '{"mine": true}\n',
           "suite.json": '{"name": "tiny"}\n', "report.md": "# my notes\n", "report.json": "{}\n",
           "expert.json": '{"mine": true}\n', "notes.txt": "keep\n", "figures/hopper.png": "not a figure\n"}
"""A user's folder holding files of the names the commands write."""


@pytest.mark.parametrize("place", ["folder", "link to it", "link to nothing"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_no_command_writes_into_a_folder_it_does_not_own(command, place, inputs, tmp_path, monkeypatch, capsys):
    """A user's folder, a link to it and a link to a missing place are refused in one line, and nothing in
    them, or where the links lead, changes."""
    world = tmp_path / "world"
    for name, text in FOREIGN.items():
        (world / "mine" / name).parent.mkdir(parents=True, exist_ok=True)
        (world / "mine" / name).write_text(text)
    (world / "link").symlink_to(world / "mine")
    (world / "nowhere").symlink_to(world / "missing")
    out = {"folder": world / "mine", "link to it": world / "link", "link to nothing": world / "nowhere"}[place]
    before = snapshot(world)
    code, _, err = nppac_in_process(monkeypatch, capsys, *COMMANDS[command](inputs, str(out)))
    one_line_refusal(code, err)
    assert snapshot(world) == before


# ------------------------------------------------------------------ locks

def test_a_link_to_a_run_takes_the_runs_own_lock(tmp_path, monkeypatch, capsys):
    """Two trainers cannot share a run through a link: both lock the directory the link leads to."""
    (tmp_path / "run").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "run")
    with (tmp_path / ".run.lock").open("w") as held:  # another process trains into run
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242\n")
        held.flush()
        with DirectoryLock(tmp_path / "link") as lock:
            assert not lock.acquired and lock.holder == 4242
        code, _, err = nppac_in_process(monkeypatch, capsys, "train", "--task", "hopper", "--algo", "sac", "--steps",
                                        "100", "--set", "steps_per_epoch=100", "--out", str(tmp_path / "link"))
    one_line_refusal(code, err)
    assert "process 4242" in err and not (tmp_path / ".link.lock").exists() and not any((tmp_path / "run").iterdir())


def _save_checkpoint(path: Path) -> None:
    from nppac.training.checkpoint import save_checkpoint

    save_checkpoint({"x": torch.ones(1)}, path / "checkpoint.pt")


def _write_manifest(path: Path) -> None:
    load_suite(suite_file(path.parent)).write_manifest(path)


def _write_status(path: Path) -> None:
    from nppac.training.rundir import RunDir

    RunDir(path).write_status({"status": "finished"})


def _write_references(path: Path) -> None:
    from nppac.training.rundir import REFERENCES_NAME, RunDir

    RunDir(path).write(REFERENCES_NAME, {"demos": 1.0})


def _record_start(path: Path) -> None:
    from nppac.training.provenance import record_start

    record_start(path, 0, 0)


@pytest.mark.parametrize("write, name", [(_save_checkpoint, "checkpoint.pt"), (_write_manifest, "suite.json"),
                                         (_write_status, "status.json"), (_write_references, "references.json"),
                                         (_record_start, "provenance.json")])
def test_files_are_replaced_through_a_temporary_file_of_their_own(write, name, tmp_path):
    """A temporary name shared by every writer (another writer's, or one a killed writer left) is not in the
    way: each write has its own."""
    (tmp_path / "run").mkdir()
    write(tmp_path / "run")
    (tmp_path / "run" / f"{name}.tmp").mkdir()
    write(tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted([name, f"{name}.tmp"])
    assert (tmp_path / "run" / name).is_file()


# ------------------------------------------------------------------ suite export

def test_an_export_records_itself_and_replaces_only_what_it_wrote(tmp_path):
    out = finished_suite(tmp_path)
    dest = tmp_path / "export"
    export_suite(out, dest)
    record = json.loads((dest / "suite.json").read_text())
    assert record["format"] == "nppac-suite-export" and record["name"] == "s" and len(record["suite_sha256"]) == 64
    assert "hopper/sac/seed-1/progress.csv" in record["files"] and "suite.json" not in record["files"]
    (dest / "hopper/sac/seed-1/notes.txt").write_text("mine")
    (out / "hopper/sac/seed-1/status.json").unlink()  # to retry it: the export drops it, but not the notes
    export_suite(out, dest)
    assert [p.name for p in (dest / "hopper/sac/seed-1").iterdir()] == ["notes.txt"]
    assert "hopper/sac/seed-1/progress.csv" not in json.loads((dest / "suite.json").read_text())["files"]


def test_an_export_of_another_suite_of_the_same_name_is_refused(tmp_path, monkeypatch, capsys):
    dest = tmp_path / "export"
    export_suite(finished_suite(tmp_path, seeds=2), dest)
    before = snapshot(dest)
    other = finished_suite(tmp_path, seeds=1, extra="\nactor_hidden = [8, 8]\n")  # same name, other runs
    code, _, err = nppac_in_process(monkeypatch, capsys, "suite", "export", str(other), str(dest))
    one_line_refusal(code, err)
    assert "runs or settings differ" in err and snapshot(dest) == before


def test_an_export_written_before_it_recorded_itself_is_recognized_by_its_content(tmp_path):
    out = finished_suite(tmp_path)
    dest = tmp_path / "export"
    export_suite(out, dest)
    record = json.loads((dest / "suite.json").read_text())
    (dest / "suite.json").write_text((out / "suite.json").read_text())  # as earlier versions copied it
    (dest / "report.md").write_text("# Suite report: s\n")  # a report made from the copy stays
    (dest / "hopper/sac/seed-1/status.json").write_text("old")
    assert export_suite(out, dest)
    assert json.loads((dest / "suite.json").read_text())["files"] == record["files"]
    assert (dest / "hopper/sac/seed-1/status.json").read_text() == '{"status": "finished"}\n'
    assert (dest / "report.md").exists()
    (dest / "suite.json").write_text((out / "suite.json").read_text())
    (dest / "hopper/sac/seed-1/checkpoint.pt").write_text("weights")  # a suite's own output, not an export
    with pytest.raises(NppacError, match="holds hopper/sac/seed-1/checkpoint.pt, which an export does not write"):
        export_suite(out, dest)
    with pytest.raises(NppacError, match="runs or settings differ"):  # another suite's own output
        export_suite(out, finished_suite(tmp_path, seeds=1))


@pytest.mark.parametrize("link", ["hopper", "hopper/sac/seed-1", "hopper/sac/seed-9"])
def test_an_export_follows_no_link_inside_it(link, tmp_path, monkeypatch, capsys):
    """A task or run folder of an earlier export replaced by a link (to a user's folder, or to nothing) is
    refused in one line; neither the user's folder nor the export changes."""
    out = finished_suite(tmp_path)
    dest = tmp_path / "export"
    export_suite(out, dest)
    mine = tmp_path / "mine"
    for file in ("sac/seed-0/progress.csv", "sac/seed-1/progress.csv", "sac/seed-5/progress.csv"):
        (mine / file).parent.mkdir(parents=True, exist_ok=True)
        (mine / file).write_text("my run")
    if link == "hopper":
        os.rename(dest / "hopper", tmp_path / "moved")
        (dest / "hopper").symlink_to(mine)
    else:  # a stale link, where a run was or where none was
        if (dest / link).exists():
            os.rename(dest / link, tmp_path / "moved")
        (dest / link).symlink_to(tmp_path / "gone")
    before = snapshot(tmp_path)
    code, _, err = nppac_in_process(monkeypatch, capsys, "suite", "export", str(out), str(dest))
    one_line_refusal(code, err)
    assert f"{dest / link} is a symbolic link" in err and snapshot(tmp_path) == before


def test_a_cut_suite_json_in_an_export_gets_advice_about_the_export(tmp_path, monkeypatch, capsys):
    out = finished_suite(tmp_path)
    dest = tmp_path / "export"
    export_suite(out, dest)
    text = (dest / "suite.json").read_text()
    (dest / "suite.json").write_text(text[: len(text) // 2])
    code, _, err = nppac_in_process(monkeypatch, capsys, "suite", "export", str(out), str(dest))
    one_line_refusal(code, err)
    assert "delete it and export again" in err and "suite run" not in err


KILLED_EXPORT = """
import os, shutil, signal, sys

copies = 0

def killed_while_copying(copy):
    def copy_or_die(*args, **kwargs):
        global copies
        copies += 1
        if copies == {at}:
            os.kill(os.getpid(), signal.SIGKILL)  # as `kill -9` would, while a file is being copied
        return copy(*args, **kwargs)
    return copy_or_die

# Every way a file's bytes are copied: the kernel's copy (shutil.copyfile) and a copy through Python.
os.sendfile = killed_while_copying(os.sendfile)
shutil.copyfileobj = killed_while_copying(shutil.copyfileobj)
from nppac.experiments import export_suite
export_suite(sys.argv[1], sys.argv[2])
"""


@pytest.mark.parametrize("at", [3, 7])
def test_a_killed_export_leaves_whole_files_and_the_next_export_completes_it(at, tmp_path):
    out = finished_suite(tmp_path)
    dest = tmp_path / "export"
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED_EXPORT.replace("{at}", str(at))), str(out),
                           str(dest)], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    for path in dest.rglob("*"):
        if path.is_file() and not path.name.startswith(".") and path.name != "suite.json":
            assert path.read_bytes() == (out / path.relative_to(dest)).read_bytes(), path
    export_suite(out, dest)
    copied = {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file() and not p.name.startswith(".")}
    assert copied == {"suite.json", "priors/hopper-gp-0/metrics.json",
                      *(f"hopper/sac/seed-{s}/{f}" for s in (0, 1) for f in RUN_FILES)}


# ------------------------------------------------------------------ suite run and report

def test_suite_run_refuses_a_folder_that_is_no_suites_output(tmp_path, monkeypatch, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "report.md").write_text("# my notes\n")
    for extra in (["--dry-run"], []):
        code, _, err = nppac_in_process(monkeypatch, capsys, "suite", "run", str(suite_file(tmp_path)), "--out",
                                        str(tmp_path / "mine"), *extra)
        one_line_refusal(code, err)
        assert "holds no suite.json" in err and sorted(os.listdir(tmp_path / "mine")) == ["report.md"]


def test_a_report_replaces_only_a_report(tmp_path, monkeypatch, capsys):
    out = finished_suite(tmp_path, seeds=1)
    (out / "report.md").write_text("# my notes\n")
    code, _, err = nppac_in_process(monkeypatch, capsys, "suite", "report", str(out))
    one_line_refusal(code, err)
    assert "report.md was not written by `nppac suite report`" in err
    assert (out / "report.md").read_text() == "# my notes\n" and not (out / "report.json").exists()
    (out / "report.md").unlink()
    write_report(out)
    assert (out / "report.md").read_text().startswith("<!-- nppac-suite-report -->\n# Suite report: s\n")
    assert json.loads((out / "report.json").read_text())["format"] == "nppac-suite-report"
    write_report(out)  # its own report, marked
    for file in ("report.md", "report.json"):  # reports written before the markers
        text = (out / file).read_text()
        (out / file).write_text(text.replace("<!-- nppac-suite-report -->\n", "").replace(
            '"format": "nppac-suite-report",', ""))
    write_report(out)
    figure = out / "figures" / "hopper.png"  # where the report draws hopper's runs
    figure.parent.mkdir(exist_ok=True)
    figure.write_bytes(b"mine")
    with pytest.raises(NppacError, match="hopper.png was not written by `nppac suite report`"):
        write_report(out)
    import matplotlib.pyplot as plt

    from nppac.diagnostics.style import save_figure

    save_figure(plt.figure(), figure)  # a figure nppac drew
    write_report(out)
    plt.figure().savefig(figure)  # drawn by Matplotlib beside a report written before the markers
    write_report(out)
    (out / "report.json").write_text("{}")
    with pytest.raises(NppacError, match="report.json was not written"):
        write_report(out)


# ------------------------------------------------------------------ priors

def test_a_prior_is_replaced_only_where_a_prior_was_saved(tmp_path):
    from nppac.priors import fit_prior
    from nppac.priors.common import is_saved_prior

    rng = np.random.default_rng(0)
    prior, _ = fit_prior(make_demos(rng.normal(size=(20, 3)), rng.uniform(-1, 1, size=(20, 2))), "nn", iters=1)
    prior.save(tmp_path / "prior")
    settings = json.loads((tmp_path / "prior" / "settings.json").read_text())
    assert settings["format"] == "nppac-prior" and is_saved_prior(tmp_path / "prior")
    del settings["format"]  # a prior saved before the marker: a prior's settings beside its weights
    (tmp_path / "prior" / "settings.json").write_text(json.dumps(settings))
    assert is_saved_prior(tmp_path / "prior")
    (tmp_path / "prior" / "weights.safetensors").unlink()
    assert not is_saved_prior(tmp_path / "prior")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "settings.json").write_text('{"kind": "editor settings"}')
    assert not is_saved_prior(tmp_path / "other")


def test_a_runs_config_json_is_replaced_whole_not_written_through_a_link(tmp_path):
    from nppac.training import TrainConfig

    theirs = tmp_path / "theirs.json"
    theirs.write_text("{}")
    link = tmp_path / "run" / "config.json"
    link.parent.mkdir()
    link.symlink_to(theirs)
    TrainConfig(task="halfcheetah", algo="sac").save(link)
    assert theirs.read_text() == "{}" and not link.is_symlink()
    assert TrainConfig.load(link).algo == "sac"
