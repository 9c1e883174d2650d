"""The paper's claims, one verdict each, computed from the committed suites: docs/RESULTS.md's first table.

    python benchmarks/verdicts.py [RESULTS]          (default: results; run benchmarks/results_figures.sh first)
    python benchmarks/verdicts.py [RESULTS] --cells  (the numbers behind i-a, i-b and iv, cell by cell)

Prints a Markdown table, a row per claim of Rudner et al. (NeurIPS 2021; DESIGN.md §5): the claim, its verdict,
the key number with its 95 % interval, how firm it is (seeds, adjusted p-value and the family it is adjusted in),
the horizon measured as a share of the paper's, and the suite folders it reads. Every number comes from the
project's own functions: each suite's ``report.json`` (``nppac suite report``: finals by
:func:`nppac.experiments.report.run_final`, intervals and Holm-adjusted p-values by
:mod:`nppac.experiments.stats`), the run-by-run summaries of ``nppac suite report --table pathology`` and
``--table competence``, and the ``--versus`` differences of ``--table priors`` (their family and adjustment
as that table prints them).

The verdicts are computed by these rules, never typed:

* **Explosion** (i-a, iv). A run *explodes* when it diverged (a loss or gradient became non-finite) or its
  largest epoch-mean KL(π‖π0) or policy-gradient norm is at least :data:`EXPLOSION` (10) times the largest of
  the nppac runs of the same suite and task: an order of magnitude beyond the GP prior's worst. i-a counts the
  runs of ppac-nn and nppac-nn-std (the NN's σ0): *holds* when every one of every cell explodes, *does not
  hold* when none does, *mixed* otherwise. iv asks whether the NN's σ0 alone, with the GP's mean
  (nppac-nn-std), does what the whole NN prior does: in the cells where some ppac-nn run explodes, *holds* when
  every nppac-nn-std run explodes, *does not hold* when none does, *mixed* otherwise.
* **Stability** (i-b). An nppac run is *stable* when it did not diverge and no evaluation after step 0 falls
  below half of its step-0 evaluation (a run whose step 0 is not above 0, door's, is judged on divergence
  alone). *Holds* when every run is stable; *does not hold* when one diverged or more than half of them fall;
  *mixed* otherwise.
* **Differences** (i-c, iii and the long tier). A comparison is *for* the claim when its adjusted p-value is
  below 0.05 and its sign is the claim's, *against* when it is below 0.05 with the other sign, *unresolved*
  otherwise. *Holds*: every comparison is for; *does not hold*: some are against and none is for; *mixed*:
  some are for and the others against or unresolved; *unresolved*: none is for or against (not evidence that
  the two are equal).
* **A level** (ii). *Holds* when the 95 % interval of the mean reaches the level or lies above it; *does not
  hold* when it lies below.
* **Competence** (beyond the paper). A cell of identical settings keeps the prior when its worst seed's
  minimum over the online epochs of (evaluation ÷ the prior's mean action) is at least 0.9. *Holds* when every
  nppac cell read keeps it, *does not hold* when none does, *mixed* otherwise.
* *untested*: no run the rule needs; *running*: the long tier's folder is absent, or the runs it compares have
  not all finished (its numbers then are interim).

Horizon: the longest run's environment steps as a share of the paper's, with :data:`PAPER_STEPS` as the
denominators: halfcheetah 1M (the paper's HalfCheetah curves; the paper tier, benchmarks/suites/paper.toml);
pen-binary and door-binary 3M (the published run script's default of 3,000 epochs of 1,000 steps, one seed per
launch; benchmarks/suites/cpu_long.toml). The paper tier runs the hand tasks for 500k, AWAC's horizon: against
that, 15k is 3 %.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nppac.experiments.report import collect_runs, summarize
from nppac.experiments.stats import ALPHA, P_LABELS, Welch, p_text
from nppac.experiments.tables import competence, pathology, priors
from nppac.experiments.tables.runs import columns, done, prior_name

EXPLOSION = 10.0
"""A run explodes when its peak KL or policy-gradient norm is this many times the GP prior's (nppac's) largest."""
FALL = 0.5
"""An nppac run falls when an evaluation after step 0 is below this share of its step-0 evaluation."""
KEEP = 0.9
"""A cell keeps its prior's competence when its worst seed's min (evaluation ÷ the prior's mean action) ≥ this."""
STEP0_LEVEL = 0.70
"""The paper's pen-binary success at step 0, after initialization toward the GP prior (DESIGN.md §5)."""
PAPER_STEPS = {"halfcheetah": 1_000_000, "pen-binary": 3_000_000, "door-binary": 3_000_000}
"""The paper's horizon per task, the denominators of the horizon column (see the module's docstring)."""
SHORT = {"halfcheetah": "halfcheetah", "pen-binary": "pen", "door-binary": "door"}
NN_ALGOS = ("ppac-nn", "nppac-nn-std")

PATHOLOGY_CELLS = [("cpu-published", "halfcheetah"), ("cpu", "halfcheetah"), ("cpu-std", "halfcheetah"),
                   ("cpu-published", "pen-binary"), ("cpu", "pen-binary"), ("cpu-door", "door-binary")]
"""The (suite, task) cells that ran nppac beside the NN-σ0 variants (claims i-a, i-c and iv)."""
STABILITY_CELLS = [*PATHOLOGY_CELLS, ("cpu-door-published", "door-binary")]
"""The cells whose nppac runs i-b reads."""
COMPETENCE = {"halfcheetah": ["cpu-published", "cpu", "cpu-std", "cpu-remedies"],
              "pen-binary": ["cpu-published", "cpu", "cpu-remedies"]}
"""The suites whose nppac cells (and the remedy, nppac-alpha-init) the competence row reads."""
LONG = "cpu-long"
LONG_VERSUS = {"pen-binary": ("awac", "bc"), "halfcheetah": ("awac", "sac")}
"""Claim iii: nppac against these, per task (the short tier and the long one)."""


@dataclass(frozen=True)
class Row:
    claim: str
    verdict: str
    key: str
    firmness: str
    horizon: str
    reads: str

    def markdown(self) -> str:
        cells = (self.claim, f"**{self.verdict}**", self.key, self.firmness, self.horizon, self.reads)
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


# ----------------------------------------------------------------------------------------------------- reading


def report(results: Path, suite: str) -> dict[str, Any] | None:
    """A suite folder's report.json (None when the folder or its report is absent)."""
    path = results / suite / "report.json"
    return json.loads(path.read_text()) if path.is_file() else None


def summaries(results: Path, suite: str, task: str, algos: Iterable[str]) -> list[dict[str, Any]]:
    """The pathology table's summary of every finished or diverged run of the algorithms in the suite and task."""
    folder = results / suite
    present = columns(folder, task) if folder.is_dir() else []
    return [pathology.summarize(run) for algo in algos if algo in present
            for run in sorted((folder / task / algo).glob("seed-*")) if done(run)]


def _peak(runs: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in runs if math.isfinite(r[key])]
    return max(values) if values else math.nan


def explodes(run: dict[str, Any], gp: list[dict[str, Any]]) -> bool:
    """Diverged, or a peak KL or policy-gradient norm ≥ EXPLOSION × the largest of the GP prior's runs."""
    if run["non_finite"] is not None:
        return True
    return any(math.isfinite(run[k]) and math.isfinite(_peak(gp, k)) and run[k] >= EXPLOSION * _peak(gp, k)
               for k in ("kl", "grad"))


def cell_label(results: Path, suite: str, task: str) -> str:
    """``pen published``: the task and its nppac runs' prior (the cell's GP prior)."""
    runs = sorted((results / suite / task / "nppac").glob("seed-*"))
    name = prior_name(json.loads((runs[0] / "config.json").read_text())) if runs else None
    return f"{SHORT.get(task, task)} {name or suite}"


# ---------------------------------------------------------------------------------------------------- numbers


def number(metric: str, signed: bool = False) -> Callable[[float], str]:
    """Success rates in two decimals, returns in whole units (with thousands separators)."""
    pattern = ("{:+.2f}" if signed else "{:.2f}") if "success" in metric else ("{:+,.0f}" if signed else "{:,.0f}")
    return pattern.format


def interval_text(mean: float, lo: float, hi: float, fmt: Callable[[float], str]) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{fmt(mean)} (no interval)"
    return f"{fmt(mean)} [{fmt(lo)}, {fmt(hi)}]"


def side(test: Welch, p_adjusted: float, sign: int) -> str:
    """for / against / unresolved: the comparison against the claim, whose difference should have ``sign``."""
    if not math.isfinite(p_adjusted) or p_adjusted >= ALPHA or test.diff == 0:
        return "unresolved"
    return "for" if (test.diff > 0) == (sign > 0) else "against"


def comparisons_verdict(sides: list[str]) -> str:
    """The differences rule of the module's docstring."""
    if not sides:
        return "untested"
    n_for, n_against = sides.count("for"), sides.count("against")
    if n_for == len(sides):
        return "holds"
    if n_for:
        return "mixed"
    return "does not hold" if n_against else "unresolved"


def share_verdict(hits: int, total: int) -> str:
    if total == 0:
        return "untested"
    return "holds" if hits == total else "does not hold" if hits == 0 else "mixed"


def horizon(steps: dict[str, float]) -> str:
    """``halfcheetah 30k of 1M (3 %)``, per task, from the longest run's env steps."""
    parts = []
    for task, value in steps.items():
        paper = PAPER_STEPS.get(task)
        if paper is None or not math.isfinite(value):
            continue
        share = 100 * value / paper
        parts.append(f"{SHORT.get(task, task)} {_steps(value)} of {_steps(paper)} ({share:.2g} %)")
    return "; ".join(parts) or "—"


def _steps(value: float) -> str:
    return f"{value / 1e6:g}M" if value >= 1e6 else f"{value / 1e3:g}k"


def report_steps(results: Path, cells: Iterable[tuple[str, str]]) -> dict[str, float]:
    """Task → the longest env steps of the cells' runs (from their reports)."""
    out: dict[str, float] = {}
    for suite, task in cells:
        data = report(results, suite)
        algos = (data or {}).get("tasks", {}).get(task, {}).get("algos", {})
        for summary in algos.values():
            out[task] = max(out.get(task, 0.0), float(summary["env_steps"]))
    return out


def _range(values: list[int]) -> str:
    return "–".join(str(v) for v in dict.fromkeys([min(values), max(values)])) if values else "0"


def _family(data: dict[str, Any]) -> str:
    comparisons = data["comparisons"]
    return f"{comparisons['size']} comparisons of the {data['suite']} report"


# ----------------------------------------------------------------------------------------------------- claims


def pathology_cells(results: Path) -> list[tuple[str, str, list[dict[str, Any]], dict[str, list[dict[str, Any]]]]]:
    """(suite, task, nppac's run summaries, algo → the NN-σ0 variants' summaries) of each cell that has both."""
    out = []
    for suite, task in PATHOLOGY_CELLS:
        gp = summaries(results, suite, task, ["nppac"])
        nn = {algo: summaries(results, suite, task, [algo]) for algo in NN_ALGOS}
        if gp and any(nn.values()):
            out.append((suite, task, gp, nn))
    return out


def claim_explodes(results: Path) -> Row:
    cells = pathology_cells(results)
    parts, hits, total, nn_peak, gp_peak = [], 0, 0, 0.0, 0.0
    for suite, task, gp, nn in cells:
        runs = [r for algo in NN_ALGOS for r in nn[algo]]
        n = sum(explodes(r, gp) for r in runs)
        hits, total = hits + n, total + len(runs)
        parts.append(f"{cell_label(results, suite, task)} {n}/{len(runs)}")
        nn_peak = max(nn_peak, _peak(runs, "kl"))
        gp_peak = max(gp_peak, _peak(gp, "kl"))
    key = (f"NN-σ0 runs that explode: {', '.join(parts)}; peak KL up to {nn_peak:.2g}, nppac's ≤ {gp_peak:.2g}"
           if cells else "—")
    seeds = sorted({len(nn[a]) for *_, nn in cells for a in NN_ALGOS if nn[a]})
    return Row("i-a. With the NN prior, KL and gradient norms explode", share_verdict(hits, total), key,
               f"{total} runs of ppac-nn and nppac-nn-std in {len(cells)} cells, {_range(seeds)} seeds an algorithm "
               "a cell; counts, no test",
               horizon(report_steps(results, [(s, t) for s, t, *_ in cells])),
               ", ".join(dict.fromkeys(s for s, *_ in cells)))


def claim_stable(results: Path) -> Row:
    runs: list[tuple[str, dict[str, Any]]] = []
    for suite, task in STABILITY_CELLS:
        runs += [(task, r) for r in summaries(results, suite, task, ["nppac"])]
    judged = [(task, r) for task, r in runs if r["step0"] > 0]
    falls = {task: sum(r["drop"] is not None for t, r in judged if t == task) for task in dict.fromkeys(t for t, _ in
                                                                                                    judged)}
    counts = {task: sum(t == task for t, _ in judged) for task in falls}
    diverged = sum(r["non_finite"] is not None for _, r in runs)
    fallen = sum(falls.values())
    if not runs:
        verdict = "untested"
    elif diverged or fallen > len(judged) / 2:
        verdict = "does not hold"
    else:
        verdict = "holds" if fallen == 0 else "mixed"
    every = [r for _, r in runs]
    key = ("nppac runs that fall below ½ of step 0: "
           + ", ".join(f"{SHORT.get(t, t)} {falls[t]}/{counts[t]}" for t in falls)
           + f"; diverged {diverged}/{len(runs)}; peak KL ≤ {_peak(every, 'kl'):.2g}, "
           f"gradient norm ≤ {_peak(every, 'grad'):.3g}")
    cells = [c for c in STABILITY_CELLS if summaries(results, *c, ["nppac"])]
    return Row("i-b. With the GP prior, training stays stable", verdict, key,
               f"{len(runs)} nppac runs in {len(cells)} cells ({len(judged)} with a step 0 above 0, the others "
               "judged on divergence); counts, no test", horizon(report_steps(results, STABILITY_CELLS)),
               ", ".join(dict.fromkeys(s for s, _ in STABILITY_CELLS if (results / s).is_dir())))


def claim_gp_above_nn(results: Path) -> Row:
    """nppac − ppac-nn, final, from each report's differences (ppac-nn − nppac there, nppac its baseline)."""
    found: list[tuple[str, str, Welch, float, int, int, dict[str, Any]]] = []
    for suite, task in PATHOLOGY_CELLS:
        data = report(results, suite)
        summary = (data or {}).get("tasks", {}).get(task)
        if data is None or summary is None or summary.get("baseline") != "nppac":
            continue
        d = summary["differences"].get("ppac-nn", {}).get("final")
        if d is None or d["diff"] is None:
            continue
        nan = math.nan
        flipped = Welch(-d["diff"], -d["hi"] if d["hi"] is not None else nan,
                        -d["lo"] if d["lo"] is not None else nan, d["p"] if d["p"] is not None else nan)
        p_adj = d["p_adjusted"] if d["p_adjusted"] is not None else nan
        n = (summary["algos"]["nppac"]["n"], summary["algos"]["ppac-nn"]["n"])
        found.append((suite, task, flipped, p_adj, *n, data))
    if not found:
        return Row("i-c. The GP prior ends above the NN prior", "untested", "—", "—", "—", "—")
    sides = [side(test, p, +1) for _, _, test, p, *_ in found]
    first = found[0]
    suite, task, test, p_adj, n_gp, n_nn, data = first
    metric = data["tasks"][task]["primary_metric"]
    fmt = number(metric, signed=True)
    label = P_LABELS[data["comparisons"]["adjust"]]
    others = [f"{cell_label(results, s, t)} {number(data_['tasks'][t]['primary_metric'], True)(w.diff)} "
              f"({P_LABELS[data_['comparisons']['adjust']]} {p_text(p)})"
              for (s, t, w, p, _, _, data_) in found[1:]]
    key = (f"nppac − ppac-nn, final, {cell_label(results, suite, task)}: "
           f"{interval_text(test.diff, test.lo, test.hi, fmt)} ({label} {p_text(p_adj)}); also "
           f"{', '.join(others)}")
    seeds = sorted({n for *_, a, b, _ in found for n in (a, b)})
    firmness = (f"{_range(seeds)} seeds a side; {label} {p_text(p_adj)} in the {_family(data)}, each other cell's "
                f"in its own report's family; {sides.count('for')} of {len(sides)} cells for the claim, "
                f"{sides.count('against')} against")
    return Row("i-c. The GP prior ends above the NN prior", comparisons_verdict(sides), key, firmness,
               horizon(report_steps(results, [(s, t) for s, t, *_ in found])),
               ", ".join(dict.fromkeys(s for s, *_ in found)))


def claim_step0(results: Path) -> Row:
    published, std = report(results, "cpu-published"), report(results, "cpu")

    def cell(data: dict[str, Any] | None) -> dict[str, Any] | None:
        algos = (data or {}).get("tasks", {}).get("pen-binary", {}).get("algos", {})
        return algos.get("nppac", {}).get("initial", {}).get("eval_success")

    main, other = cell(published), cell(std)
    if main is None:
        return Row("ii. Pen: the initialized policy succeeds in ≈ 0.70 of episodes", "untested", "—", "—", "—",
                   "cpu-published")
    fmt = number("eval_success")
    verdict = "does not hold" if main["hi"] < STEP0_LEVEL else "holds"
    key = f"nppac's step-0 success, published: {interval_text(main['mean'], main['lo'], main['hi'], fmt)}"
    if other is not None:
        key += f"; std (cpu): {interval_text(other['mean'], other['lo'], other['hi'], fmt)}"
    return Row("ii. Pen: the initialized policy succeeds in ≈ 0.70 of episodes", verdict, key,
               f"{main['n']} seeds sharing one prior fit; a level ({STEP0_LEVEL:.2f}), no test",
               "step 0 (initialization only)", "cpu-published, cpu")


def versus_row(results: Path, claim: str, task: str) -> Row:
    """nppac under the published prior (cpu-published) against the baselines of cpu, on final and AUC, as
    ``nppac suite report --table priors results/cpu-published results/cpu --task TASK --versus X`` prints
    them."""
    suites = [results / "cpu-published", results / "cpu"]
    if not all((s / "report.json").is_file() for s in suites):
        return Row(claim, "untested", "—", "—", "—", "cpu-published, cpu")
    first = report(results, "cpu-published") or {}
    metric = first["tasks"][task]["primary_metric"]
    fmt = number(metric, signed=True)
    keys: list[str] = []
    sides: list[str] = []
    sizes: list[int] = []
    for versus in LONG_VERSUS[task]:
        family = priors.differences(suites, task, versus)
        sizes.append(sum(math.isfinite(t.p) for t, _ in family.values()))
        for quantity in ("final", "auc"):
            test, p = family[quantity, suites[0], "nppac"]
            sides.append(side(test, p, +1))
            keys.append(f"{quantity.replace('auc', 'AUC')} vs {versus.upper()} "
                        f"{interval_text(test.diff, test.lo, test.hi, fmt)} ({P_LABELS['holm']} {p_text(p)}"
                        f"{' ✓' if p < ALPHA else ''})")
    n = first["tasks"][task]["algos"]["nppac"]["n"]
    firmness = (f"{n} seeds a side; {P_LABELS['holm']} within each `--versus` table's family "
                f"({' and '.join(map(str, dict.fromkeys(sizes)))} comparisons, --table priors); "
                f"{sides.count('for')} of {len(sides)} for the claim, {sides.count('against')} against")
    return Row(claim, comparisons_verdict(sides), f"nppac (published) − baseline: {'; '.join(keys)}", firmness,
               horizon(report_steps(results, [("cpu-published", task), ("cpu", task)])), "cpu-published, cpu")


def claim_long_tier(results: Path) -> Row:
    claim = "iii, long tier (cpu-long: pen 100k, halfcheetah 300k, 3 seeds)"
    reads = f"{LONG} (benchmarks/suites/cpu_long.toml)"
    planned = horizon({"pen-binary": 100_000, "halfcheetah": 300_000})
    folder = results / LONG
    if not (folder / "suite.json").is_file():
        return Row(claim, "running", "—", "—", planned, reads)
    suite, entries = collect_runs(folder)
    made = summarize(suite, entries, suite.report, folder)
    keys: list[str] = []
    sides: list[str] = []
    waiting = False
    steps: dict[str, float] = {}
    for task in made.tasks:
        versus = LONG_VERSUS.get(task.task, ())
        compared = {"nppac", *versus}
        waiting |= any(e.run is None for e in entries if e.spec.task == task.task and e.spec.algo in compared)
        fmt = number(task.primary, signed=True)
        for d in task.differences:
            if d.algo in versus and task.baseline == "nppac":
                flipped = Welch(-d.test.diff, -d.test.hi, -d.test.lo, d.test.p)
                sides.append(side(flipped, d.p_adjusted, +1))
                p = p_text(d.p_adjusted) if math.isfinite(d.p_adjusted) else "—"
                keys.append(f"{SHORT.get(task.task, task.task)} {d.summary.replace('auc', 'AUC')} vs "
                            f"{d.algo.upper()} {interval_text(flipped.diff, flipped.lo, flipped.hi, fmt)} "
                            f"({P_LABELS[made.settings.adjust]} {p})")
        if task.algos:
            steps[task.task] = max(a.env_steps for a in task.algos)
    finished = sum(e.run is not None for e in entries)
    verdict = "running" if waiting or not sides else comparisons_verdict(sides)
    key = ("interim: " if waiting else "") + ("nppac − baseline: " + "; ".join(keys) if keys else "—")
    firmness = (f"{finished} of {len(entries)} runs done; {P_LABELS[made.settings.adjust]} within the "
                f"{made.family_size} comparisons of the {suite.name} report")
    return Row(claim, verdict, key, firmness, horizon(steps) if steps else planned, reads)


def claim_variance(results: Path) -> Row:
    cells = pathology_cells(results)
    parts, hits, total = [], 0, 0
    for suite, task, gp, nn in cells:
        if not nn["nppac-nn-std"] or not any(explodes(r, gp) for r in nn["ppac-nn"]):
            continue
        n = sum(explodes(r, gp) for r in nn["nppac-nn-std"])
        hits, total = hits + n, total + len(nn["nppac-nn-std"])
        parts.append(f"{cell_label(results, suite, task)} {n}/{len(nn['nppac-nn-std'])}")
    calm = [cell_label(results, s, t) for s, t, gp, nn in cells
            if nn["ppac-nn"] and not any(explodes(r, gp) for r in nn["ppac-nn"])]
    key = (f"nppac-nn-std runs that explode where ppac-nn's do: {', '.join(parts) or 'none'}"
           + (f"; neither explodes on {', '.join(calm)}" if calm else ""))
    return Row("iv. The NN's σ0 alone (GP mean, NN σ0) brings the explosion", share_verdict(hits, total), key,
               f"{total} nppac-nn-std runs in the cells where a ppac-nn run explodes; counts, no test",
               horizon(report_steps(results, [(s, t) for s, t, *_ in cells])),
               ", ".join(dict.fromkeys(s for s, *_ in cells)))


def claim_competence(results: Path) -> Row:
    """Beyond the paper: does any nppac cell keep ≥ KEEP of its prior's mean action at every epoch, every seed?"""
    kept, total = 0, 0
    best: list[str] = []
    reads: list[str] = []
    references: list[str] = []
    seeds: list[int] = []
    steps: dict[str, float] = {}
    for task, names in COMPETENCE.items():
        suites = [results / s for s in names if (results / s).is_dir()]
        if not suites:
            continue
        reads += [s.name for s in suites]
        present = {c for s in suites for c in columns(s, task)}
        only: list[str] = [c for c in ("nppac", "nppac-alpha-init") if c in present]
        if not only:
            continue
        worst_of: list[tuple[float, str]] = []
        for (_, algo, name), runs in competence.cells(competence.collect(suites, task, only)).items():
            worst = min((r["min_vs_prior"] for r in runs if math.isfinite(r["min_vs_prior"])), default=math.nan)
            if not math.isfinite(worst):
                continue
            total += 1
            kept += worst >= KEEP
            seeds.append(len(runs))
            worst_of.append((worst, f"{algo} ({name})"))
            steps[task] = max([steps.get(task, 0.0), *(r["steps"][-1] for r in runs)])
        if worst_of:
            value, label = max(worst_of)
            best.append(f"{SHORT.get(task, task)} {value:.2f}, {label}")
        baselines: list[str] = ([c for c in ("awac", "bc") if c in columns(results / "cpu", task)]
                                 if (results / "cpu").is_dir() else [])
        for (_, algo, _), runs in competence.cells(
                competence.collect([results / "cpu"], task, baselines)).items() if baselines else []:
            worst = min(r["min_vs_prior"] for r in runs)
            references.append(f"{algo.upper()} on {SHORT.get(task, task)} {worst:.2f}")
    key = (f"the worst seed's min over epochs of evaluation ÷ the prior's mean action, best nppac cell: "
           f"{'; '.join(best)}; {kept} of {total} nppac cells keep ≥ {KEEP}; for reference "
           f"{', '.join(references)}")
    return Row(f"Beyond the paper: keep ≥ {KEEP}× the prior's mean action at every epoch",
               share_verdict(kept, total), key,
               f"{total} cells of identical settings (nppac under each prior and protocol, and the remedy "
               f"nppac-alpha-init), {_range(seeds)} seeds each; every seed must keep it, no test", horizon(steps),
               ", ".join(dict.fromkeys(reads)))


def rows(results: Path) -> list[Row]:
    return [claim_explodes(results), claim_stable(results), claim_gp_above_nn(results), claim_step0(results),
            versus_row(results, "iii. Pen: N-PPAC beats AWAC and BC (short tier)", "pen-binary"),
            versus_row(results, "iii. HalfCheetah: N-PPAC beats AWAC and SAC (short tier)", "halfcheetah"),
            claim_long_tier(results), claim_variance(results), claim_competence(results)]


def cells_table(results: Path) -> list[str]:
    """Markdown lines: per (suite, task) cell, each prior variant's runs, their peak KL and policy-gradient norm,
    how many fell below ½ of step 0 (nppac), diverged, or exploded (the NN-σ0 variants, by i-a's rule)."""
    lines = ["| cell | suite | algo | runs | peak KL | peak policy-grad norm | fell below ½ step 0 | diverged "
             "| explode (× nppac's peak ≥ 10, or diverged) |", "|---|---|---|---|---|---|---|---|---|"]
    for suite, task in STABILITY_CELLS:
        gp = summaries(results, suite, task, ["nppac"])
        if not gp:
            continue
        label = cell_label(results, suite, task)
        for algo in ("nppac", *NN_ALGOS):
            runs = gp if algo == "nppac" else summaries(results, suite, task, [algo])
            if not runs:
                continue
            judged = [r for r in runs if r["step0"] > 0]
            fell = f"{sum(r['drop'] is not None for r in judged)}/{len(judged)}" if judged else "— (step 0 is 0)"
            diverged = sum(r["non_finite"] is not None for r in runs)
            exploded = "—" if algo == "nppac" else f"{sum(explodes(r, gp) for r in runs)}/{len(runs)}"
            lines.append(f"| {label} | {suite} | {algo} | {len(runs)} | {_peak(runs, 'kl'):.3g} "
                         f"| {_peak(runs, 'grad'):.3g} | {fell if algo == 'nppac' else '—'} | {diverged} "
                         f"| {exploded} |")
    return lines


def table(results: Path) -> list[str]:
    """The Markdown lines of the verdict table."""
    header = ["claim", "verdict", "key number [95 % interval]", "firmness", "horizon (share of the paper's)",
              "reads results/"]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *(r.markdown() for r in rows(results))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", type=Path, default=Path("results"),
                        help="the folder of the committed suite exports (default: results)")
    parser.add_argument("--cells", action="store_true",
                        help="instead, the numbers behind i-a, i-b and iv: each cell's runs, peaks, falls and "
                             "explosions")
    args = parser.parse_args()
    if not args.results.is_dir():
        sys.exit(f"{args.results}: no such folder")
    print("\n".join(cells_table(args.results) if args.cells else table(args.results)))


if __name__ == "__main__":
    main()
