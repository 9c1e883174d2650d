"""Suite reports on hand-written run directories: closed-form numbers, intervals, incomplete runs listed."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from nppac.errors import NppacError
from nppac.experiments import parse_suite, write_report
from nppac.experiments.report import (
    final_performance,
    initial_performance,
    normalized_auc,
    steps_to_threshold,
)
from nppac.experiments.stats import Welch, welch_test
from tests.builders import nppac_in_process

T_975_2 = 4.302652729911275
"""t_{0.975} with 2 degrees of freedom (three seeds)."""


def test_final_auc_and_threshold_closed_forms():
    steps = np.array([100.0, 200.0, 300.0, 400.0])
    assert final_performance(np.array([1.0, 2.0, 4.0, 8.0]), 3) == pytest.approx(14 / 3)
    assert final_performance(np.array([5.0, 7.0]), 3) == 6.0  # fewer than K evaluations: all of them
    # A straight line y = s averages to the midpoint of the steps it covers.
    assert normalized_auc(steps, steps.copy()) == pytest.approx(250.0)
    # Trapezoids: (100·(0+2)/2 + 100·(2+2)/2 + 100·(2+8)/2) / 300 = (100 + 200 + 500) / 300.
    assert normalized_auc(steps, np.array([0.0, 2.0, 2.0, 8.0])) == pytest.approx(800 / 300)
    # Uneven spacing weighs each segment by its length.
    assert normalized_auc(np.array([0.0, 100.0, 400.0]), np.array([0.0, 1.0, 1.0])) == pytest.approx(350 / 400)
    assert normalized_auc(np.array([100.0]), np.array([3.0])) == 3.0
    assert steps_to_threshold(steps, np.array([0.0, 2.0, 5.0, 1.0]), 2.0) == 200.0
    assert steps_to_threshold(steps, np.array([0.0, 2.0, 5.0, 1.0]), 9.0) is None


def test_initial_performance_and_welch_difference_closed_forms():
    from scipy import stats

    assert initial_performance(np.array([0.0, 100.0]), np.array([7.0, 9.0])) == 7.0
    assert initial_performance(np.array([100.0, 200.0]), np.array([7.0, 9.0])) is None
    # a = (1, 2, 3), b = (4, 6, 8): Δ = −4, s_a² = 1, s_b² = 4, se² = 1/3 + 4/3 = 5/3,
    # Welch–Satterthwaite ν = (5/3)² / ((1/3)²/2 + (4/3)²/2) = 50/17.
    test = welch_test([1.0, 2.0, 3.0], [4.0, 6.0, 8.0])
    half = stats.t.ppf(0.975, 50 / 17) * math.sqrt(5 / 3)
    assert (test.diff, test.lo, test.hi) == pytest.approx((-4.0, -4.0 - half, -4.0 + half))
    # p = 2·P(T_ν > |Δ|/se), the same t distribution as the interval's.
    assert test.p == pytest.approx(2 * stats.t.sf(4.0 / math.sqrt(5 / 3), 50 / 17))
    assert math.isnan(welch_test([1.0], [4.0, 6.0]).lo)  # one seed: no interval, no test
    assert math.isnan(welch_test([1.0], [4.0, 6.0]).p)
    # No spread: the difference is exact.
    assert welch_test([1.0, 1.0], [3.0, 3.0]) == Welch(-2.0, -2.0, -2.0, 0.0)


def test_report_step_zero_and_differences_against_the_baseline(tmp_path):
    suite = parse_suite({"name": "diff", "tasks": ["hopper"], "algos": ["nppac", "sac"], "seeds": 3,
                         "settings": {"steps": 300, "steps_per_epoch": 100}, "report": {"last_k": 1}})
    out = tmp_path / "out"
    suite.write_manifest(out)
    # Rows at env_steps 0, 100, 200, 300. nppac finals 10, 20, 30; sac finals 50, 60, 70 (clearly better);
    # nppac starts at 5, 6, 7 (step 0); sac's middle evaluations (−100, 0, 100) spread its AUCs
    # ((y0 + y3)/6 + 2m/3) far wider than their difference from nppac's.
    finals = {"nppac": [10.0, 20.0, 30.0], "sac": [50.0, 60.0, 70.0]}
    starts = {"nppac": [5.0, 6.0, 7.0], "sac": [0.0, 0.0, 0.0]}
    middles = {"nppac": [0.0, 0.0, 0.0], "sac": [-100.0, 0.0, 100.0]}
    for spec in suite.runs:
        y0, m, y3 = starts[spec.algo][spec.seed], middles[spec.algo][spec.seed], finals[spec.algo][spec.seed]
        rows = [(y0,), (m,), (m,), (y3,)]
        _write_run(spec.directory(out), rows, {"status": "finished"}, spec.config.to_dict())
    numbers = json.loads(json.dumps(write_report(out, figures=False)[0].to_json()))
    hopper = numbers["tasks"]["hopper"]
    assert hopper["algos"]["nppac"]["initial"]["eval_return"]["values"] == [5.0, 6.0, 7.0]
    assert hopper["baseline"] == "nppac" and set(hopper["differences"]) == {"sac"}
    final = hopper["differences"]["sac"]["final"]
    assert final["diff"] == pytest.approx(40.0) and final["supported"] is True
    assert final["lo"] > 0
    auc = hopper["differences"]["sac"]["auc"]
    assert auc["supported"] is False and auc["lo"] < 0 < auc["hi"]
    markdown = (out / "report.md").read_text()
    assert "Against nppac (return):" in markdown and "**✓**" in markdown
    # Against sac instead, nppac is the one compared.
    flipped = write_report(out, figures=False, baseline="sac")[0].to_json()["tasks"]["hopper"]["differences"]
    assert flipped["nppac"]["final"]["diff"] == pytest.approx(-40.0)
    with pytest.raises(NppacError, match="--baseline awac is not an algorithm of suite diff"):
        write_report(out, figures=False, baseline="awac")


def _write_run(directory, rows, status, config, binary=False, epochs=None):
    """A run as `nppac train` writes it: the step-0 row, then one row per epoch of 100 steps (or at ``epochs``)."""
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps(config))
    columns = ["phase", "epoch", "env_steps", "eval_return", *(["eval_success"] if binary else []), "q_mean"]
    epochs = list(range(len(rows))) if epochs is None else epochs
    with (directory / "progress.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for epoch, row in zip(epochs, rows):
            writer.writerow(["online" if epoch else "init", epoch, 100 * epoch, *row, 1.0])
    if status is not None:
        (directory / "status.json").write_text(json.dumps(status))


@pytest.fixture
def suite_out(tmp_path):
    """hopper × {nppac, sac} × 3 seeds and door-binary × sac × 1 seed, with every kind of unfinished run."""
    suite = parse_suite({
        "name": "known", "tasks": ["hopper", "door-binary"], "algos": ["nppac", "sac"], "seeds": 3,
        "settings": {"steps": 300, "steps_per_epoch": 100},
        "report": {"last_k": 2, "threshold": {"hopper": 25.0}},
    })
    out = tmp_path / "out"
    suite.write_manifest(out)
    finished = {"status": "finished"}
    # hopper/nppac: finals (mean of the last two) 15, 25, 35 → mean 25, s = 10.
    keyed = {r.key: r for r in suite.runs}

    def write(key, rows, status, binary=False):
        _write_run(keyed[key].directory(out), rows, status, keyed[key].config.to_dict(), binary)

    for seed, last in enumerate([10.0, 20.0, 30.0]):
        write(f"hopper/nppac/seed-{seed}", [(0.0,), (0.0,), (last,), (last + 10,)], finished)
    # hopper/sac: one finished seed, one failed, one interrupted after 1 of 3 epochs.
    write("hopper/sac/seed-0", [(1.0,), (2.0,), (3.0,), (4.0,)], finished)
    write("hopper/sac/seed-1", [], {"status": "failed", "error": "loss became NaN"})
    write("hopper/sac/seed-2", [(1.0,), (2.0,)], None)
    # door-binary/sac/seed-0: success rate is the primary metric; the rest never started.
    write("door-binary/sac/seed-0", [(-200.0, 0.0), (-150.0, 0.2), (-100.0, 0.4), (-50.0, 0.6)], finished, binary=True)
    return out


def test_runs_of_earlier_versions_report_as_runs_written_today(suite_out, tmp_path):
    """Penalty columns under their earlier names (target_kl; SAC's kl_mean) give the report of today's names."""
    import shutil

    from nppac.experiments.report import collect_runs

    today = tmp_path / "today"
    shutil.copytree(suite_out, today)
    renamed = {"nppac": {"target_kl": "next_kl_mean"},
               "sac": {"target_kl": "next_log_pi_mean", "kl_mean": "log_pi_mean"}}
    for progress in suite_out.rglob("progress.csv"):
        algo = progress.parent.parent.name
        lines = progress.read_text().splitlines()
        old = [lines[0] + ",target_kl,kl_mean"] + [f"{line},{i / 4},{-i / 2}" for i, line in enumerate(lines[1:])]
        progress.write_text("\n".join(old) + "\n")
        header = ",".join(renamed[algo].get(c, c) for c in old[0].split(","))
        (today / progress.relative_to(suite_out)).write_text("\n".join([header, *old[1:]]) + "\n")
    reports = [write_report(out, figures=False)[0].to_json() for out in (suite_out, today)]
    assert reports[0]["tasks"] == reports[1]["tasks"]
    entries = [collect_runs(out)[1] for out in (suite_out, today)]
    for before, after in zip(*entries):
        assert before.state == after.state
        if before.run is not None:
            assert list(before.run.columns) == list(after.run.columns)
            assert all(np.array_equal(before.run.columns[c], after.run.columns[c], equal_nan=True)
                       for c in before.run.columns)
            assert ("kl_mean" in before.run.columns) == (before.spec.algo == "nppac")


def test_report_tables_intervals_and_incomplete_runs(suite_out):
    report, written = write_report(suite_out)
    numbers = json.loads((suite_out / "report.json").read_text())
    assert numbers["last_k"] == 2
    hopper = numbers["tasks"]["hopper"]
    assert hopper["primary_metric"] == "eval_return" and hopper["threshold"] == 25.0
    # Figures are named relative to the report, so a report copied or committed elsewhere still finds them.
    assert hopper["figure"] == "figures/hopper.png" and (suite_out / hopper["figure"]).is_file()
    nppac = hopper["algos"]["nppac"]
    half = T_975_2 * 10.0 / math.sqrt(3)
    final = nppac["final"]["eval_return"]
    assert final["values"] == [15.0, 25.0, 35.0] and final["n"] == 3
    assert (final["mean"], final["lo"], final["hi"]) == pytest.approx((25.0, 25.0 - half, 25.0 + half))
    # AUC of (0, 0, y, y+10) at steps 0..300: (0 + y/2 + y + 5) · 100 / 300.
    aucs = [(1.5 * y + 5) / 3 for y in (10.0, 20.0, 30.0)]
    assert nppac["auc"]["eval_return"]["values"] == pytest.approx(aucs)
    assert nppac["auc"]["eval_return"]["mean"] == pytest.approx(np.mean(aucs))
    # Steps to 25: seed 0 never (10, 20), seed 1 at 300 (30), seed 2 at 200 (30).
    assert nppac["steps_to_threshold"]["values"] == [300.0, 200.0]
    assert (nppac["steps_to_threshold"]["reached"], nppac["steps_to_threshold"]["of"]) == (2, 3)
    sac = hopper["algos"]["sac"]
    assert sac["n"] == 1 and sac["final"]["eval_return"] == {"mean": 3.5, "lo": 3.5, "hi": 3.5, "n": 1,
                                                             "values": [3.5]}

    door = numbers["tasks"]["door-binary"]
    assert door["primary_metric"] == "eval_success" and door["metrics"] == ["eval_success", "eval_return"]
    assert door["algos"]["sac"]["final"]["eval_success"]["mean"] == pytest.approx(0.5)
    assert door["algos"]["sac"]["auc"]["eval_success"]["mean"] == pytest.approx(0.3)
    assert "nppac" not in door["algos"]

    states = {r["key"]: r["status"] for r in numbers["runs"]}
    # In the suite's order, seed by seed.
    assert numbers["incomplete"] == ["door-binary/nppac/seed-0",
                                     "hopper/sac/seed-1", "door-binary/nppac/seed-1", "door-binary/sac/seed-1",
                                     "hopper/sac/seed-2", "door-binary/nppac/seed-2", "door-binary/sac/seed-2"]
    assert (states["hopper/sac/seed-1"], states["hopper/sac/seed-2"], states["door-binary/sac/seed-2"]) == (
        "failed", "unfinished", "pending")
    assert numbers["counts"] == {"finished": 5, "failed": 1, "unfinished": 1, "pending": 5}

    markdown = (suite_out / "report.md").read_text()
    assert f"| nppac | 3 | 300 | 0 [0, 0] | 25 [{25 - half:.4g}, {25 + half:.4g}] |" in markdown
    assert "| hopper/sac/seed-1 | failed | 0/3 | loss became NaN |" in markdown
    assert "| hopper/sac/seed-2 | unfinished | 1/3 |  |" in markdown
    assert "2/3 reached" in markdown
    assert sorted(p.name for p in written) == ["door-binary.png", "hopper.png", "performance_profile.png",
                                               "report.json", "report.md"]


def test_cli_report_json_and_overrides(suite_out, tmp_path, monkeypatch, capsys):
    target = tmp_path / "elsewhere" / "summary.md"
    code, stdout, _ = nppac_in_process(monkeypatch, capsys, "suite", "report", str(suite_out), "--json", "--out",
                                       str(target), "--last-k", "1", "--threshold", "hopper=35")
    assert code == 0
    numbers = json.loads(stdout)
    nppac = numbers["tasks"]["hopper"]["algos"]["nppac"]
    assert numbers["last_k"] == 1 and nppac["final"]["eval_return"]["values"] == [20.0, 30.0, 40.0]
    # Only seed 2 (…, 30, 40) reaches 35.
    assert nppac["steps_to_threshold"]["values"] == [300.0] and nppac["steps_to_threshold"]["reached"] == 1
    assert json.loads((tmp_path / "elsewhere" / "summary.json").read_text())["last_k"] == 1
    assert (tmp_path / "elsewhere" / "figures" / "hopper.png").exists()
    with pytest.raises(NppacError, match="has no suite.json; pass the --out directory of `nppac suite run`"):
        write_report(tmp_path / "nothing")


def _cut(text: str) -> str:
    """The last row cut inside its evaluation: 0.976797 read back would be 0.97."""
    return text[:text.rindex("0.976797") + 4]


def _no_line_end(text: str) -> str:
    """The last row cut inside its last field (q_mean 1.0 → 1.)."""
    return text.rstrip("\r\n")[:-1]


def _short_row(text: str) -> str:
    """The last row with a field lost but its line end kept."""
    lines = text.splitlines(keepends=True)
    return "".join(lines[:-1]) + lines[-1].rsplit(",", 1)[0] + "\r\n"


def _without_middle(text: str) -> str:
    lines = text.splitlines(keepends=True)
    return "".join(lines[:3] + lines[5:])


def _without_last(text: str) -> str:
    return "".join(text.splitlines(keepends=True)[:-1])


def _nan_last(text: str) -> str:
    return text.replace("0.976797", "nan")


def _shuffled(text: str) -> str:
    lines = text.splitlines(keepends=True)
    return "".join([lines[0], lines[2], lines[1], *lines[3:]])


@pytest.mark.parametrize("damage, says", [
    (_cut, "line 7 has 4 of 5 fields"),
    (_no_line_end, "its last line (7) has no line end"),
    (_short_row, "line 7 has 4 of 5 fields"),
    (_without_middle, "lacks the rows at env_steps 200, 300"),
    (_without_last, "lacks the rows at env_steps 500"),
    (_nan_last, "eval_return is not a finite number at env_steps 500"),
    (_shuffled, "env_steps must be finite and increasing"),
], ids=["cut mid-field", "no line end", "row without a field", "rows deleted", "last row missing", "NaN evaluation",
        "shuffled"])
def test_a_damaged_curve_is_listed_not_averaged(tmp_path, damage, says):
    suite = parse_suite({"name": "damage", "tasks": ["hopper"], "algos": ["sac"], "seeds": 2,
                         "settings": {"steps": 500, "steps_per_epoch": 100}, "report": {"last_k": 1}})
    out = tmp_path / "out"
    suite.write_manifest(out)
    for spec in suite.runs:
        _write_run(spec.directory(out), [(0.1,), (0.2,), (0.3,), (0.4,), (0.5,), (0.976797,)],
                   {"status": "finished"}, spec.config.to_dict())
    progress = suite.runs[1].directory(out) / "progress.csv"
    with progress.open(newline="") as f:
        text = f.read()
    with progress.open("w", newline="") as f:
        f.write(damage(text))
    report, _ = write_report(out, figures=False)
    numbers = report.to_json()
    sac = numbers["tasks"]["hopper"]["algos"]["sac"]
    assert sac["seeds"] == [0] and sac["final"]["eval_return"]["values"] == [0.976797]
    assert numbers["counts"] == {"finished": 1, "damaged": 1} and numbers["incomplete"] == ["hopper/sac/seed-1"]
    (entry,) = [r for r in numbers["runs"] if r["status"] == "damaged"]
    assert says in entry["error"] and str(progress) in entry["error"]
    assert "| hopper/sac/seed-1 | damaged | " in report.to_markdown()


def test_a_run_of_another_schedule_is_listed_as_outdated(tmp_path):
    # The suite's steps were raised from 300 to 500 after its runs finished; seed 1 has been extended since.
    suite = parse_suite({"name": "longer", "tasks": ["hopper"], "algos": ["sac"], "seeds": 2,
                         "settings": {"steps": 500, "steps_per_epoch": 100}})
    out = tmp_path / "out"
    suite.write_manifest(out)
    seed0, seed1 = suite.runs
    _write_run(seed0.directory(out), [(1.0,)] * 4, {"status": "finished"}, {**seed0.config.to_dict(), "steps": 300})
    _write_run(seed1.directory(out), [(2.0,)] * 6, {"status": "finished"}, seed1.config.to_dict())
    numbers = write_report(out, figures=False)[0].to_json()
    sac = numbers["tasks"]["hopper"]["algos"]["sac"]
    assert sac["seeds"] == [1] and sac["env_steps"] == 500
    (entry,) = [r for r in numbers["runs"] if r["status"] == "outdated"]
    assert entry["key"] == "hopper/sac/seed-0"
    assert "ran 300 env steps in epochs of 100; the suite asks for 500" in entry["error"]
    assert "run `nppac suite run` again to extend it" in entry["error"]


def test_aggregates_put_tasks_on_one_scale_and_compare_with_nppac(tmp_path):
    """Locomotion scores are (R − R_random)/(R_demos − R_random); IQM is the 25 % trimmed mean of the runs' scores;
    P(X > Y) counts the pairs of runs, ties halved."""
    from scipy.stats import trim_mean

    from nppac.experiments.aggregate import aggregate, available, normalization
    from nppac.experiments.report import collect_runs, common_scale_scores, summarize
    from nppac.experiments.suite import ReportSettings

    if not available():
        pytest.skip("rliable (nppac[stats]) is not installed")
    suite = parse_suite({"name": "agg", "tasks": ["hopper"], "algos": ["nppac", "sac"], "seeds": 3,
                         "settings": {"steps": 300, "steps_per_epoch": 100}, "report": {"last_k": 1}})
    out = tmp_path / "out"
    suite.write_manifest(out)
    finals = {"nppac": [15.0, 25.0, 35.0], "sac": [5.0, 17.0, 29.0]}
    for run in suite.runs:
        final = finals[run.algo][run.seed]
        _write_run(run.directory(out), [(0.0,), (1.0,), (2.0,), (final,)], {"status": "finished"},
                   run.config.to_dict())
        (run.directory(out) / "references.json").write_text(json.dumps(
            {"demos": {"return": 45.0}, "random": {"return": 5.0}}))
    report_suite, entries = collect_runs(out)
    report = summarize(report_suite, entries, ReportSettings(1, {}), out, None)
    ends = normalization(report, entries)
    result = aggregate(common_scale_scores(report, entries, ends), ends)
    scaled = {algo: [(f - 5.0) / 40.0 for f in values] for algo, values in finals.items()}
    assert result.normalization == {"hopper": {"random": 5.0, "demos": 45.0}}
    assert result.iqm["nppac"][0] == pytest.approx(trim_mean(scaled["nppac"], 0.25))
    assert result.mean["sac"][0] == pytest.approx(np.mean(scaled["sac"]))
    wins = sum((x > y) + 0.5 * (x == y) for x in scaled["nppac"] for y in scaled["sac"]) / 9
    assert result.improvement["nppac over sac"][0] == pytest.approx(wins)
    lo, hi = result.iqm["nppac"][1:]
    assert lo <= result.iqm["nppac"][0] <= hi


def test_aggregate_intervals_repeat_exactly_and_leave_numpys_generator_alone(monkeypatch):
    """The bootstrap intervals of a report are the same every time it is written, and writing it does not move
    NumPy's global generator."""
    from nppac.experiments import aggregate as module
    from nppac.experiments.aggregate import aggregate, available

    if not available():
        pytest.skip("rliable (nppac[stats]) is not installed")
    monkeypatch.setattr(module, "BOOTSTRAP_REPS", 300)
    scores = {"nppac": {"a": [0.2, 0.5, 0.9], "b": [0.1, 0.4, 0.3]},
              "sac": {"a": [0.3, 0.1, 0.7], "b": [0.6, 0.2, 0.0]}}
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first = aggregate(scores, {})
    assert np.array_equal(np.random.get_state()[1], before)
    np.random.seed(7)
    second = aggregate(scores, {})
    assert (first.iqm, first.mean, first.improvement) == (second.iqm, second.mean, second.improvement)


def test_performance_profile_bands_repeat_exactly(tmp_path, monkeypatch):
    """The profiles' bootstrap bands are drawn from the report's seeded generator, like its intervals."""
    from nppac.experiments.aggregate import aggregate, available

    if not available():
        pytest.skip("rliable (nppac[stats]) is not installed")
    from rliable import plot_utils

    from nppac.experiments import aggregate as module

    monkeypatch.setattr(module, "BOOTSTRAP_REPS", 300)
    drawn, colors = [], []
    monkeypatch.setattr(plot_utils, "plot_performance_profiles",
                        lambda profiles, taus, performance_profile_cis, **kw: drawn.append(performance_profile_cis)
                        or colors.append(kw["colors"]))
    # Eight runs a task: with three, the bands' percentiles fall on the same fractions whatever the resamples.
    values = np.random.default_rng(0).random((2, 2, 8)).round(3).tolist()
    scores = {algo: {"a": values[i][0], "b": values[i][1]} for i, algo in enumerate(("nppac", "sac"))}
    for seed in (1, 2):
        np.random.seed(seed)
        before = np.random.get_state()[1].copy()
        aggregate(scores, {}, tmp_path / f"figures-{seed}")
        assert np.array_equal(np.random.get_state()[1], before)
    first, second = drawn
    assert all(np.array_equal(first[algo], second[algo]) for algo in scores)
    from nppac.diagnostics.style import ALGORITHM_COLORS

    assert colors[0] == {algo: ALGORITHM_COLORS[algo] for algo in scores}  # the colours of every other figure


def test_a_variant_is_reported_and_drawn_apart_from_its_algorithm(tmp_path, monkeypatch):
    import nppac.experiments.report_files as report_module

    suite = parse_suite({"name": "v", "tasks": ["hopper"], "algos": ["nppac", "nppac-ln"], "seeds": 2,
                         "settings": {"steps": 300, "steps_per_epoch": 100}, "report": {"last_k": 1},
                         "variant": {"nppac-ln": {"algo": "nppac", "critic_layernorm": True}}})
    out = tmp_path / "out"
    suite.write_manifest(out)
    finals = {"nppac": [10.0, 20.0], "nppac-ln": [40.0, 60.0]}
    for spec in suite.runs:
        _write_run(spec.directory(out), [(0.0,), (1.0,), (1.0,), (finals[spec.algo][spec.seed],)],
                   {"status": "finished"}, spec.config.to_dict())
    drawn = []
    monkeypatch.setattr(report_module, "plot_comparison",
                        lambda comparison, path: drawn.append([g.name for g in comparison.groups]) or path)
    hopper = write_report(out, figures=True)[0].to_json()["tasks"]["hopper"]
    assert hopper["algos"]["nppac-ln"]["final"]["eval_return"]["values"] == [40.0, 60.0]
    assert hopper["differences"]["nppac-ln"]["final"]["diff"] == pytest.approx(35.0)
    assert drawn == [["nppac", "nppac-ln"]]


def test_differences_are_marked_on_p_values_adjusted_across_the_report(tmp_path, monkeypatch, capsys):
    """The report's eight comparisons (two tasks × two algorithms × final and AUC) are one family."""
    from scipy import stats

    suite = parse_suite({"name": "family", "tasks": ["hopper", "walker2d"], "algos": ["nppac", "sac", "awac"],
                         "seeds": 3, "settings": {"steps": 300, "steps_per_epoch": 100}, "report": {"last_k": 1}})
    out = tmp_path / "out"
    suite.write_manifest(out)
    # Rows (0, 0, 0, y): final y, AUC y/6, so each algorithm's AUC difference has its final's t and p.
    finals = {"nppac": [10.0, 20.0, 30.0], "sac": [70.0, 80.0, 90.0], "awac": [35.0, 45.0, 55.0]}
    for spec in suite.runs:
        _write_run(spec.directory(out), [(0.0,), (0.0,), (0.0,), (finals[spec.algo][spec.seed],)],
                   {"status": "finished"}, spec.config.to_dict())
    p_sac = stats.ttest_ind(finals["sac"], finals["nppac"], equal_var=False).pvalue  # 0.0018
    p_awac = stats.ttest_ind(finals["awac"], finals["nppac"], equal_var=False).pvalue  # 0.038
    # Holm over m = 8, sorted: sac's four (8, 7, 6, 5 × p_sac → running max 8·p_sac), then awac's four
    # (4, 3, 2, 1 × p_awac → 4·p_awac). BH: min over j ≥ i of 8·p_(j)/j: sac's 8·p_sac/4, awac's 8·p_awac/8.
    expected = {"holm": {"sac": 8 * p_sac, "awac": 4 * p_awac}, "bh": {"sac": 2 * p_sac, "awac": p_awac},
                "none": {"sac": p_sac, "awac": p_awac}}
    for method in ("holm", "bh", "none"):
        numbers = write_report(out, figures=False, adjust=method)[0].to_json()
        assert numbers["comparisons"] == {"family": numbers["comparisons"]["family"], "size": 8, "adjust": method,
                                          "p_label": {"holm": "p_Holm", "bh": "p_BH", "none": "p"}[method],
                                          "alpha": 0.05}
        for task in ("hopper", "walker2d"):
            for algo in ("sac", "awac"):
                for summary in ("final", "auc"):
                    d = numbers["tasks"][task]["differences"][algo][summary]
                    assert d["p"] == pytest.approx(p_sac if algo == "sac" else p_awac)
                    assert d["p_adjusted"] == pytest.approx(expected[method][algo])
                    assert d["supported"] == (expected[method][algo] < 0.05)
                    assert d["lo"] > 0  # every Welch interval excludes 0; under Holm awac's are not marked
    markdown = (out / "report.md").read_text()  # the last written: none
    assert markdown.count("**✓**") == 8 and "not adjusted for the 8 comparisons of this report" in markdown
    # The suite file's [report] adjust, and the flag over it.
    suite = parse_suite({"name": "family", "tasks": ["hopper", "walker2d"], "algos": ["nppac", "sac", "awac"],
                         "seeds": 3, "settings": {"steps": 300, "steps_per_epoch": 100},
                         "report": {"last_k": 1, "adjust": "bh"}})
    suite.write_manifest(out)
    bh = write_report(out, figures=False)[0]
    assert bh.settings.adjust == "bh" and all(d.supported for t in bh.tasks for d in t.differences)
    markdown = (out / "report.md").read_text()
    assert "adjusted by Benjamini–Hochberg across the family of the 8 comparisons of this report" in markdown
    # Welch: 60 ± t(0.975, 4)·√(100/3 + 100/3) = 60 ± 22.67; the AUCs a sixth of it.
    p_bh = f"p_BH {2 * p_sac:.2g} **✓**"
    assert f"| sac | +60 [+37.33, +82.67], {p_bh} | +10 [+6.222, +13.78], {p_bh} |" in markdown
    code, stdout, _ = nppac_in_process(monkeypatch, capsys, "suite", "report", str(out), "--json", "--adjust", "holm")
    holm = json.loads(stdout)["tasks"]["hopper"]["differences"]
    assert code == 0 and holm["sac"]["final"]["supported"] is True and holm["awac"]["final"]["supported"] is False
    with pytest.raises(NppacError, match="report.adjust must be one of holm, bh, none"):
        parse_suite({"name": "x", "tasks": ["hopper"], "algos": ["sac"], "seeds": 1,
                     "report": {"adjust": "bonferroni"}})
    with pytest.raises(NppacError, match="--adjust must be one of holm, bh, none"):
        write_report(out, figures=False, adjust="bonferroni")


def test_success_rate_intervals_stay_within_0_and_1(tmp_path):
    suite = parse_suite({"name": "bounded", "tasks": ["door-binary"], "algos": ["nppac", "sac"], "seeds": 3,
                         "settings": {"steps": 300, "steps_per_epoch": 100}, "report": {"last_k": 1}})
    out = tmp_path / "out"
    suite.write_manifest(out)
    finals = {"nppac": [0.0, 0.0, 0.2], "sac": [1.0, 1.0, 0.8]}
    for spec in suite.runs:
        y = finals[spec.algo][spec.seed]
        _write_run(spec.directory(out), [(-100.0, y), (-100.0, y), (-100.0, y), (-100.0, y)],
                   {"status": "finished"}, spec.config.to_dict(), binary=True)
    door = write_report(out, figures=False)[0].to_json()["tasks"]["door-binary"]
    # sac: mean 0.9333, s = 0.1155, t-half-width 4.303·0.1155/√3 = 0.287: [0.647, 1.220] cut to [0.647, 1].
    sac = door["algos"]["sac"]["final"]["eval_success"]
    half = T_975_2 * np.std(finals["sac"], ddof=1) / math.sqrt(3)
    assert (sac["lo"], sac["hi"]) == pytest.approx((np.mean(finals["sac"]) - half, 1.0))
    nppac = door["algos"]["nppac"]["final"]["eval_success"]
    assert nppac["lo"] == 0.0 and nppac["hi"] < 1.0
    # The difference, 0.867 ± 2.776·0.0943 = [0.605, 1.128], cut to [0.605, 1].
    diff = door["differences"]["sac"]["final"]
    assert diff["hi"] == 1.0 and 0.6 < diff["lo"] < 0.61
    returns = door["algos"]["sac"]["final"]["eval_return"]  # returns are not bounded
    assert returns["lo"] == returns["hi"] == -100.0


def test_a_diverged_runs_final_is_the_same_in_the_report_and_the_tables(tmp_path):
    """One definition: the mean of the last K rows of the run's schedule, its last evaluation held after it
    stopped; the report, competence and pathology tables give the same number for the same run."""
    from nppac.experiments.tables import competence, pathology

    suite = parse_suite({"name": "div", "tasks": ["hopper"], "algos": ["sac"], "seeds": 2,
                         "settings": {"steps": 600, "steps_per_epoch": 100}, "report": {"last_k": 3}})
    out = tmp_path / "out"
    suite.write_manifest(out)
    diverged, finished = (spec.directory(out) for spec in suite.runs)
    # Diverged after epoch 2 of 6: rows at epochs 0, 1, 2; epochs 3-6 hold its last evaluation, 2.
    _write_run(diverged, [(50.0,), (8.0,), (2.0,)], {"status": "diverged", "error": "critic loss became NaN"},
               suite.runs[0].config.to_dict())
    _write_run(finished, [(50.0,), (1.0,), (2.0,), (3.0,), (4.0,), (5.0,), (6.0,)], {"status": "finished"},
               suite.runs[1].config.to_dict())
    runs = {r["seed"]: r for r in write_report(out, figures=False)[0].to_json()["runs"]}
    assert runs[0]["eval_return"]["final"] == 2.0  # not (50 + 8 + 2)/3 = 20, nor (8 + 2)/2
    assert runs[1]["eval_return"]["final"] == 5.0
    for seed, directory in enumerate((diverged, finished)):
        assert competence.summarize(directory, math.nan)["final"] == runs[seed]["eval_return"]["final"]
        assert pathology.summarize(directory)["final"] == runs[seed]["eval_return"]["final"]
    # Diverged within its first epoch (a step-0 row only): its final is what its checkpoint, the initial
    # policy, scores.
    diverged_early = tmp_path / "early" / "hopper" / "sac" / "seed-0"
    _write_run(diverged_early, [(50.0,)], {"status": "diverged"}, suite.runs[0].config.to_dict())
    assert competence.summarize(diverged_early, math.nan)["final"] == 50.0


def test_a_run_that_evaluates_every_few_epochs_is_checked_and_averaged_by_its_env_steps(tmp_path):
    suite = parse_suite({"name": "sparse", "tasks": ["hopper"], "algos": ["sac"], "seeds": 4,
                         "settings": {"steps": 1000, "steps_per_epoch": 100, "eval_every": 4},
                         "report": {"last_k": 2}})
    out = tmp_path / "out"
    suite.write_manifest(out)
    config = suite.runs[0].config.to_dict()
    # 10 epochs evaluated every 4th and at the last: rows at epochs 0, 4, 8, 10.
    specs = {spec.seed: spec for spec in suite.runs}
    _write_run(specs[0].directory(out), [(0.0,), (4.0,), (8.0,), (10.0,)], {"status": "finished"}, config,
               epochs=[0, 4, 8, 10])
    # Extended from 6 epochs: its former last row (epoch 6) stays, off the new cadence.
    _write_run(specs[1].directory(out), [(0.0,), (4.0,), (6.0,), (8.0,), (10.0,)], {"status": "finished"}, config,
               epochs=[0, 4, 6, 8, 10])
    _write_run(specs[2].directory(out), [(0.0,), (4.0,), (10.0,)], {"status": "finished"}, config,
               epochs=[0, 4, 10])  # epoch 8's row lost
    _write_run(specs[3].directory(out), [(0.0,), (4.0,)], {"status": "diverged"}, config, epochs=[0, 4])
    numbers = write_report(out, figures=False)[0].to_json()
    runs = {r["seed"]: r for r in numbers["runs"]}
    assert [runs[s]["status"] for s in range(4)] == ["finished", "finished", "damaged", "diverged"]
    assert "lacks the rows at env_steps 800: a run of 10 epochs × 100 steps writes one row at env_steps 0 and " \
           "one every 4 epochs and at the last" in runs[2]["error"]
    # Finals: the last 2 rows (8 and 10: 9), and the diverged run's 4 held at epochs 8 and 10.
    assert [runs[s]["eval_return"]["final"] for s in (0, 1, 3)] == [9.0, 9.0, 4.0]
    # AUC by env steps: seed 0's trapezoids (0→4: 8, 4→8: 24, 8→10: 18) over 1,000 steps.
    assert runs[0]["eval_return"]["auc"] == pytest.approx((400 * 2 + 400 * 6 + 200 * 9) / 1000)
    assert runs[3]["eval_return"]["auc"] == pytest.approx((400 * 2 + 600 * 4) / 1000)
