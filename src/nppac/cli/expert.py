"""``nppac expert`` and ``nppac demos`` (being built)."""

import typer

expert_app = typer.Typer(help="Train locomotion experts.", no_args_is_help=True)
demos_app = typer.Typer(help="Collect demonstrations from an expert.", no_args_is_help=True)
