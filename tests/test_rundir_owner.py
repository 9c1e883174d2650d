"""A run directory has one owner (:class:`nppac.training.rundir.RunDir`): it names the run's files, and every
reader and writer outside it goes through it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from nppac.errors import NppacError
from nppac.training.rundir import PROVENANCE_NAME, REFERENCES_NAME, RUN_FILES, RunDir

SRC = Path(__file__).resolve().parents[1] / "src" / "nppac"

RUN_FILE_NAMES = ("config.json", "status.json", "progress.csv", "references.json", "provenance.json", "inputs.json",
                  "checkpoint.pt", "actor.safetensors")
OWNERS = ("training/rundir.py", "training/logger.py", "training/checkpoint.py")
"""Where the names are defined: rundir.py, and the writers of progress.csv and checkpoint.pt it imports them from."""


def _paths_in_code(tree: ast.Module) -> list[tuple[int, str]]:
    """String constants that are a run file's name, or a path or pattern ending in one (``seed-*/config.json``).

    A string that mentions a file inside a sentence (a docstring, a help text, an error or log message, an f-string's
    text) is prose, not a path, and is not counted: the rule is that the whole string is the name or ends in
    ``/NAME``, which is how code joins or globs a path, and never how a sentence ends.
    """
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and any(node.value == name or node.value.endswith(f"/{name}") for name in RUN_FILE_NAMES)]


def test_only_the_owner_names_a_run_directorys_files():
    found = [f"{path.relative_to(SRC)}:{line}: {value!r}" for path in sorted(SRC.rglob("*.py"))
             if path.relative_to(SRC).as_posix() not in OWNERS
             for line, value in _paths_in_code(ast.parse(path.read_text()))]
    assert not found, "read or write run files through nppac.training.rundir.RunDir:\n" + "\n".join(found)


def test_the_guard_tells_a_path_from_prose():
    code = ('"""Reads config.json."""\nx = run / "config.json"\ny = suite.glob("seed-*/references.json")\n'
            'z = f"{run} has no progress.csv"\nw = f"{run / \'status.json\'}"\n')
    assert [v for _, v in _paths_in_code(ast.parse(code))] == ["config.json", "seed-*/references.json", "status.json"]


def _run(tmp_path: Path) -> RunDir:
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    (run.path / "config.json").write_text(json.dumps({"task": "hopper", "algo": "sac", "seed": 3, "steps": 300,
                                                       "steps_per_epoch": 150}) + "\n")
    (run.path / "progress.csv").write_text("phase,epoch,env_steps,eval_return,target_kl\ninit,0,0,1.5,\n"
                                           "online,1,150,2.5,0.1\nonline,2,3")
    return run


def test_a_run_directorys_files_and_records(tmp_path):
    run = _run(tmp_path)
    assert RunDir(str(run.path)).path == run.path and run.started
    assert (run.config_file, run.progress_file, run.checkpoint, run.prior_dir, run.actor) == tuple(
        run.path / name for name in ("config.json", "progress.csv", "checkpoint.pt", "prior", "actor.safetensors"))
    assert run.config()["seed"] == 3
    cfg = run.train_config()
    assert (cfg.task, cfg.algo, cfg.seed, cfg.n_epochs) == ("hopper", "sac", 3, 2)
    names, rows = run.progress()  # the row cut by a kill is left out; an earlier version's name is today's
    assert "target_kl" not in names and [r["epoch"] for r in rows] == ["0", "1"]
    with pytest.raises(NppacError, match="progress.csv is cut or edited"):
        run.progress(strict=True)
    assert run.status() is None and run.references() == {} and run.provenance() == {"starts": []}
    run.write_status({"status": "finished", "summary": {"final_eval_return": 2.5}})
    assert run.status()["status"] == "finished" and "time" in run.status()
    run.write(REFERENCES_NAME, {"demos": {"return": 4.0}})
    run.write(PROVENANCE_NAME, {"starts": [{"epoch": 0}]})
    assert run.references() == {"demos": {"return": 4.0}} and run.provenance() == {"starts": [{"epoch": 0}]}
    assert [p.name for p in run.exported_files()] == list(RUN_FILES)
    assert RUN_FILES == ("config.json", "progress.csv", "status.json", "references.json", "provenance.json")
    run.clear_status()
    assert run.status() is None and run.path.is_dir()


def test_broken_records_read_as_none_and_a_broken_config_is_refused_naming_it(tmp_path):
    run = _run(tmp_path)
    for name in ("status.json", "references.json", "provenance.json"):
        (run.path / name).write_text("[1, 2")
    assert run.status() is None and run.references() == {} and run.provenance() == {"starts": []}
    (run.path / "status.json").write_text("[1, 2]")
    assert run.status() is None
    run.config_file.write_text("[1, 2]")
    with pytest.raises(NppacError, match=r"run config .*config.json is not a JSON object"):
        run.config()
    run.config_file.unlink()
    assert not run.started
    with pytest.raises(NppacError, match="cannot read run config .*config.json"):
        run.config()
    with pytest.raises(NppacError, match=r"run is not a run directory \(no config.json\); pass a run"):
        run.train_config("pass a run")


def test_clearing_the_status_of_a_directory_it_alone_kept_removes_the_directory(tmp_path):
    run = RunDir(tmp_path / "a" / "b")
    run.write_status({"status": "failed", "error": "boom"})
    assert run.status() == {"status": "failed", "error": "boom", "time": run.status()["time"]}
    run.clear_status()
    assert not run.path.exists()
