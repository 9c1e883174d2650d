"""nppac suite report --table priors and --table conventions: suites side by side, replications pooled, differences
marked on p-values adjusted across each table's family."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from nppac.experiments import parse_suite, write_report
from nppac.experiments.stats import adjust_p_values, welch_test
from nppac.experiments.tables import conventions, priors

FINALS = {"a": {"nppac": [10.0, 20.0, 30.0], "sac": [40.0, 50.0, 60.0]},
          "b": {"nppac": [60.0, 70.0, 80.0], "sac": [44.0, 54.0, 64.0]}}
"""Each suite's finals; b's nppac runs with another α (another cell), its sac with a's settings (the same cell)."""


def _suite(folder: Path, name: str) -> None:
    suite = parse_suite({"name": name, "tasks": ["hopper"], "algos": ["nppac", "sac"], "seeds": 3,
                         "settings": {"steps": 300, "steps_per_epoch": 100}, "report": {"last_k": 1},
                         **({"algo": {"nppac": {"alpha": 0.3}}} if name == "b" else {})})
    suite.write_manifest(folder)
    for spec in suite.runs:
        run = spec.directory(folder)
        run.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps({**spec.config.to_dict(), "prior": f"/{name}/priors/p"}))
        with (run / "progress.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["phase", "epoch", "env_steps", "eval_return"])
            for epoch, value in enumerate([0.0, 0.0, 0.0, FINALS[name][spec.algo][spec.seed]]):
                writer.writerow(["online" if epoch else "init", epoch, 100 * epoch, value])
        (run / "status.json").write_text(json.dumps({"status": "finished"}))
    write_report(folder, figures=False)


@pytest.fixture
def suites(tmp_path: Path) -> list[Path]:
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        _suite(folder, folder.name)
    return folders


def test_priors_table_pools_the_reference_and_adjusts_the_differences_across_the_table(suites):
    lines = priors.tables(suites, "hopper", versus="sac")
    text = "\n".join(lines)
    # sac ran with identical settings in both suites: one cell of 6 seeds, and the reference of the differences.
    pooled = FINALS["a"]["sac"] + FINALS["b"]["sac"]
    assert "- sac: identical settings in a and b, one cell: 52 [" in text and "(n = 6)" in text
    assert "sac's cell is pooled over a + b (identical settings)" in text
    # The family: nppac in a and in b, on final and AUC (AUC = final/6 here: the same p-values).
    p = {name: welch_test(FINALS[name]["nppac"], pooled).p for name in ("a", "b")}
    holm = dict(zip(("a", "b"), adjust_p_values([p["a"], p["b"], p["a"], p["b"]], "holm")))
    assert "p_Holm: Welch's two-sided p-value adjusted by Holm across the family of the 4 comparisons" in text
    final = lines[lines.index("final minus sac's:") + 4]
    a_cell, b_cell = (c.strip() for c in final.strip("|").split("|")[1:3])
    assert a_cell.startswith("-32 [") and a_cell.endswith(f"p_Holm {holm['a']:.2g}" + (" ✓" if holm["a"] < 0.05
                                                                                         else ""))
    assert b_cell.endswith(f"p_Holm {holm['b']:.2g}" + (" ✓" if holm["b"] < 0.05 else ""))
    bh = priors.tables(suites, "hopper", versus="sac", adjust="bh")
    assert any("p_BH" in line for line in bh)


def test_conventions_table_pools_identical_settings_and_compares_the_others(suites):
    lines = conventions.table(*suites, task="hopper")
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in lines[2:4]}
    # sac: one cell of both suites' seeds (mean 52, n = 6), no difference.
    assert rows["sac"][3].startswith("one cell (identical settings): 52 [") and rows["sac"][3].endswith("n = 6")
    # nppac: b − a = +50, its two comparisons (final, AUC) are the family.
    test = welch_test(FINALS["b"]["nppac"], FINALS["a"]["nppac"])
    holm = adjust_p_values([test.p, test.p], "holm")[0]
    assert math.isclose(holm, 2 * test.p)
    assert rows["nppac"][3] == f"+50 [{test.lo:+,.0f}, {test.hi:+,.0f}], p_Holm {holm:.2g} **✓**"
    assert "family of the 2 comparisons of this table" in lines[-1]
