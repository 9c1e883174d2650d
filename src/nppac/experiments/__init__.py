"""Experiment suites: many tasks, algorithms and seeds, trained locally or on Ray, and their reports.

* :mod:`nppac.experiments.suite` — suite files (TOML) expanded into runs.
* :mod:`nppac.experiments.runners` — training the runs: skip finished, resume
  interrupted, record failures; in this process, a process pool or Ray.
* :mod:`nppac.experiments.export` — a suite's small files copied out (for sharing or committing).
* :mod:`nppac.experiments.report` — final performance and sample efficiency per task
  and algorithm with 95 % intervals over seeds, plus learning-curve figures.
* :mod:`nppac.experiments.stats` — Welch's test, p-values adjusted across a family of
  comparisons (Holm, Benjamini–Hochberg), intervals held to a quantity's bounds.
* :mod:`nppac.experiments.replicates` — which runs of several suites are one cell.
* :mod:`nppac.experiments.shared_priors`, :mod:`nppac.experiments.shared_inits` — priors fitted and policies
  initialized once per suite.
* :mod:`nppac.experiments.tables` — the tables of one or more suites' runs (``nppac suite report --table``).
"""

from nppac.experiments.export import export_suite
from nppac.experiments.report import SuiteReport, collect_runs, summarize
from nppac.experiments.report_files import write_report
from nppac.experiments.runners import LocalRunner, RayRunner, RunResult, execute_run, run_state, run_suite
from nppac.experiments.suite import ReportSettings, RunSpec, Suite, load_suite, parse_suite, read_manifest

__all__ = [
    "LocalRunner", "RayRunner", "ReportSettings", "RunResult", "RunSpec", "Suite", "SuiteReport", "collect_runs",
    "execute_run", "export_suite", "load_suite", "parse_suite", "read_manifest", "run_state", "run_suite", "summarize",
    "write_report",
]
