"""``nppac prior``: (being built)."""

import typer

app = typer.Typer(help="prior commands.", no_args_is_help=True)
