"""benchmarks/long_tier.py: when a level is reached and kept, the dips, the AUC, and the script end to end."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.builders import benchmark_module


@pytest.fixture(scope="module")
def lt():
    return benchmark_module("long_tier")


def test_reach_and_keep(lt):
    steps = np.array([0, 1000, 2000, 3000, 4000, 5000])
    assert lt.reach_and_keep(steps, np.array([0.5, 0.95, 0.8, 0.9, 0.92, 1.0]), 0.9) == (1000, 3000)
    assert lt.reach_and_keep(steps, np.array([0.95, 0.95, 0.9, 0.9, 0.92, 1.0]), 0.9) == (0, 0)
    reaches, keeps = lt.reach_and_keep(steps, np.array([0.5, 0.95, 0.8, 0.9, 0.92, 0.1]), 0.9)
    assert reaches == 1000 and math.isnan(keeps)  # the last evaluation fell below: never kept
    assert all(math.isnan(x) for x in lt.reach_and_keep(steps, np.zeros(6), 0.9))


def test_dips_are_ranges_below_half_the_best_so_far(lt):
    epochs = np.arange(8)
    values = np.array([0.0, 0.0, 10.0, 4.0, 3.0, 9.0, 5.1, 4.9])
    assert lt.dips(epochs, values) == [(3, 4), (7, 7)]
    assert lt.dips(epochs, -np.ones(8)) == []  # never above zero: nothing to fall from


def test_auc_is_the_trapezoid_mean(lt):
    assert lt.auc(np.array([0, 1000, 3000]), np.array([0.0, 1.0, 1.0])) == pytest.approx((500 + 2000) / 3000)
    assert lt.auc(np.array([0]), np.array([0.7])) == 0.7


def test_the_script_reads_a_suite_folder(tmp_path):
    for seed, values in enumerate([[0.7, 0.95, 0.9], [0.6, 0.25, 0.95]]):
        run = tmp_path / "pen-binary" / "nppac" / f"seed-{seed}"
        run.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps({"task": "pen-binary", "algo": "nppac", "seed": seed,
                                                     "steps": 4000}))
        (run / "status.json").write_text(json.dumps({"status": "finished"}))
        with (run / "progress.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["phase", "epoch", "env_steps", "wall_s", "updates_per_s", "eval_return", "eval_success"])
            for i, v in enumerate(values):  # 100 updates/s, and 2,000 env steps every 25 s: 80 env steps/s
                writer.writerow(["init" if i == 0 else "online", 2 * i, 2000 * i, 25 * i + 1, 100, -10, v])
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "long_tier.py"
    out = subprocess.run([sys.executable, str(script), str(tmp_path), "--task", "pen-binary", "--level", "0.9",
                          "--last-k", "2", "--figure", str(tmp_path / "f.png")],
                         capture_output=True, text=True, check=True).stdout
    assert "| nppac | 0 | 4,000 / 4,000 | 0.70 | 0.93 |" in out
    assert "| 2k | 2k | none |" in out and "| 4k | 4k | 2 | 0.78 |" in out  # seed 1 dips at epoch 2: 0.25 < 0.6 / 2
    assert (tmp_path / "f.png").stat().st_size > 0


def test_the_figure_colours_each_column_as_every_figure_does(lt, tmp_path, monkeypatch):
    from nppac.diagnostics import style
    from nppac.diagnostics.curves import Run

    figures = []
    monkeypatch.setattr(style, "save_figure", lambda fig, path: figures.append(fig))
    steps = np.array([0.0, 1000.0])
    groups = {c: [Run(tmp_path / c, {"algo": c}, {"env_steps": steps, "eval_return": np.array([1.0, 2.0])})]
              for c in ("bc", "nppac-alpha-init", "nppac")}
    lt.draw(groups, "eval_return", math.nan, "halfcheetah", tmp_path / "f.png")
    drawn = {line.get_label().split(" ")[0]: line.get_color() for line in figures[0].axes[0].get_lines()
             if not line.get_label().startswith("_")}
    assert drawn == {c: style.color(c) for c in groups} and drawn["nppac"] == style.ALGORITHM_COLORS["nppac"]
