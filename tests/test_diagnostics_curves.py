"""`nppac compare`: learning curves aggregated over seeds from hand-written progress files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from nppac.diagnostics.curves import PANELS, compare_runs, load_run, t_interval
from nppac.errors import NppacError
from tests.conftest import REPO, run_cli

COLUMNS = ["epoch", "env_steps", "wall_s", "eval_return", "q_mean", "kl_mean", "prior_log_prob_mean",
           "policy_grad_norm", "critic_grad_norm", "alpha", "updates_per_s", "env_steps_per_s"]


def write_run(root: Path, name: str, config: dict, table: dict[str, list[float]]) -> Path:
    """A run directory with config.json and a progress.csv holding ``table`` (other columns filled)."""
    run = root / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config))
    n = len(table["env_steps"])
    columns = COLUMNS + [c for c in table if c not in COLUMNS]
    rows = [",".join(columns)]
    for i in range(n):
        rows.append(",".join(str(table[c][i]) if c in table else "1.0" for c in columns))
    (run / "progress.csv").write_text("\n".join(rows) + "\n")
    return run


def independent_t(values: list[float]) -> tuple[float, float, float]:
    """mean and 95 % t-interval computed with scipy's own interval function."""
    values_arr = np.asarray(values, dtype=float)
    mean = values_arr.mean()
    lo, hi = stats.t.interval(0.95, len(values_arr) - 1, loc=mean, scale=stats.sem(values_arr))
    return mean, lo, hi


RETURNS = {  # seed -> eval_return per epoch; seed 2 runs one epoch longer
    0: [10.0, 20.0, 35.0],
    1: [12.0, 25.0, 30.0],
    2: [8.0, 18.0, 41.0, 50.0],
}
GRAD = {0: [1.0, 10.0, 100.0], 1: [4.0, 40.0, 400.0], 2: [2.0, 20.0, 200.0, 5.0]}


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    dirs = []
    for seed, returns in RETURNS.items():
        steps = [1000 * (i + 1) for i in range(len(returns))]
        dirs.append(write_run(tmp_path, f"nppac-{seed}", {"task": "halfcheetah", "algo": "nppac", "seed": seed},
                              {"env_steps": steps, "eval_return": returns, "q_mean": [s / 100 for s in steps],
                               "policy_grad_norm": GRAD[seed]}))
    dirs.append(write_run(tmp_path, "sac-0", {"task": "halfcheetah", "algo": "sac", "seed": 0},
                          {"env_steps": [1000, 2000, 3000], "eval_return": [1.0, 2.0, 3.0],
                           "policy_grad_norm": [1.0, 1.0, 1.0]}))
    return dirs


def test_cli_mean_and_interval_match_independent_computation(runs: list[Path], tmp_path: Path):
    out = tmp_path / "figs" / "compare.png"
    proc = run_cli("compare", *map(str, runs), "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    numbers = json.loads(proc.stdout)
    assert out.stat().st_size > 10_000
    assert json.loads(out.with_suffix(".json").read_text()) == numbers
    assert run_cli("compare", *map(str, runs), "--out", str(out)).returncode == 0  # its own numbers are replaced

    nppac = numbers["groups"]["nppac"]
    assert nppac["n"] == 3
    ret = nppac["metrics"]["eval_return"]
    # Common prefix: seed 2's fourth epoch is beyond the other seeds' last step.
    assert ret["env_steps"] == [1000.0, 2000.0, 3000.0]
    for i in range(3):
        mean, lo, hi = independent_t([RETURNS[s][i] for s in range(3)])
        assert ret["mean"][i] == pytest.approx(mean)
        assert ret["lo"][i] == pytest.approx(lo)
        assert ret["hi"][i] == pytest.approx(hi)
    assert ret["final"]["values"] == [35.0, 30.0, 41.0]
    assert ret["final"]["mean"] == pytest.approx(np.mean([35.0, 30.0, 41.0]))

    # The gradient norm is averaged in log space: 1, 4, 2 -> geometric mean 2.
    grad = nppac["metrics"]["policy_grad_norm"]
    assert grad["statistic"] == "geometric_mean"
    log_mean, log_lo, log_hi = independent_t(list(np.log([1.0, 4.0, 2.0])))
    assert grad["mean"][0] == pytest.approx(2.0)
    assert grad["lo"][0] == pytest.approx(np.exp(log_lo))
    assert grad["hi"][0] == pytest.approx(np.exp(log_hi))

    # One seed: no interval; a metric no run logs (kl_mean) is simply absent.
    sac = numbers["groups"]["sac"]
    assert sac["n"] == 1
    assert sac["metrics"]["eval_return"]["lo"] == sac["metrics"]["eval_return"]["mean"] == [1.0, 2.0, 3.0]
    assert numbers["primary_metric"] == "eval_return"


def test_success_is_primary_for_binary_tasks_and_group_by_any_key(tmp_path: Path):
    runs = [
        load_run(write_run(tmp_path, f"r{seed}",
                           {"task": "pen-binary", "algo": "nppac", "seed": seed, "prior": {"kind": k}},
                           {"env_steps": [1000, 2000], "eval_return": [-200, -150],
                            "eval_success": [0.0, 0.4 + 0.2 * seed]}))
        for seed, k in enumerate(["gp", "gp", "nn"])
    ]
    comparison = compare_runs(runs, group_by="prior.kind")
    assert comparison.primary.column == "eval_success"
    assert [g.name for g in comparison.groups] == ["gp", "nn"]
    mean, lo, hi, n = comparison.groups[0].curves["eval_success"].summary()
    np.testing.assert_allclose(mean, [0.0, 0.5])
    assert n.tolist() == [2, 2]


def test_group_by_a_combination_of_keys(tmp_path: Path):
    runs = [load_run(write_run(tmp_path, f"r{i}", {"algo": algo, "prior_sigma": sigma},
                               {"env_steps": [1000, 2000], "eval_return": [1.0, 2.0]}))
            for i, (algo, sigma) in enumerate([("nppac", "std"), ("nppac", "variance"), ("nppac", "std")])]
    groups = compare_runs(runs, group_by="algo, prior_sigma").groups
    assert [(g.name, len(g.runs)) for g in groups] == [("nppac / std", 2), ("nppac / variance", 1)]
    with pytest.raises(NppacError, match="has no 'seed' to group by"):
        compare_runs(runs, group_by="algo,seed")
    # Combined keys: the color follows the first value, the line style the rest.
    from nppac.diagnostics.curves import _group_styles

    looks = _group_styles(["nppac / std", "nppac / variance", "sac / std"])
    assert looks[0][0] == looks[1][0] != looks[2][0] and looks[0][1] == looks[2][1] != looks[1][1]
    assert {line for _, line in _group_styles(["nppac", "sac"])} == {"-"}


def test_runs_with_other_step_grids_are_interpolated(tmp_path: Path):
    a = write_run(tmp_path, "a", {"algo": "x"}, {"env_steps": [1000, 2000, 3000], "eval_return": [1.0, 2.0, 3.0]})
    b = write_run(tmp_path, "b", {"algo": "x"},
                  {"env_steps": [500, 1500, 2500, 3500], "eval_return": [0.0, 10.0, 20.0, 30.0]})
    (group,) = compare_runs([load_run(a), load_run(b)]).groups
    c = group.curves["eval_return"]
    np.testing.assert_allclose(c.env_steps, [1000, 2000, 3000])
    np.testing.assert_allclose(c.per_run[1], [5.0, 15.0, 25.0])


def test_kl_panel_leaves_out_runs_without_a_prior(tmp_path: Path):
    # Earlier versions logged SAC's log π − 0 (−entropy, not a KL) under kl_mean: read as log_pi_mean, not drawn.
    with_prior = write_run(tmp_path, "nppac", {"algo": "nppac", "prior": "priors/gp"},
                           {"env_steps": [1000, 2000], "eval_return": [1.0, 2.0], "kl_mean": [3.0, 4.0]})
    without = write_run(tmp_path, "sac", {"algo": "sac", "prior": None},
                        {"env_steps": [1000, 2000], "eval_return": [1.0, 2.0], "kl_mean": [-2.0, -2.5]})
    # A prior passed as an object (the API, the quickstart) leaves config.json's prior empty: the algorithm decides.
    in_memory = write_run(tmp_path, "ppac-nn", {"algo": "ppac-nn", "prior": None},
                          {"env_steps": [1000, 2000], "eval_return": [1.0, 2.0], "kl_mean": [5.0, 6.0]})
    groups = {g.name: g for g in compare_runs([load_run(with_prior), load_run(without), load_run(in_memory)]).groups}
    assert "kl_mean" in groups["nppac"].curves and "kl_mean" not in groups["sac"].curves
    assert "kl_mean" in groups["ppac-nn"].curves
    assert "q_mean" in groups["sac"].curves  # other panels keep every run
    assert load_run(without).columns["log_pi_mean"].tolist() == [-2.0, -2.5]


def _today(progress: str, uses_prior: bool) -> str:
    """A progress.csv of an earlier version with its header written under today's column names."""
    header, body = progress.split("\n", 1)
    names = {"target_kl": "next_kl_mean"} if uses_prior else \
        {"target_kl": "next_log_pi_mean", "kl_mean": "log_pi_mean"}
    return ",".join(names.get(c, c) for c in header.split(",")) + "\n" + body


def test_runs_of_earlier_versions_read_and_compare_as_runs_written_today(tmp_path: Path):
    # Committed runs, written before the penalty columns were renamed: SAC's and SAC+BC's log π as kl_mean,
    # every KL-SAC run's critic-target penalty as target_kl.
    import shutil

    old, new = [], []
    for algo in ("nppac", "ppac-nn", "sac", "sac-bc"):
        source = REPO / "results" / "cpu" / "halfcheetah" / algo / "seed-0"
        assert "target_kl" in (source / "progress.csv").read_text().split("\n", 1)[0]
        target = tmp_path / "today" / algo
        shutil.copytree(source, target)
        with_prior = algo in ("nppac", "ppac-nn")
        (target / "progress.csv").write_text(_today((source / "progress.csv").read_text(), with_prior))
        old.append(load_run(source))
        new.append(load_run(target))
    for before, after in zip(old, new):
        assert list(before.columns) == list(after.columns)
        for name in before.columns:
            np.testing.assert_array_equal(before.columns[name], after.columns[name])
        assert "target_kl" not in after.columns
    sac = old[2].columns
    assert "log_pi_mean" in sac and "next_log_pi_mean" in sac and "kl_mean" not in sac
    assert "kl_mean" in old[0].columns and "next_kl_mean" in old[0].columns
    numbers = compare_runs(old).to_json()
    today = compare_runs(new).to_json()
    for numbers_of in (numbers, today):
        for group in numbers_of["groups"].values():
            group.pop("runs")
    assert numbers == today
    assert set(numbers["groups"]["nppac"]["metrics"]) >= {"eval_return", "kl_mean"}
    assert "kl_mean" not in numbers["groups"]["sac"]["metrics"]


def test_axis_limits_follow_the_runs_not_the_interval():
    from nppac.diagnostics.curves import RETURN, _run_limits

    # Two seeds: t(0.975, 1) = 12.7 puts the band at about ±64 around these runs; the axis stays near them.
    runs = [np.array([[0.0, 10.0], [5.0, 7.0]])]
    assert _run_limits(runs, RETURN) == pytest.approx((-0.5, 10.5))
    grad = next(m for m in PANELS if m.log)
    assert _run_limits([np.array([[1.0, 100.0, -1.0]])], grad) == pytest.approx((1 / 1.5, 150.0))
    assert _run_limits([np.full((2, 2), np.nan)], RETURN) is None


def test_t_interval_ignores_missing_values():
    values = np.array([[1.0, np.nan], [3.0, 4.0], [5.0, np.nan]])
    mean, lo, hi, n = t_interval(values)
    assert n.tolist() == [3, 1]
    np.testing.assert_allclose(mean, [3.0, 4.0])
    assert hi[0] - mean[0] == pytest.approx(stats.t.ppf(0.975, 2) * 2.0 / np.sqrt(3))
    assert lo[1] == hi[1] == 4.0


def test_bad_run_dirs_exit_2_naming_them(runs: list[Path], tmp_path: Path):
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    proc = run_cli("compare", str(runs[0]), str(empty), "--out", str(tmp_path / "c.png"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "not-a-run" in proc.stderr and "progress.csv" in proc.stderr

    garbled = tmp_path / "garbled"
    garbled.mkdir()
    (garbled / "progress.csv").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(NppacError, match="garbled"):
        load_run(garbled)

    proc = run_cli("compare", str(runs[0]), "--out", str(tmp_path / "c.png"), "--group-by", "optimizer")
    assert proc.returncode == 2 and "optimizer" in proc.stderr and "Traceback" not in proc.stderr


def _drawn(monkeypatch, runs: list, tmp_path: Path) -> Any:
    """The figure :func:`plot_comparison` draws for ``runs``, drawn but not closed."""
    from nppac.diagnostics import style
    from nppac.diagnostics.curves import plot_comparison

    figures = []
    monkeypatch.setattr(style, "save_figure", lambda fig, path: figures.append(fig) or Path(path))
    plot_comparison(compare_runs(runs), tmp_path / "c.png")
    figures[0].canvas.draw()
    return figures[0]


def _labels(ax) -> list[str]:
    lo, hi = sorted(ax.get_ylim())
    return [t.get_text() for t in ax.get_yticklabels() if t.get_text() and lo <= t.get_position()[1] <= hi]


@pytest.mark.parametrize(("q", "kl"), [
    ([-20.0, -12.0, -5.0], [5.0, 20.0, 40.0]),  # within a decade or two: the scales' own ticks label one value
    ([-1e7, 10.0, 1e5], [1.0, 1e9, 1e13]),
    ([9.0, 10.0, 11.0], [0.002, 0.01, 0.05]),
    ([-3.0, -3.1, -3.2], [1e12, 1.02e12, 1.05e12]),
])
def test_q_and_kl_axes_carry_at_least_three_labels(monkeypatch, tmp_path: Path, q, kl):
    runs = [load_run(write_run(tmp_path, f"s{seed}", {"algo": "nppac", "seed": seed},
                               {"env_steps": [1000, 2000, 3000], "eval_return": [1.0, 2.0, 3.0],
                                "q_mean": [v * (1 + 0.01 * seed) for v in q], "kl_mean": kl}))
            for seed in range(2)]
    axes = _drawn(monkeypatch, runs, tmp_path).axes
    for ax, metric in zip(axes[1:3], ("q_mean", "kl_mean")):
        assert metric.split("_")[0] in ax.get_ylabel().lower()
        assert len(_labels(ax)) >= 3, (metric, _labels(ax))


def test_the_kl_at_step_0_is_the_initialized_actors(monkeypatch, tmp_path: Path):
    run = load_run(write_run(tmp_path, "r", {"algo": "nppac"},
                             {"phase": ["init", "online", "online"], "env_steps": [0, 1000, 2000],
                              "eval_return": [1.0, 2.0, 3.0], "init_kl": [4.5, "", ""], "kl_mean": ["", 6.0, 7.0]}))
    np.testing.assert_allclose(run.columns["kl_mean"], [4.5, 6.0, 7.0])
    kl_axis = _drawn(monkeypatch, [run], tmp_path).axes[2]
    (line,) = kl_axis.get_lines()
    assert line.get_xdata()[0] == 0 and line.get_ydata()[0] == 4.5


def test_an_algorithm_has_one_colour_in_every_figure(monkeypatch, tmp_path: Path):
    from nppac.diagnostics import style
    from nppac.training.algorithms import ALGORITHMS

    def colours(algos: list[str], where: str) -> dict[str, str]:
        runs = [load_run(write_run(tmp_path / where, a, {"algo": a}, {"env_steps": [0, 1000], "eval_return": [1, 2]}))
                for a in algos]
        ax = _drawn(monkeypatch, runs, tmp_path).axes[0]
        return {line.get_label().split(" ")[0]: line.get_color() for line in ax.get_lines()}

    one = colours(["sac", "nppac", "my-variant"], "one")
    two = colours(["my-variant", "awac", "bc", "nppac"], "two")
    assert one["nppac"] == two["nppac"] and one["my-variant"] == two["my-variant"]
    assert one["nppac"] == style.ALGORITHM_COLORS["nppac"] and one["my-variant"] == style.color("my-variant")
    assert len(set(two.values())) == 4
    assert set(ALGORITHMS) <= set(style.ALGORITHM_COLORS)
    assert len(set(style.ALGORITHM_COLORS.values()) | set(style.OTHER_COLORS)) == \
        len(style.ALGORITHM_COLORS) + len(style.OTHER_COLORS)
