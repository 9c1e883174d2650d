"""``nppac diagnose variance|gradients`` and ``nppac compare``: figures plus the numbers behind them.

Every command writes the figure to ``--out`` and its numbers to the same path with a
``.json`` suffix; ``--json`` also prints them on stdout.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from nppac.cli.common import emit_json, print_table, to_json_text
from nppac.outputs import write_atomic

app = typer.Typer(help="Figures that show the pathology: variance maps and gradient probes.", no_args_is_help=True)

_DATA_HELP = "Demonstrations the priors were fitted on (any format `nppac data inspect` reads)."
_PICKLE_HELP = "Allow pickle-based demonstration files (.pkl, object .npy); only for trusted files."
_OUT_HELP = "Figure to write (.png, .pdf or .svg); the numbers go beside it with a .json suffix."
_JSON_HELP = "Also print the numbers as one JSON document on stdout."
_VARIANCE_HELP = ("GP priors' σ0: exact, love (gpytorch 1.0.1's LOVE estimate, the published code's), or both "
                  "(each GP drawn with each).")


@contextmanager
def _progress(description: str, total: int) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr; yields the function that advances it by one."""
    from nppac.training.progress import ProgressBar

    done = itertools.count(1)
    with ProgressBar(True) as bar:
        yield lambda: bar.stage(description, next(done), total)


NUMBERS_FORMAT = "nppac-figure-numbers"
"""The ``format`` of the numbers written beside a figure: what tells them from a file of the user's."""


def _figure_path(out: Path) -> Path:
    """``--out`` checked as a figure, and the ``.json`` beside it, which the numbers replace: new, or numbers that
    one of these commands wrote (their :data:`NUMBERS_FORMAT`; before it, a JSON object beside an nppac PNG)."""
    from nppac.diagnostics import style
    from nppac.errors import NppacError

    figure = style.check_figure_path(out)
    beside = figure.with_suffix(".json")
    try:
        numbers = json.loads(beside.read_text()) if beside.exists() and not beside.is_symlink() else None
    except (OSError, ValueError):
        numbers = None
    if (beside.exists() or beside.is_symlink()) and not (isinstance(numbers, dict) and (
            numbers.get("format") == NUMBERS_FORMAT or style.is_marked_figure(figure))):
        raise NppacError(f"{beside} was not written by nppac, and the figure's numbers would replace it; move it "
                         "away, or choose another --out")
    return figure


def _write_numbers(numbers: dict[str, Any], figure: Path, json_out: bool) -> Path:
    numbers = {"format": NUMBERS_FORMAT, **numbers}
    path = write_atomic(figure.with_suffix(".json"), to_json_text(numbers) + "\n")
    if json_out:
        emit_json(numbers)
    return path


def _report(title: str, columns: list[str], rows: list[list[str]], written: list[Path]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    print_table(table)
    print("wrote " + ", ".join(str(p) for p in written))


@app.command("variance", context_settings={"allow_extra_args": True})
def variance(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help=_DATA_HELP),
    priors: list[Path] = typer.Option(
        ..., "--priors", help="Saved prior directories: --priors A B C (or repeat the flag)."),
    out: Path = typer.Option(..., "--out", help=_OUT_HELP),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help=_PICKLE_HELP),
    grid: int = typer.Option(80, "--grid", help="Grid cells per principal component."),
    extent: float = typer.Option(3.0, "--extent", help="Grid width per component, as a multiple of the data's range."),
    variance: str = typer.Option("exact", "--variance", help=_VARIANCE_HELP),
    json_out: bool = typer.Option(False, "--json", help=_JSON_HELP),
) -> None:
    """Map each prior's predictive std over the demonstrations' first two principal components."""
    from nppac.diagnostics import inputs
    from nppac.diagnostics.variance import VarianceMapConfig, plot_variance_map, variance_map

    out = _figure_path(out)
    config = VarianceMapConfig(grid=grid, extent=extent)
    # `--priors A B` leaves B as an extra argument: click options take one value each.
    directories = [*priors, *(Path(a) for a in ctx.args)]
    states = inputs.demonstration_states(data, allow_pickle)
    labelled = inputs.load_labelled_priors(directories, variance)
    inputs.check_dims(states, labelled, data)
    with _progress("predicting σ0 on the grid", len(labelled)) as advance:
        vmap = variance_map(states, labelled, config, progress=advance)
    figure = plot_variance_map(vmap, out)
    numbers = {"data": str(data), **vmap.to_json()}
    written = [figure, _write_numbers(numbers, figure, json_out)]
    if not json_out:
        _report("predictive std σ0", ["prior", "at data", "outer ring", "ratio"],
                [[p.label, f"{p.std_at_data:.3g}", f"{p.std_outer_ring:.3g}", f"{p.ratio:.3g}"] for p in vmap.priors],
                written)


@app.command("gradients")
def gradients(
    prior_dirs: list[Path] = typer.Option(
        ..., "--prior", help="Saved prior directory (repeat the flag to compare priors)."),
    data: Path = typer.Option(..., "--data", help=_DATA_HELP),
    out: Path = typer.Option(..., "--out", help=_OUT_HELP),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help=_PICKLE_HELP),
    alpha: float = typer.Option(0.1, "--alpha", help="KL temperature α of the actor loss (the norms scale with it)."),
    variance: str = typer.Option("exact", "--variance", help=_VARIANCE_HELP),
    json_out: bool = typer.Option(False, "--json", help=_JSON_HELP),
) -> None:
    """Proposition 1 measured: actor-loss gradient norm against σ0, and under the prior on and off the data."""
    import numpy as np

    from nppac.diagnostics import inputs
    from nppac.diagnostics.gradients import ProbeConfig, offset_probe, plot_gradients, sigma0_sweep
    from nppac.errors import NppacError

    out = _figure_path(out)
    config = ProbeConfig(alpha=alpha)
    states = inputs.demonstration_states(data, allow_pickle)
    labelled = inputs.load_labelled_priors(prior_dirs, variance)
    inputs.check_dims(states, labelled, data)
    act_dims = {p.prior.act_dim for p in labelled}
    if len(act_dims) > 1:
        raise NppacError(
            f"--prior directories predict different action dims {sorted(act_dims)}; pass priors of one task")
    with _progress("probing gradients", 1 + len(labelled) * len(config.offsets)) as advance:
        sweep = sigma0_sweep(states, act_dims.pop(), config)
        advance()
        probes = [offset_probe(p, states, config, progress=advance) for p in labelled]
    figure = plot_gradients(sweep, probes, config, out)
    numbers = {
        "data": str(data), "alpha": config.alpha, "distance": config.distance, "n_states": config.n_states,
        "sweep": sweep.to_json(), "priors": [p.to_json() for p in probes],
    }
    written = [figure, _write_numbers(numbers, figure, json_out)]
    if not json_out:
        rows = [[p.label, "data" if lv.offset == 0 else f"{lv.offset:g}", f"{lv.sigma0_mean:.3g}",
                 f"{np.median(lv.grad_norms):.3g}"] for p in probes for lv in p.levels]
        _report(f"actor-loss gradient norm (σ0 sweep slope {sweep.loglog_slope():.2f})",
                ["prior", "offset c", "mean σ0", "median ‖∇φ‖"], rows, written)


def compare(
    runs: list[Path] = typer.Argument(..., help="Run directories (each with config.json and progress.csv)."),
    out: Path = typer.Option(..., "--out", help=_OUT_HELP),
    group_by: str = typer.Option(
        "algo", "--group-by",
        help="config.json key that groups runs (dots reach nested keys; commas combine keys: algo,prior_sigma)."),
    json_out: bool = typer.Option(False, "--json", help=_JSON_HELP),
) -> None:
    """Learning curves across runs: mean and 95 % t-interval over seeds, per group."""
    from nppac.diagnostics.curves import compare_runs, load_run, plot_comparison

    out = _figure_path(out)
    comparison = compare_runs([load_run(r) for r in runs], group_by)
    figure = plot_comparison(comparison, out)
    numbers = comparison.to_json()
    written = [figure, _write_numbers(numbers, figure, json_out)]
    if not json_out:
        rows = []
        for group in comparison.groups:
            primary = group.curves.get(comparison.primary.column)
            final = primary.to_json()["final"] if primary is not None else {}
            steps = f"{final['env_steps']:,.0f}" if final else "—"
            rows.append([group.name, str(len(group.runs)), steps, _interval_text(final)])
        _report(f"final {comparison.primary.label} by {group_by}", [group_by, "n", "env steps", "mean [95 % CI]"],
                rows, written)


def _interval_text(final: dict[str, Any]) -> str:
    if final.get("mean") is None:
        return "—"
    return f"{final['mean']:.4g} [{final['lo']:.4g}, {final['hi']:.4g}]"
