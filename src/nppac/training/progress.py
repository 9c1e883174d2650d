"""Progress on stderr, one row per stage: rich rows on a terminal, plain lines anywhere else (a log file, a pipe)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from time import monotonic
from typing import Any

LINE_STEP = 10
"""Off a terminal, a stage writes a line each time it passes another multiple of this many percent…"""
LINE_INTERVAL_S = 5.0
"""…but not sooner than this after it began or after its previous line: a stage shorter than this stays silent."""


@dataclass
class _Lines:
    """Where a stage's plain lines stand: when and at which count it began, its last line and percent mark."""

    began: float
    began_at: int
    last_line: float
    mark: int
    completed: int
    wrote: bool = False


class ProgressBar:
    """Progress of a run's stages on stderr (the prior fit, policy initialization, evaluations, env steps), each with
    the time left.

    On a terminal these are rich rows, redrawn in place. Anywhere else (a log file, a pipe, CI) rich could only draw
    them at the end; each stage instead writes a plain line every :data:`LINE_STEP` percent (no carriage returns),
    once it has run :data:`LINE_INTERVAL_S`, and a last line when it ends; a stage of one indivisible step (the GP's
    conditioning) says when it starts.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.live = False
        self.rows: dict[str, Any] = {}
        self.shown: dict[str, int] = {}
        self.lines: dict[str, _Lines] = {}

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            console = Console(stderr=True)
            self.live = console.is_terminal and not console.is_dumb_terminal
            if self.live:
                self.progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=20),
                                         MofNCompleteColumn(), TextColumn("{task.fields[note]}"), TimeRemainingColumn(),
                                         console=console)
                self.progress.start()
        return self

    def stage(self, name: str, completed: int, total: int, note: str = "") -> None:
        """Show ``completed``/``total`` on the row ``name`` (a ``progress(stage, completed, total)`` callback); a
        count below the row's last starts the stage again (the next evaluation)."""
        if not self.enabled:
            return
        if not self.live:
            self._line(name, completed, total, note)
            return
        row = self.rows.get(name)
        if row is None:
            self.rows[name] = self.progress.add_task(name, total=total, completed=completed, note=note)
        elif completed < self.shown[name]:
            self.progress.reset(row, total=total, completed=completed, note=note)
        else:
            self.progress.update(row, completed=completed, total=total, note=note)
        self.shown[name] = completed

    def end(self, name: str) -> None:
        """Remove the row ``name`` (a finished run of a suite)."""
        self.lines.pop(name, None)
        self.shown.pop(name, None)
        if name in self.rows:
            self.progress.remove_task(self.rows.pop(name))

    def _line(self, name: str, completed: int, total: int, note: str) -> None:
        now = monotonic()
        at = self.lines.get(name)
        if at is None or completed < at.completed:
            at = self.lines[name] = _Lines(now, completed, now, _mark(completed, total), completed)
            if total == 1 and completed == 0:  # one indivisible step: say that it began, as there is no 10 %
                self._write(f"{name}: started")
                at.wrote = True
        at.completed = completed
        mark, done = _mark(completed, total), completed >= total
        if not ((mark > at.mark and now - at.last_line >= LINE_INTERVAL_S) or (done and at.wrote and mark > at.mark)):
            return
        elapsed = now - at.began
        if done:
            when = f"done in {_duration(elapsed)}"
        else:
            rate = (completed - at.began_at) / elapsed if elapsed > 0 else 0.0
            left = f"about {_duration((total - completed) / rate)} left" if rate > 0 else "time left unknown"
            when = f"{_duration(elapsed)} so far, {left}"
        percent = 100 * completed // total if total else 100
        self._write(f"{name}: {completed}/{total} ({percent} %){f' · {note}' if note else ''}, {when}")
        at.last_line, at.mark, at.wrote = now, mark, True

    @staticmethod
    def _write(line: str) -> None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.progress.stop()


def _mark(completed: int, total: int) -> int:
    """How many :data:`LINE_STEP` percent marks ``completed`` of ``total`` has passed."""
    return 100 // LINE_STEP if total <= 0 else 100 * completed // (total * LINE_STEP)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds // 60 % 60:02d} min"
