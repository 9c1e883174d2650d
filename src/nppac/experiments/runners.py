"""Running a suite: each run trained once, resumed when interrupted, its failure recorded.

A run's directory ``OUT/task/algo/seed-S`` is what ``nppac train --out`` writes, plus ``status.json`` once the
runner is done with it (finished with train's summary; diverged or failed with the error in one line). A suite is
thus idempotent: finished and diverged runs are skipped (a divergence is the algorithm's outcome on that seed:
retrying until a seed does not diverge would select seeds; delete its ``status.json`` to retry anyway); a finished
run the suite now asks for more epochs is extended from its last checkpoint, and an interrupted one continues from
it, both to the suite's current ``steps``, so that every seed of a row runs one schedule; anything else starts
fresh. An exception in one run is written to its ``status.json`` and the suite goes on.

:class:`LocalRunner` trains in this process or a pool of fresh processes, :class:`RayRunner` as one Ray task per
run (on a local Ray or a cluster whose nodes share ``OUT``).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from nppac.errors import DivergedError, NppacError
from nppac.experiments.shared_inits import with_shared_inits
from nppac.experiments.shared_priors import with_shared_priors
from nppac.experiments.suite import RunSpec, Suite
from nppac.outputs import DirectoryLock, real_output
from nppac.training import train
from nppac.training.progress import ProgressBar
from nppac.training.rundir import RunDir, is_own_prior

log = logging.getLogger(__name__)

DONE_STATES = ("finished", "diverged")
"""States a suite does not train again."""

Notify = Callable[[dict[str, Any]], None]
"""Receives progress events: ``{"key", "epoch", "n_epochs", "eval_return"}`` (``eval_return`` None at a start)."""


@dataclass(frozen=True)
class RunResult:
    """What one invocation did with one run."""

    key: str
    outcome: str
    """finished or diverged (now), skipped (finished or diverged before), failed, or busy (another process holds it)."""
    error: str | None = None
    """The failure as one line."""
    summary: dict[str, Any] | None = None
    """``train``'s summary (final and best evaluation, steps, paths) of a finished or skipped run."""
    resumed_at: int = 0
    """Epochs the run had done before this invocation continued it."""
    wall_s: float = 0.0
    """Seconds this invocation spent on the run."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_state(directory: str | Path) -> str:
    """finished, diverged, failed, unfinished (started, not finished) or pending (never started)."""
    status = RunDir(directory).status()
    if status is not None and status.get("status") in (*DONE_STATES, "failed"):
        return str(status["status"])
    return "unfinished" if RunDir(directory).started else "pending"


def completed_epochs(directory: str | Path) -> int:
    """The last online epoch in a run's ``progress.csv`` (0 when there is none; step-0 and offline rows do not
    count)."""
    try:
        return max((int(float(row["epoch"])) for row in RunDir(directory).progress()[1]
                    if row.get("phase", "online") == "online"), default=0)
    except (KeyError, ValueError):
        return 0


@dataclass(frozen=True)
class Pace:
    """A run's measured pace, from its ``progress.csv``: the wall time to its step-0 row and per online epoch."""

    start_s: float
    """Wall seconds of everything before the first online epoch (prior, initialization, offline phase)."""
    epoch_s: float | None
    """Mean wall seconds per online epoch so far (None before the first online row)."""
    epochs: int
    """The last online epoch logged."""


def measured_pace(directory: str | Path) -> Pace | None:
    """The pace of the run in ``directory`` (None when it has not logged its step-0 row)."""
    try:
        rows = RunDir(directory).progress()[1]
        start = [float(r["wall_s"]) for r in rows if r.get("phase") != "online"]
        online = [(int(float(r["epoch"])), float(r["wall_s"])) for r in rows if r.get("phase") == "online"]
    except (KeyError, ValueError):
        return None
    if not start:
        return None
    if not online or online[-1][0] <= 0:
        return Pace(start[-1], None, 0)
    epoch, wall = online[-1]
    return Pace(start[-1], (wall - start[-1]) / epoch, epoch)


def time_left(runs: Sequence[RunSpec], out: Path) -> dict[str, tuple[float | None, bool]]:
    """Per run key: (estimated wall seconds left, whether it is borrowed from its siblings); from the run's own
    mean time per epoch, else from its task and column's runs that have one (with their start-up time); 0 for a
    run done, None where nothing comparable has run yet."""
    paces = {r.key: measured_pace(r.directory(out)) for r in runs}

    def group(run: RunSpec) -> tuple[str, str]:
        return run.task, run.key.split("/")[1]

    borrowed: dict[tuple[str, str], list[Pace]] = {}
    for run in runs:
        pace = paces[run.key]
        if pace is not None and pace.epoch_s is not None:
            borrowed.setdefault(group(run), []).append(pace)
    left: dict[str, tuple[float | None, bool]] = {}
    for run in runs:
        n_epochs = run.config.n_epochs
        pace = paces[run.key]
        if run_state(run.directory(out)) in DONE_STATES and not asks_longer(run, run.directory(out)):
            left[run.key] = (0.0, False)
        elif pace is not None and pace.epoch_s is not None:
            left[run.key] = (max(0, n_epochs - pace.epochs) * pace.epoch_s, False)
        elif group(run) in borrowed:
            others = borrowed[group(run)]
            epoch_s = sum(p.epoch_s or 0.0 for p in others) / len(others)
            start_s = 0.0 if pace is not None else sum(p.start_s for p in others) / len(others)
            left[run.key] = (start_s + n_epochs * epoch_s, True)
        else:
            left[run.key] = (None, True)
    return left


def one_line(err: BaseException) -> str:
    """An exception as one line: user errors as they are, anything else prefixed by its type."""
    text = " ".join(str(err).split()) or "(no message)"
    return text if isinstance(err, NppacError) else f"{type(err).__name__}: {text}"


def execute_run(run: RunSpec, out: str | Path, notify: Notify | None = None) -> RunResult:
    """Train one run of a suite into ``run.directory(out)``: skip, resume or start it; never raises on its failure."""
    started = time.perf_counter()
    directory = run.directory(out)
    directory.parent.mkdir(parents=True, exist_ok=True)
    # An OS lock, released however the holder dies, keeps two processes off one run; train() takes it again.
    with DirectoryLock(directory) as lock:
        if not lock.acquired:
            return RunResult(run.key, "busy", error=f"{lock.busy()}: it is training this run")
        status = RunDir(directory).status()
        extend = status is not None and status.get("status") == "finished" and asks_longer(run, directory)
        if status is not None and status.get("status") in DONE_STATES and not extend:
            _warn_if_changed(run, directory)
            return RunResult(run.key, "skipped", error=status.get("error"), summary=status.get("summary"))
        RunDir(directory).clear_status()
        resume = RunDir(directory).started
        if extend:
            log.info("%s: the suite asks for %s env steps; extending the finished run", run.key,
                     f"{run.config.steps:,}")
        if resume:
            _warn_if_changed(run, directory, resumable=("steps",))
        done = completed_epochs(directory) if resume else 0
        n_epochs = run.config.n_epochs
        if notify is not None:
            notify({"key": run.key, "epoch": done, "n_epochs": n_epochs, "eval_return": None})

        def on_epoch_end(row: dict[str, Any]) -> None:
            if notify is not None and row["phase"] == "online":
                notify({"key": run.key, "epoch": int(row["epoch"]), "n_epochs": n_epochs,
                        "eval_return": float(row["eval_return"])})

        try:
            # A resumed run takes the suite's current steps: every seed of a row runs the same schedule.
            summary = train(None if resume else run.config, directory, resume=resume,
                            steps=run.config.steps if resume else None, progress=False, on_epoch_end=on_epoch_end)
        except Exception as err:  # one run's failure is recorded, not raised: the suite goes on
            error = one_line(err)
            outcome = "diverged" if isinstance(err, DivergedError) else "failed"
            record: dict[str, Any] = {"status": outcome, "error": error}
            if not isinstance(err, NppacError):
                record["traceback"] = traceback.format_exc()
            RunDir(directory).write_status(record)
            return RunResult(run.key, outcome, error=error, resumed_at=done, wall_s=time.perf_counter() - started)
        RunDir(directory).write_status({"status": "finished", "summary": summary})
        return RunResult(run.key, "finished", summary=summary, resumed_at=done, wall_s=time.perf_counter() - started)


def asks_longer(run: RunSpec, directory: Path) -> bool:
    """Whether the suite now asks a finished run for more epochs of the same length than it was trained for,
    and its checkpoint is there to continue from (an exported copy has none)."""
    try:
        stored = RunDir(directory).train_config()
    except NppacError:
        return False
    return (stored.steps_per_epoch == run.config.steps_per_epoch and run.config.n_epochs > stored.n_epochs
            and RunDir(directory).checkpoint.is_file())


def _warn_if_changed(run: RunSpec, directory: Path, resumable: tuple[str, ...] = ()) -> None:
    """A run keeps the settings it was started with (but ``resumable``); say so when the suite now asks for others."""
    try:
        stored = RunDir(directory).train_config().to_dict()
        wanted = run.config.resolved().to_dict()
    except NppacError:
        return
    # A run's config.json names its own copy of the prior it was given.
    same_prior = isinstance(stored.get("prior"), str) and is_own_prior(stored["prior"], directory)
    changed = [k for k, v in wanted.items()
               if stored.get(k) != v and k not in resumable and not (k == "prior" and same_prior)]
    if changed:
        log.warning("%s keeps the settings it was started with (differs from the suite in: %s); "
                    "delete %s to rerun it", run.key, ", ".join(changed), directory)


class Runner(Protocol):
    """Where runs are trained: yields each run's result as it completes."""

    def execute(self, runs: Sequence[RunSpec], out: Path, notify: Notify) -> Iterator[RunResult]: ...


@dataclass(frozen=True)
class LocalRunner:
    """Runs on this machine: in this process one after another, or in a pool of fresh processes."""

    workers: int = 1
    """Runs trained at the same time; above 1 each run gets its own process (torch threads: the run's num_threads)."""

    def execute(self, runs: Sequence[RunSpec], out: Path, notify: Notify) -> Iterator[RunResult]:
        if self.workers < 1:
            raise NppacError(f"--workers must be at least 1, got {self.workers}")
        if self.workers == 1:
            for run in runs:
                yield execute_run(run, out, notify)
            return
        # A fresh process per run, forked from a server that imported nppac once (not from
        # this process: no copied torch threads, CUDA or MuJoCo state, and no re-import of
        # torch per run). The queue reaches the workers through the initializer.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        events = context.Queue()
        with cf.ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_worker,
                                    initargs=(events, os.getpid()), max_tasks_per_child=1) as pool:
            pending = {pool.submit(_execute_in_worker, run, out): run for run in runs}
            try:
                while pending:
                    done, _ = cf.wait(pending, timeout=0.25, return_when=cf.FIRST_COMPLETED)
                    _drain(events, notify)
                    for future in done:
                        run = pending.pop(future)
                        yield _result_of(future, run, out)
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
            finally:
                _drain(events, notify)


_worker_events: Any = None


def _init_worker(events: Any, suite_pid: int) -> None:
    global _worker_events
    _worker_events = events
    exit_with(suite_pid)


def exit_with(suite_pid: int, every: float = 1.0) -> None:
    """End this worker process once the suite process ``suite_pid`` has ended, however it ended: an orphaned
    worker would train on, holding its run's lock. A thread checks every ``every`` seconds that the parent (the
    fork server, which exits with the suite) is the one it started with and that the suite process exists."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(every)
            if os.getppid() != parent or not _alive(suite_pid):
                log.warning("the suite process %d has ended; this worker (pid %d) stops, its run resumes "
                            "from its last checkpoint on the next `nppac suite run`", suite_pid, os.getpid())
                os._exit(1)

    threading.Thread(target=watch, name="nppac-exit-with-suite", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def _execute_in_worker(run: RunSpec, out: Path) -> RunResult:
    try:
        return execute_run(run, out, _worker_events.put if _worker_events is not None else None)
    finally:
        # The queue's feeder thread may still hold the last events when the result goes back
        # through the pool, and the parent would miss them. Flush them first: close() and
        # join_thread() return once every event is in the pipe. (Each worker runs one task.)
        if _worker_events is not None:
            _worker_events.close()
            _worker_events.join_thread()


def _drain(events: Any, notify: Notify) -> None:
    import queue

    while True:
        try:
            notify(events.get_nowait())
        except queue.Empty:
            return


def _result_of(future: cf.Future, run: RunSpec, out: Path) -> RunResult:
    """The run's result; a worker that died (killed, out of memory) is recorded as the run's failure."""
    try:
        return future.result()
    except Exception as err:
        return _failed(run, out, f"worker process died: {one_line(err)}")


def _failed(run: RunSpec, out: Path, error: str) -> RunResult:
    """A run that failed outside its own training, recorded in its ``status.json``."""
    RunDir(run.directory(out)).write_status({"status": "failed", "error": error})
    return RunResult(run.key, "failed", error=error)


RAY_INSTALL = "pip install 'nppac[ray]'"
"""How to get the optional Ray dependency."""


@dataclass(frozen=True)
class RayRunner:
    """Runs as Ray tasks, one per run, on a local Ray or the cluster at ``address``: every node must see ``OUT`` at
    the same path and have nppac installed. Progress is reported per finished run, not per epoch."""

    address: str | None = None
    """Cluster address for ``ray.init`` (``auto``, ``ray://host:10001``); None starts a local Ray
    (or uses RAY_ADDRESS)."""
    gpus_per_run: float = 1.0
    """GPUs reserved by each run whose device is cuda (a fraction lets small runs share one)."""
    init_kwargs: dict[str, Any] | None = None
    """Extra ``ray.init`` arguments for a local Ray (e.g. ``num_cpus``)."""

    def execute(self, runs: Sequence[RunSpec], out: Path, notify: Notify) -> Iterator[RunResult]:
        ray = import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            if self.address is None:
                ray.init(include_dashboard=False, **(self.init_kwargs or {}))
            else:
                ray.init(address=self.address, **(self.init_kwargs or {}))
        try:
            # max_calls=1: a fresh worker process per run, like the local pool.
            remote = ray.remote(max_calls=1)(execute_run)
            # Ray waits forever for resources no node has: check the cluster first, fail such runs at once.
            cluster_gpus = float(ray.cluster_resources().get("GPU", 0.0))
            pending = {}
            for run in runs:
                gpus = self.gpus_per_run if run.config.device.startswith("cuda") else 0
                if gpus > cluster_gpus:
                    yield _failed(run, out, f"device {run.config.device!r} needs {gpus:g} GPU but the Ray cluster has "
                                            f"{cluster_gpus:g}; set device = \"cpu\" or add GPU nodes")
                    continue
                ref = remote.options(num_cpus=1, num_gpus=gpus).remote(run, out)
                pending[ref] = run
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                run = pending.pop(done[0])
                try:
                    result = ray.get(done[0])
                except Exception as err:  # the Ray worker itself failed (killed, lost node)
                    result = _failed(run, out, f"ray task failed: {one_line(err)}")
                yield result
        finally:
            if started_here:
                ray.shutdown()


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise NppacError(f"--ray needs Ray, which is not installed; install it with: {RAY_INSTALL}") from None
    return ray


def run_suite(suite: Suite, out: str | Path, runner: Runner | None = None, progress: bool = True,
              only: Sequence[str] = ()) -> list[RunResult]:
    """Train every run of ``suite`` under ``out`` (writing ``out/suite.json``); results in the suite's run order.

    ``only`` restricts training to the runs matching its shell-style patterns (:meth:`Suite.select`); the
    manifest still names every run. Shared priors, then (``shared_init``) shared initializations are made first.
    """
    out = real_output(Path(out).expanduser())  # Ray workers do not share this process's working directory
    suite.check_output(out)
    selected = {r.key for r in suite.select(only)}
    suite.write_manifest(out)  # before any prior is fitted into it: OUT is the suite's, even if a fit is cut short
    suite = with_shared_priors(suite, out, selected)  # each (demonstrations, kind, settings) prior fitted once
    suite = with_shared_inits(suite, out, selected)  # with shared_init: each initialization done once
    suite.write_manifest(out)
    runner = runner or LocalRunner()
    results: dict[str, RunResult] = {}
    runs = [r for r in suite.runs if r.key in selected]
    with _SuiteProgress(suite.name, len(runs), enabled=progress) as bar:
        for result in runner.execute(runs, out, bar.event):
            results[result.key] = result
            bar.done(result)
            if result.outcome in ("failed", "diverged"):
                log.warning("%s %s: %s", result.key, result.outcome, result.error)
    return [results[r.key] for r in suite.runs if r.key in results]


class _SuiteProgress:
    """Progress on stderr (:class:`~nppac.training.progress.ProgressBar`): one row for the suite, one per run being
    trained (epochs, last evaluation)."""

    def __init__(self, name: str, n_runs: int, enabled: bool) -> None:
        self.name, self.n_runs, self.bar = f"suite {name}", n_runs, ProgressBar(enabled)
        self.counts = {"finished": 0, "diverged": 0, "skipped": 0, "failed": 0, "busy": 0}

    def __enter__(self) -> _SuiteProgress:
        self.bar.__enter__()
        self.bar.stage(self.name, 0, self.n_runs)
        return self

    def event(self, event: dict[str, Any]) -> None:
        """A run started (``eval_return`` None) or finished an epoch."""
        note = "" if event["eval_return"] is None or math.isnan(event["eval_return"]) else \
            f"eval {event['eval_return']:.4g}"
        self.bar.stage(f"  {event['key']}", event["epoch"], event["n_epochs"], note)

    def done(self, result: RunResult) -> None:
        self.counts[result.outcome] += 1
        self.bar.end(f"  {result.key}")
        note = " · ".join(f"{n} {k}" for k, n in self.counts.items() if n)
        self.bar.stage(self.name, sum(self.counts.values()), self.n_runs, note)

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)
