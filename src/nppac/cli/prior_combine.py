"""``nppac prior combine``: the variance ablation's mean-std prior from two saved priors."""

from __future__ import annotations

from pathlib import Path

import typer


def combine(
    mean: Path = typer.Option(..., "--mean", help="Saved prior whose mean μ0 is used (the GP, for the ablation)."),
    std: Path = typer.Option(..., "--std", help="Saved prior whose σ0 is used (the NN, for the ablation)."),
    out: Path = typer.Option(..., "--out", help="Directory to write the mean-std prior into (must not exist)."),
) -> None:
    """Combine two saved priors into N(μ0 of --mean, σ0² of --std): train it with --algo nppac-nn-std --prior OUT."""
    from nppac.outputs import check_output_dir
    from nppac.priors import combine_priors, load_prior

    check_output_dir(out)
    prior = combine_priors(load_prior(mean), load_prior(std))
    prior.save(out)
    print(f"wrote {out} ({prior.kind}: mean of {mean}, σ0 of {std})")
