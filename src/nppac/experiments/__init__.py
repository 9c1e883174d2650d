"""Experiment suites: many tasks, algorithms and seeds, trained locally or on Ray, and their reports.

Suite files (:mod:`.suite`) expand into runs, trained by :mod:`.runners` with priors and initializations shared
(:mod:`.shared_priors`, :mod:`.shared_inits`), exported (:mod:`.export`) and reported (:mod:`.report`,
:mod:`.report_files`, :mod:`.stats`, :mod:`.aggregate`); :mod:`.tables` prints tables of several suites' runs.
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
