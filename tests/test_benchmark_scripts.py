"""Every script of benchmarks/ is type-checked and runs at a tiny size, in this process, through the library's public
functions; the shell scripts parse."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from nppac.data import save_npz
from nppac.training.timing import PHASES
from tests.builders import benchmark_module, one_thread, tiny_demos  # noqa: F401 (autouse fixture)

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("*.py"))
TINY_RUN = ["--steps", "300", "--init-epochs", "2", "--threads", "1", "--set", "steps_per_epoch=150",
            "--set", "warmup_steps=150", "--set", "updates_per_epoch=10", "--set", "eval_episodes=1",
            "--set", "horizon=30", "--set", "batch_size=16", "--set", "actor_hidden=16,16",
            "--set", "critic_hidden=16,16", "--set", "prior_iters=3"]
"""bench_phases.py's run: two 150-step epochs of 10 updates, its GP prior fitted in the run on a tiny set."""


def run_script(name: str, *args: str) -> str:
    """``python benchmarks/NAME.py ARGS`` in this process; returns what it printed."""
    module = benchmark_module(name)
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(sys, "argv", [f"{name}.py", *args])
        module.main()
    return printed.getvalue()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder shared by the scripts' runs, holding a tiny halfcheetah demonstration set."""
    path = tmp_path_factory.mktemp("benchmarks")
    save_npz(tiny_demos(episodes=2, length=40), path / "demos.npz")
    return path


@pytest.fixture(scope="module")
def phases(folder: Path) -> tuple[str, dict[str, Any]]:
    """bench_phases.py's table and JSON of its tiny run, whose directory stays in ``folder / "run"``."""
    out = run_script("bench_phases", *TINY_RUN, "--set", f"demos={folder / 'demos.npz'}", "--extrapolate", "600",
                     "--out", str(folder / "run"), "--json", str(folder / "phases.json"))
    return out, json.loads((folder / "phases.json").read_text())


def test_every_script_is_type_checked():
    files = [ROOT / f for f in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["files"]]
    unchecked = [s for s in SCRIPTS if not any(d == BENCHMARKS / f"{s}.py" or d in (BENCHMARKS / s).parents
                                               for d in files)]
    assert unchecked == [], "add them to [tool.mypy] files in pyproject.toml"


def test_every_script_has_a_tiny_run_here():
    assert [s for s in SCRIPTS if f"test_{s}" not in globals()] == []


def test_bench_phases(phases):
    """Every phase the run marks takes time in the table."""
    out, report = phases
    assert [p for p in (*PHASES, "warm-up") if not report["seconds"][p] > 0] == []
    assert report["gradient_steps"] == 20 and report["env_steps"] == 300
    assert "| **total** |" in out and "pure update rate" in out


def test_q_at_clipped_actions(folder, phases):
    out = run_script("q_at_clipped_actions", str(folder / "run"), "--demos", str(folder / "demos.npz"))
    assert "| halfcheetah / nppac / seed 0 |" in out


def test_bench_update():
    out = run_script("bench_update", "--threads", "1", "--rounds", "1", "--updates", "2", "--buffer", "300")
    assert "threads=1: nppac" in out


def test_bench_gp():
    out = run_script("bench_gp", "--sizes", "40", "--iters", "2", "--data", "synthetic", "--threads", "1",
                     "--exact-max", "40", "--json")
    (row,) = json.loads(out)["rows"]
    assert row["n"] == 40 and "error" not in row and row["std_rel_err_max"] >= 0


def test_bench_gp_components():
    out = run_script("bench_gp_components", "--data", "synthetic", "--n", "40", "--iters", "2", "--ks", "8", "16",
                     "--heads", "0", "4", "--threads", "1", "--json")
    assert [(r["states"], r["k"]) for r in json.loads(out)["rows"]] == [("held_out", 8), ("held_out", 16),
                                                                         ("probes", 8), ("probes", 16)]


def test_love_ratio(folder):
    run_script("love_ratio", "--out", str(folder / "love"), "--tasks", "halfcheetah", "--demos",
               f"halfcheetah={folder / 'demos.npz'}", "--iters", "2", "--report", str(folder / "love" / "REPORT"))
    (result,) = json.loads((folder / "love" / "REPORT.json").read_text())
    assert result["task"] == "halfcheetah" and sorted(result["offsets"]) == ["0", "0.5", "2"]


def test_awac_pen(tmp_path):
    """The report of the committed runs (training them is the published 25,000 offline steps)."""
    run_script("awac_pen", "--out", str(ROOT / "results" / "awac-pen"), "--report", str(tmp_path))
    assert "| awac | 0 | offline |" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "compare.png").stat().st_size > 0


def test_long_tier():
    out = run_script("long_tier", str(ROOT / "results" / "cpu-long"), "--task", "pen-binary", "--level", "0.9")
    assert "| bc | 0 |" in out


def test_verdicts():
    out = run_script("verdicts", str(ROOT / "results"), "--cells")
    assert out.startswith("| cell | suite | algo |")


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("*.sh")))
def test_each_shell_script_parses(script):
    assert subprocess.run(["bash", "-n", str(BENCHMARKS / script)]).returncode == 0
