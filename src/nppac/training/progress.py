"""The progress display of a run: rich rows on stderr, one per stage."""

from __future__ import annotations

from typing import Any


class ProgressBar:
    """Rich progress rows on stderr, one per stage (the prior fit's, then env steps with returns and ETA)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.rows: dict[str, Any] = {}

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                                     TextColumn("{task.fields[note]}"), TimeRemainingColumn(),
                                     console=Console(stderr=True))
            self.progress.start()
        return self

    def stage(self, name: str, completed: int, total: int, note: str = "") -> None:
        """Show ``completed``/``total`` on the row ``name`` (a ``progress(stage, completed, total)`` callback)."""
        if not self.enabled:
            return
        if name not in self.rows:
            self.rows[name] = self.progress.add_task(name, total=total, note=note)
        self.progress.update(self.rows[name], completed=completed, total=total, note=note)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.progress.stop()
