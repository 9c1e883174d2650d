"""Settings belong to the algorithm that reads them, and runs travel.

Generated from the algorithm table (``Algorithm.reads``): every TrainConfig field an algorithm does not read is
refused, naming the algorithm and the field, from every source (the API, ``--set``, a run TOML, a suite's
``[algo.X]`` table, a ``config.json``), and a run's ``config.json`` records only the fields its algorithm reads,
with its schema version. A committed run's old ``config.json`` still loads and resumes through the one migration,
and a run directory copied elsewhere reruns and resumes from its own files.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import typing
from pathlib import Path
from typing import Any

import pytest
import torch

import nppac
from nppac.data import save_npz
from nppac.errors import NppacError
from nppac.experiments import load_suite, parse_suite
from nppac.training import TrainConfig, train
from nppac.training.algorithms import ALGORITHMS
from nppac.training.checkpoint import load_checkpoint
from nppac.training.rundir import prepare_run_dir
from tests.builders import TINY, nppac_in_process, tiny_demos

ROOT = Path(__file__).resolve().parents[1]
HINTS = typing.get_type_hints(TrainConfig)
FIELDS = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name != "algo_settings"}
UNREAD = [(algo, name) for algo, a in ALGORITHMS.items() for name in FIELDS if not a.reads_setting(name)]
"""(algorithm, TrainConfig field it does not read), from the algorithm table."""


def a_value(name: str) -> Any:
    """A value of field ``name``'s declared type that is not its default."""
    hint = HINTS[name]
    optional = type(None) in typing.get_args(hint)
    kind = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
    if typing.get_origin(kind) is tuple:
        return [1.0, 2.0] if typing.get_args(kind)[0] is float else [3]
    return {bool: not FIELDS[name], int: 3, float: 0.5, str: "x"}[kind]


def toml(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def refuses(algo: str, name: str, message: str) -> None:
    assert f"{algo} " in message and name in message and "\n" not in message, message


def test_every_algorithm_reads_some_fields_and_not_others():
    assert all(any(algo == a for a, _ in UNREAD) for algo in ("awac", "bc", "sac", "sac-bc", "ppac-nn"))
    assert ("awac", "alpha") in UNREAD and ("awac", "prior_kernel") in UNREAD and ("bc", "critic_hidden") in UNREAD
    assert not [name for name in FIELDS if all(a.reads_setting(name) for a in ALGORITHMS.values())
                and name in ("alpha", "init_epochs", "prior_kernel", "kl_anchor")]


@pytest.mark.parametrize("algo, name", UNREAD)
def test_an_unread_setting_is_refused_by_the_api_set_and_a_config_json(algo, name, tmp_path):
    value = a_value(name)
    for source in (lambda: TrainConfig(task="hopper", algo=algo).with_values({name: value}),
                   lambda: nppac.Model("hopper", algo=algo, **{name: value}),
                   lambda: TrainConfig(task="hopper", algo=algo, **{name: value}).validate(),
                   lambda: TrainConfig(task="hopper", algo=algo).with_overrides(
                       [f"{name}={','.join(map(str, value)) if isinstance(value, list) else value}"])):
        with pytest.raises(NppacError) as info:
            source()
        refuses(algo, name, str(info.value))
    stored = tmp_path / "config.json"
    stored.write_text(json.dumps({**TrainConfig(task="hopper", algo=algo).resolved().to_dict(), name: value}))
    with pytest.raises(NppacError) as info:
        TrainConfig.load(stored)
    refuses(algo, name, str(info.value))
    assert not [p for p in tmp_path.iterdir() if p.name != "config.json"]


@pytest.mark.parametrize("algo", list(ALGORITHMS))
def test_an_unread_setting_is_refused_by_a_run_toml_a_suite_table_and_the_cli(algo, tmp_path, monkeypatch, capsys):
    name = next(n for a, n in UNREAD if a == algo)
    value = toml(a_value(name))
    run = tmp_path / "run.toml"
    run.write_text(f'task = "hopper"\nalgo = "{algo}"\n[settings]\n{name} = {value}\n')
    with pytest.raises(NppacError) as info:
        TrainConfig.from_file(run)
    refuses(algo, name, str(info.value))
    suite = tmp_path / "suite.toml"
    suite.write_text(f'tasks = ["hopper"]\nalgos = ["{algo}"]\nseeds = 1\n[algo.{algo}]\n{name} = {value}\n')
    with pytest.raises(NppacError) as info:
        load_suite(suite)
    refuses(algo, name, str(info.value))
    code, _, err = nppac_in_process(monkeypatch, capsys, "train", "--config", str(run), "--out", str(tmp_path / "o"))
    assert code == 2 and err.count("\n") == 1 and f"{algo} " in err and name in err, err
    assert not (tmp_path / "o").exists()


def test_a_suite_applies_its_shared_settings_where_they_are_read():
    suite = parse_suite({
        "tasks": ["hopper"], "algos": ["nppac", "awac"], "seeds": 1,
        "settings": {"alpha": 0.3, "prior_kernel": "rbf", "steps": 2000}, "task": {"hopper": {"init_epochs": 3}}})
    configs = {r.config.algo: r.config for r in suite.runs}
    assert configs["nppac"].alpha == 0.3 and configs["nppac"].init_epochs == 3
    assert configs["awac"].alpha is None and configs["awac"].init_epochs is None and configs["awac"].steps == 2000
    with pytest.raises(NppacError, match=r"\[settings\] alpha: read by none of the suite's algos \(awac, bc\)"):
        parse_suite({"tasks": ["hopper"], "algos": ["awac", "bc"], "seeds": 1,
                                               "settings": {"alpha": 0.3}})


def test_the_old_name_of_the_log_std_range_maps_where_it_was_read_and_is_refused_elsewhere():
    with pytest.warns(FutureWarning, match="actor_log_std_range is now called log_std_range"):
        cfg = TrainConfig(task="halfcheetah", algo="sac").with_overrides(["actor_log_std_range=-5,0"])
    assert cfg.resolved().algo_config().log_std_range == (-5.0, 0.0)
    for algo in ("awac", "bc"):
        with pytest.raises(NppacError, match=f"^{algo} reads log_std_range, not actor_log_std_range$"):
            TrainConfig(algo=algo).with_overrides(["actor_log_std_range=-5,0"])
    with pytest.raises(NppacError, match="^sac reads target_entropy, not target_kl$"):
        TrainConfig(algo="sac").with_values({"target_kl": 1.0})


@pytest.mark.parametrize("algo", list(ALGORITHMS))
def test_a_run_config_json_records_only_what_its_algorithm_reads_with_its_schema(algo, tmp_path):
    for task in ("halfcheetah", "pen-binary"):
        out = tmp_path / task
        cfg = prepare_run_dir(TrainConfig(task=task, algo=algo), out, resume=False)
        stored = json.loads((out / "config.json").read_text())
        assert stored["schema"] == 2
        read = {n for n in FIELDS if ALGORITHMS[algo].reads_setting(n)}
        assert set(stored) == {"schema", "algo_settings", *read}, set(stored) ^ {"schema", "algo_settings", *read}
        assert TrainConfig.load(out / "config.json").resolved() == cfg


def _legacy_awac(tmp_path: Path) -> Path:
    """A committed AWAC run's config.json (nppac 0.1: no schema, every field, AWAC's unread alpha and prior
    settings among them), shortened to two tiny epochs."""
    old = json.loads((ROOT / "results/cpu/halfcheetah/awac/seed-0/config.json").read_text())
    assert "schema" not in old and old["alpha"] == 0.1 and old["prior_kernel"] == "rbf"
    tiny = {k: list(v) if isinstance(v, tuple) else v for k, v in TINY.items() if k in old}
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({**old, **tiny, "offline_updates": 10, "offline_batch_size": 32,
                                                 "offline_eval_every": 10, "eval_horizon": 60}))
    return run


def test_an_old_config_json_loads_migrates_and_resumes(tmp_path):
    run = _legacy_awac(tmp_path)
    from nppac.training.config import migrate

    old = json.loads((run / "config.json").read_text())
    migrated = migrate(old)
    assert "alpha" not in migrated and "prior_kernel" not in migrated and "init_epochs" not in migrated
    cfg = TrainConfig.load(run / "config.json")
    assert cfg.algo == "awac" and cfg.steps == 300 and "alpha" not in cfg.to_dict() and cfg.to_dict()["schema"] == 2
    first = train(None, run, resume=True, progress=False, on_epoch_end=lambda row: row["epoch"] < 1)
    assert first["epochs"] == 1
    ckpt_config = json.loads(load_checkpoint(run / "checkpoint.pt", torch.device("cpu"))["config"])
    assert "alpha" not in ckpt_config and ckpt_config["schema"] == 2
    summary = train(None, run, resume=True, progress=False)
    assert summary["epochs"] == 2


def _demos_file(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "demos.npz"
    path.parent.mkdir()
    save_npz(tiny_demos(), path)
    return path


def test_a_moved_run_reruns_and_resumes_from_its_own_files(tmp_path, monkeypatch, capsys):
    demos = _demos_file(tmp_path)
    original = tmp_path / "cluster" / "run"
    config = TrainConfig(algo="ppac-nn", demos=str(demos), prior_iters=3, **{**TINY, "init_epochs": 1})
    train(config, original, progress=False, on_epoch_end=lambda row: row["epoch"] < 1)
    stored = json.loads((original / "config.json").read_text())
    assert stored["prior"] == "prior" and stored["demos"] == str(demos.resolve())
    assert json.loads((original / "inputs.json").read_text())["demos"]["path"] == str(demos.resolve())
    moved = tmp_path / "laptop" / "run"
    shutil.copytree(original, moved)
    shutil.rmtree(tmp_path / "cluster")
    assert TrainConfig.load(moved / "config.json").prior == str((moved / "prior").resolve())
    summary = train(None, moved, resume=True, progress=False)
    assert summary["epochs"] == 2
    code, _, err = nppac_in_process(monkeypatch, capsys, "train", "--config", str(moved / "config.json"), "--steps",
                                    "150", "--quiet", "--out", str(tmp_path / "rerun"))
    assert code == 0, err
    demos.write_bytes(demos.read_bytes() + b"\0")
    code, _, err = nppac_in_process(monkeypatch, capsys, "train", "--config", str(moved / "config.json"), "--quiet",
                                    "--out", str(tmp_path / "rerun2"))
    assert code == 2 and "is not the file it started from" in err and str(demos.resolve()) in err, err
    demos.unlink()
    with pytest.raises(NppacError, match="neither .* exists"):
        train(None, moved, resume=True, steps=450, progress=False)
