"""benchmarks/verdicts.py: the verdict table of docs/RESULTS.md, computed from the committed suites."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from types import ModuleType

import pytest

from nppac.experiments.stats import Welch
from tests.builders import benchmark_module

RESULTS = Path(__file__).resolve().parents[1] / "results"
VERDICTS = {"holds", "does not hold", "mixed", "unresolved", "untested", "running"}


@pytest.fixture(scope="module")
def verdicts() -> ModuleType:
    return benchmark_module("verdicts")


@pytest.fixture(scope="module")
def lines(verdicts: ModuleType) -> list[str]:
    if not (RESULTS / "cpu-published" / "report.json").is_file():
        pytest.skip("the committed suite exports are not in this checkout")
    return verdicts.table(RESULTS)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split(" | ")]


def test_the_table_has_a_row_per_claim_with_a_computed_verdict(lines):
    assert _cells(lines[0])[:2] == ["claim", "verdict"] and len(_cells(lines[0])) == 6
    rows = [_cells(line) for line in lines[2:]]
    assert [r[0].split(".")[0].split(",")[0] for r in rows] == ["i-a", "i-b", "i-c", "ii", "iii", "iii", "iii",
                                                                 "iv", "Beyond the paper: keep ≥ 0"]
    for row in rows:
        assert len(row) == 6
        assert row[1].strip("*") in VERDICTS
    long_tier = next(r for r in rows if "long tier" in r[0])
    if not (RESULTS / "cpu-long" / "suite.json").is_file():
        assert long_tier[1] == "**running**" and "pen 100k of 3M" in long_tier[4]


def test_numbers_are_the_reports(lines):
    report = json.loads((RESULTS / "cpu-published" / "report.json").read_text())
    pen = report["tasks"]["pen-binary"]
    step0 = pen["algos"]["nppac"]["initial"]["eval_success"]
    step0_row = next(_cells(line) for line in lines if line.startswith("| ii."))
    assert f"published: {step0['mean']:.2f} [{step0['lo']:.2f}, {step0['hi']:.2f}]" in step0_row[2]
    # i-c: nppac − ppac-nn on halfcheetah, the report's ppac-nn − nppac turned round, with its adjusted p.
    final = report["tasks"]["halfcheetah"]["differences"]["ppac-nn"]["final"]
    row = next(_cells(line) for line in lines if line.startswith("| i-c."))
    assert f"{-final['diff']:+,.0f} [{-final['hi']:+,.0f}, {-final['lo']:+,.0f}]" in row[2]
    p = final["p_adjusted"]
    assert (f"p_Holm {'< 0.001' if p < 0.001 else f'{p:.2g}'} in the {report['comparisons']['size']} comparisons "
            "of the cpu-published report") in row[3]
    assert "halfcheetah 30k of 1M (3 %)" in row[4]


def test_the_rules(verdicts):
    assert verdicts.comparisons_verdict(["for", "for"]) == "holds"
    assert verdicts.comparisons_verdict(["for", "unresolved"]) == "mixed"
    assert verdicts.comparisons_verdict(["against", "unresolved"]) == "does not hold"
    assert verdicts.comparisons_verdict(["unresolved"]) == "unresolved"
    assert verdicts.comparisons_verdict([]) == "untested"
    assert verdicts.share_verdict(3, 3) == "holds" and verdicts.share_verdict(0, 3) == "does not hold"
    assert verdicts.share_verdict(1, 3) == "mixed" and verdicts.share_verdict(0, 0) == "untested"
    # A difference is for the claim only with its adjusted p below 0.05 and the claim's sign.
    assert verdicts.side(Welch(0.3, 0.1, 0.5, 0.01), 0.04, +1) == "for"
    assert verdicts.side(Welch(-0.3, -0.5, -0.1, 0.01), 0.04, +1) == "against"
    assert verdicts.side(Welch(0.3, 0.1, 0.5, 0.01), 0.06, +1) == "unresolved"
    assert verdicts.side(Welch(0.3, math.nan, math.nan, math.nan), math.nan, +1) == "unresolved"
    # A run explodes when it diverged or its peak KL or gradient norm is ≥ 10× the GP runs' largest.
    gp = [{"kl": 30.0, "grad": 20.0}, {"kl": 10.0, "grad": 5.0}]
    assert verdicts.explodes({"non_finite": None, "kl": 300.0, "grad": 1.0}, gp)
    assert not verdicts.explodes({"non_finite": None, "kl": 299.0, "grad": 199.0}, gp)
    assert verdicts.explodes({"non_finite": ("critic loss", 3), "kl": 1.0, "grad": 1.0}, gp)


def test_runs_are_named_by_their_prior_setting_and_where_they_went_non_finite(tmp_path):
    from nppac.experiments.tables import runs as files

    assert files.prior_name({"algo": "nppac", "prior": "gp", "prior_sigma": "variance", "prior_variance": "love"}) \
        == "published"
    assert files.prior_name({"algo": "nppac", "prior": "gp", "prior_sigma": "variance"}) == "exact-variance"
    assert files.prior_name({"algo": "nppac", "prior": "gp", "prior_sigma": "std", "prior_variance": "love"}) \
        == "love-std"
    # An NN's σ0 has no LOVE estimate: asked for the published prior, the NN variants run exact-variance.
    assert files.prior_name({"algo": "ppac-nn", "prior": "nn", "prior_sigma": "variance",
                             "prior_variance": "love"}) == "exact-variance"
    assert files.prior_name({"algo": "awac", "prior": None, "prior_sigma": "std"}) is None
    run = tmp_path / "run"
    run.mkdir()
    (run / "status.json").write_text(json.dumps({
        "status": "diverged", "error": "critic loss Σ_k (Q_k − y)² became non-finite at epoch 7 (gradient step 1 "
                                       "of 1000); run stopped, last good checkpoint kept"}))
    assert files.non_finite(run) == ("critic loss", 7)
    (run / "status.json").write_text(json.dumps({"status": "diverged", "error": "critic gradient became "
                                                 "non-finite at epoch 2 (gradient step 781 of 1000); run stopped"}))
    assert files.non_finite(run) == ("critic gradient", 2)
    (run / "status.json").write_text(json.dumps({"status": "finished"}))
    assert files.non_finite(run) is None


def test_results_and_readme_state_the_computed_verdicts(lines):
    """docs/RESULTS.md holds the table as computed, and the README's list names each claim's computed verdict(s)."""
    root = RESULTS.parent
    results_md = (root / "docs" / "RESULTS.md").read_text()
    assert "\n".join(lines) in results_md
    computed = [_cells(line)[1].strip("*") for line in lines[2:]]
    readme = (root / "README.md").read_text()
    listed = readme[readme.index("## The paper's claims, measured"):readme.index("## Reproduce the paper")]
    stated = re.findall(r":\s+\*([a-z ]+)\*", listed)
    assert stated == computed
