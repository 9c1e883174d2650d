"""benchmarks/conventions.py's report: the competence ratios of a screen, from run files alone."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.builders import benchmark_module


@pytest.fixture(scope="module")
def screen() -> ModuleType:
    return benchmark_module("conventions")


def _run(root: Path, task: str, setting: str, seed: int, evals: list[float], metric: str = "eval_return",
         rate: float = 50.0, steps: int | None = None) -> None:
    run = root / "runs" / task / setting / f"seed-{seed}"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"task": task, "algo": "nppac",
                                                  "steps": steps or 1000 * (len(evals) - 1)}))
    with (run / "progress.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["phase", "epoch", "env_steps", "wall_s", metric, "init_kl", "kl_mean", "q_mean",
                         "updates_per_s"])
        writer.writerow(["init", 0, 0, 5.0, 1.0, 2.0, "", "", ""])  # followed by a warm start's row: left out
        for epoch, value in enumerate(evals):
            writer.writerow(["offline" if epoch == 0 else "online", epoch, 1000 * epoch, 10.0 + epoch, value,
                             2.5 if epoch == 0 else "",
                             "" if epoch == 0 else 3.0, "" if epoch == 0 else 1.0, "" if epoch == 0 else rate])


def _prior(root: Path, task: str, value: float, success: bool = False) -> None:
    target = root / "priors" / task
    target.mkdir(parents=True)
    mean_action = {"return": value, "success": value if success else None}
    (target / "metrics.json").write_text(json.dumps({"mean_action": mean_action}))


def test_report_gives_each_runs_competence_and_the_worst_seed_per_setting(screen, tmp_path):
    loco, hand = tmp_path / "loco", tmp_path / "hand"
    _prior(loco, "hopper", 1000.0)
    _run(loco, "hopper", "default", 0, [2000.0, 900.0, 1500.0], rate=40.0)
    _run(loco, "hopper", "default", 1, [1000.0, 400.0, 1200.0], rate=60.0)
    _run(loco, "hopper", "layernorm", 0, [2000.0, 1900.0, 2100.0])
    _run(loco, "hopper", "layernorm", 1, [2000.0, 1900.0], steps=5000)  # unfinished: left out
    _run(loco, "hopper", "actor-delay", 0, [2000.0, 2000.0, 2000.0])
    _prior(hand, "pen-binary", 0.8, success=True)
    _run(hand, "pen-binary", "default", 0, [0.8, 0.4, 0.6], metric="eval_success")

    dest = tmp_path / "remedies"
    screen.report([loco, hand], dest)
    result = json.loads((dest / "remedies.json").read_text())
    assert list(result) == ["hopper", "pen-binary"]
    assert list(result["hopper"]["settings"]["layernorm"]) == ["seed-0"]
    # Settings in the screen's order (the default first), not the directories' alphabetical one.
    assert list(result["hopper"]["settings"]) == ["default", "layernorm", "actor-delay"]
    run = result["hopper"]["settings"]["default"]["seed-1"]
    assert run["evals"] == [1000.0, 400.0, 1200.0] and run["init_kl"] == 2.5 and run["updates_per_s"] == 60.0
    assert run["step0_wall_s"] == 10.0
    assert screen._competence(run, result["hopper"]["prior_mean_action"]) == pytest.approx((0.4, 0.4))

    summary = (dest / "remedies.md").read_text()
    # The worst seed: min ÷ prior 400/1000 (seed 1), min ÷ step 0 900/2000 = 0.45 vs 0.40 → 0.40; final mean 1,350.
    assert "| hopper | default | 2 | 0.40 | 0.40 | 1,350 | 50 |" in summary
    assert "| hopper | layernorm | 1 | 1.90 | 0.95 | 2,100 | 50 |" in summary
    assert "| pen-binary | default | 1 | 0.50 | 0.50 | 0.60 | 50 |" in summary
    assert "| hopper | default | 0 | 2,000 | 900, 1,500 | 1,500 | 0.45 | 0.90 | 2.5 | 10 | 40 |" in summary
    assert (dest / "remedies.png").stat().st_size > 0 and (dest / "remedies-grid.png").stat().st_size > 0


def test_report_refuses_a_task_measured_under_two_outs(screen, tmp_path):
    for name in ("a", "b"):
        _prior(tmp_path / name, "hopper", 1000.0)
        _run(tmp_path / name, "hopper", "default", 0, [1.0, 2.0])
    with pytest.raises(SystemExit, match="hopper"):
        screen.report([tmp_path / "a", tmp_path / "b"], tmp_path / "out")


@pytest.mark.parametrize("task", ["hopper", "pen-binary"])
def test_every_setting_of_the_screens_is_a_valid_nppac_config(screen, task):
    from nppac.training import TrainConfig

    for name, fields in screen.SETTINGS.items():
        if screen.applies(name, task):
            cfg = TrainConfig(task=task, algo="nppac", steps=1000, prior="unused", **fields).validate()
            assert all(getattr(cfg, key) == value for key, value in fields.items()), name
    assert set(screen.REMEDIES) | set(screen.CONVENTIONS) <= set(screen.SETTINGS)


def test_export_copies_the_finished_runs_small_files_and_no_weights(screen, tmp_path):
    out, dest = tmp_path / "out", tmp_path / "dest"
    _prior(out, "hopper", 1000.0)
    _run(out, "hopper", "default", 0, [2000.0, 900.0, 1500.0])
    _run(out, "hopper", "layernorm", 0, [2000.0, 1900.0], steps=5000)  # unfinished: not copied
    (out / "runs" / "hopper" / "default" / "seed-0" / "actor.safetensors").write_bytes(b"weights")
    (out / "priors" / "hopper" / "model.safetensors").write_bytes(b"weights")
    assert screen.export(out, dest) == 3
    copied = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert copied == ["priors/hopper/metrics.json", "runs/hopper/default/seed-0/config.json",
                      "runs/hopper/default/seed-0/progress.csv"]
    screen.report([dest], tmp_path / "figures")  # the report reads the copy alone
    assert json.loads((tmp_path / "figures" / "figures.json").read_text())["hopper"]["settings"]["default"]


def test_settings_under_their_earlier_names_are_read_and_resumed_under_the_glossary_names(screen, tmp_path):
    out = tmp_path / "screen"
    _prior(out, "hopper", 1000.0)
    _run(out, "hopper", "variance+policy", 0, [2000.0, 1500.0])  # an earlier name of exact-variance+policy
    _run(out, "hopper", "love-variance+policy", 0, [2000.0, 500.0])  # of published+policy
    _run(out, "hopper", "std+policy", 0, [2000.0, 800.0])
    screen.report([out], tmp_path / "conventions")
    settings = json.loads((tmp_path / "conventions" / "conventions.json").read_text())["hopper"]["settings"]
    assert list(settings) == ["std+policy", "exact-variance+policy", "published+policy"]
    assert screen.setting_name("love-variance+policy@nppac") == "published+policy@nppac"
    # A screen run again into the same out finds those runs instead of training them anew.
    assert screen._run_dir(out, "hopper", "exact-variance+policy", 0) == out / "runs/hopper/variance+policy/seed-0"
    assert screen._run_dir(out, "hopper", "published+policy", 1) == out / "runs/hopper/published+policy/seed-1"
    for old, new in screen.LEGACY_NAMES.items():
        assert screen.SETTINGS[new] and old not in screen.SETTINGS
