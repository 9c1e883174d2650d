"""Progress off a terminal (a log file, a pipe): whole lines at each further 10 %, with the time left, never ``\\r``."""

from __future__ import annotations

import pytest

import nppac
import nppac.training.progress as progress
from nppac.training.progress import ProgressBar
from tests.builders import tiny_demos


@pytest.fixture
def clock(monkeypatch):
    """The progress module's clock, moved by hand: ``clock.now`` seconds."""

    class Clock:
        now = 0.0

    monkeypatch.setattr(progress, "monotonic", lambda: Clock.now)
    return Clock


def test_off_a_terminal_a_stage_writes_a_line_per_ten_percent_with_the_time_left(clock, capsys):
    with ProgressBar(True) as bar:
        assert not bar.live  # pytest's captured stderr is no terminal
        for done in range(101):
            bar.stage("GP hyperparameters", done, 100)
            clock.now += 1.0
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err
    lines = err.splitlines()
    assert len(lines) == 10 and err.endswith("\n")
    # At 10 of 100 after 10 s: 1 per second, 90 left.
    assert lines[0] == "GP hyperparameters: 10/100 (10 %), 10 s so far, about 1 min 30 s left"
    assert lines[4] == "GP hyperparameters: 50/100 (50 %), 50 s so far, about 50 s left"
    assert lines[-1] == "GP hyperparameters: 100/100 (100 %), done in 1 min 40 s"


def test_a_stage_shorter_than_the_interval_stays_silent_and_a_new_round_starts_again(clock, capsys):
    with ProgressBar(True) as bar:
        for done in range(0, 5001, 100):  # a 2.5 s evaluation: nothing
            bar.stage("evaluation", done, 5000)
            clock.now += 0.05
        assert capsys.readouterr().err == ""
        clock.now = 100.0
        for done in range(0, 5001, 100):  # the next one (its count starts again) takes 50 s: lines, ETA of its own
            bar.stage("evaluation", done, 5000, "epoch 2/5")
            clock.now += 1.0
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "evaluation: 500/5000 (10 %) · epoch 2/5, 5 s so far, about 45 s left"
    assert lines[-1] == "evaluation: 5000/5000 (100 %) · epoch 2/5, done in 50 s"
    assert len(lines) == 10


def test_lines_are_at_least_the_interval_apart(clock, capsys):
    with ProgressBar(True) as bar:
        for k in range(101):  # 10 % every 2.5 s: a line every other mark, and the last
            clock.now = 0.25 * k
            bar.stage("env steps", 10 * k, 1000)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" ")[3] for line in lines] == ["(20", "(40", "(60", "(80", "(100"]


def test_a_stage_of_one_indivisible_step_says_when_it_starts(clock, capsys):
    with ProgressBar(True) as bar:
        bar.stage("conditioning on 10000 states", 0, 1)
        clock.now = 34.0
        bar.stage("conditioning on 10000 states", 1, 1)
    assert capsys.readouterr().err.splitlines() == ["conditioning on 10000 states: started",
                                                    "conditioning on 10000 states: 1/1 (100 %), done in 34 s"]


def test_disabled_progress_writes_nothing(clock, capsys):
    with ProgressBar(False) as bar:
        for done in range(101):
            bar.stage("policy initialization", done, 100)
            clock.now += 10.0
    assert capsys.readouterr().err == ""


def test_on_a_terminal_it_draws_rich_rows(monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich: draw as on a terminal
    with ProgressBar(True) as bar:
        assert bar.live
        bar.stage("run a", 5, 10)
        bar.stage("evaluation", 3, 10)
        bar.end("run a")  # a suite's finished run: its row goes
        bar.stage("evaluation", 1, 10)  # the next evaluation: the row starts again
        assert [(t.description, t.completed) for t in bar.progress.tasks] == [("evaluation", 1)]


def test_api_fit_prior_with_progress_writes_lines_not_carriage_returns(monkeypatch, capsys):
    monkeypatch.setattr(progress, "LINE_INTERVAL_S", 0.0)
    nppac.fit_prior(tiny_demos(), task="halfcheetah", kind="gp", iters=20, progress=True)
    captured = capsys.readouterr()
    assert "\r" not in captured.err + captured.out
    lines = captured.err.splitlines()
    assert any(line.startswith("GP hyperparameters") and line.endswith("left") for line in lines), lines
    assert any("done in" in line for line in lines), lines


def test_a_run_off_a_terminal_reports_every_stage_in_lines(tmp_path, monkeypatch, capsys):
    from nppac.training import TrainConfig, train
    from tests.builders import TINY, LinearGaussianPrior

    monkeypatch.setattr(progress, "LINE_INTERVAL_S", 0.0)
    config = TrainConfig(algo="nppac", **{**TINY, "updates_per_epoch": 100})
    train(config, tmp_path / "run", prior=LinearGaussianPrior(17, 6), demos=tiny_demos(), progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err
    lines = err.splitlines()
    for stage in ("reference: the uniform-random policy", "reference: the prior's mean action",
                  "policy initialization", "evaluation", "env steps", "gradient steps"):
        assert any(line.startswith(f"{stage}: ") for line in lines), (stage, lines)
    assert "gradient steps: 200/200 (100 %), done in" in err
    assert "env steps: 300/300 (100 %) · epoch 2/2 · eval" in err
