"""Running suites for real on tiny settings: skip finished runs, resume interrupted ones, record failures."""

from __future__ import annotations

import csv
import fcntl
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from nppac.experiments import LocalRunner, RayRunner, execute_run, load_suite, run_state, run_suite, write_report
from nppac.training import train
from tests.builders import nppac_in_process

TINY = """
steps = 300
steps_per_epoch = 100
updates_per_epoch = 20
warmup_steps = 100
eval_episodes = 1
horizon = 50
batch_size = 32
actor_hidden = [32, 32]
critic_hidden = [32, 32]
"""


def _suite_file(tmp_path, algos='["sac", "ppac-nn"]', seeds="2", extra="", name="tiny"):
    # ppac-nn reads a demonstration file that does not exist: it fails when it starts, after expansion.
    failing = '[algo.ppac-nn]\ndemos = "no-such-demos.npz"\n' if "ppac-nn" in algos else ""
    text = (f'name = "{name}"\ntasks = ["halfcheetah"]\nalgos = {algos}\nseeds = {seeds}\n'
            f"[settings]{TINY}\n{failing}{extra}")
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(text))
    return path


def _progress(directory):
    with (directory / "progress.csv").open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two seeds of SAC that finish and two ppac-nn runs that fail, trained in this process."""
    root = tmp_path_factory.mktemp("suite")
    suite = load_suite(_suite_file(root))
    out = root / "out"
    return suite, out, run_suite(suite, out, LocalRunner(workers=1), progress=False)


def test_runs_finish_and_one_failure_does_not_stop_the_suite(tiny):
    suite, out, results = tiny
    assert [(r.key, r.outcome) for r in results] == [
        ("halfcheetah/sac/seed-0", "finished"), ("halfcheetah/ppac-nn/seed-0", "failed"),
        ("halfcheetah/sac/seed-1", "finished"), ("halfcheetah/ppac-nn/seed-1", "failed")]
    for seed in (0, 1):
        directory = out / "halfcheetah" / "sac" / f"seed-{seed}"
        assert [int(r["epoch"]) for r in _progress(directory)] == [0, 1, 2, 3]
        status = json.loads((directory / "status.json").read_text())
        assert status["status"] == "finished" and status["summary"]["epochs"] == 3
        assert run_state(directory) == "finished"
        failed = out / "halfcheetah" / "ppac-nn" / f"seed-{seed}"
        status = json.loads((failed / "status.json").read_text())
        assert status["status"] == "failed" and "no-such-demos.npz" in status["error"]
        assert "\n" not in status["error"] and run_state(failed) == "failed"
    assert results[1].error == json.loads((out / "halfcheetah/ppac-nn/seed-0/status.json").read_text())["error"]
    assert json.loads((out / "suite.json").read_text())["name"] == "tiny"


def test_second_invocation_skips_finished_runs_and_retries_failed(tiny):
    suite, out, first = tiny
    before = {s: (out / f"halfcheetah/sac/seed-{s}/progress.csv").read_text() for s in (0, 1)}
    again = run_suite(suite, out, progress=False)
    assert [r.outcome for r in again] == ["skipped", "failed", "skipped", "failed"]
    assert again[0].summary == first[0].summary
    assert {s: (out / f"halfcheetah/sac/seed-{s}/progress.csv").read_text() for s in (0, 1)} == before


def test_only_trains_the_matching_runs_and_keeps_the_whole_manifest(tiny):
    suite, out, _ = tiny
    results = run_suite(suite, out, progress=False, only=["*/ppac-nn/*"])
    assert [(r.key, r.outcome) for r in results] == [("halfcheetah/ppac-nn/seed-0", "failed"),
                                                     ("halfcheetah/ppac-nn/seed-1", "failed")]
    assert len(json.loads((out / "suite.json").read_text())["runs"]) == 4


def test_export_copies_what_the_report_needs_and_nothing_heavy(tiny, tmp_path, monkeypatch, capsys):
    from nppac.errors import NppacError
    from nppac.experiments import export_suite

    suite, out, _ = tiny
    dest = tmp_path / "export"
    code, _, stderr = nppac_in_process(monkeypatch, capsys, "suite", "export", str(out), str(dest))
    assert code == 0 and "report: nppac suite report" in stderr
    copied = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    # Finished runs only (the failed ppac-nn runs are not), and no checkpoints or logs.
    assert copied == sorted(["suite.json", *(f"halfcheetah/sac/seed-{s}/{n}" for s in (0, 1)
                                            for n in ("config.json", "progress.csv", "provenance.json",
                                                      "references.json", "status.json"))])
    ours = write_report(dest, figures=False)[0].to_json()["tasks"]["halfcheetah"]["algos"]["sac"]
    theirs = write_report(out, figures=False)[0].to_json()["tasks"]["halfcheetah"]["algos"]["sac"]
    assert ours == theirs
    assert export_suite(out, dest)  # an earlier export of the same suite is refreshed
    with pytest.raises(NppacError, match="is the suite directory itself"):
        export_suite(out, out)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    with pytest.raises(NppacError, match="exists and is not empty"):
        export_suite(out, other)


def test_export_again_mirrors_the_suite(tiny, tmp_path):
    from nppac.experiments import export_suite

    suite, out, _ = tiny
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    dest = tmp_path / "export"
    export_suite(copy, dest)
    assert (dest / "halfcheetah/sac/seed-1/progress.csv").is_file()
    (copy / "halfcheetah/sac/seed-1/status.json").unlink()  # to retry it: OUT no longer calls it finished
    (copy / "halfcheetah/sac/seed-0/references.json").unlink()
    export_suite(copy, dest)
    assert not (dest / "halfcheetah/sac/seed-1").exists()
    assert sorted(p.name for p in (dest / "halfcheetah/sac/seed-0").iterdir()) == [
        "config.json", "progress.csv", "provenance.json", "status.json"]
    states = {r["key"]: r["status"] for r in write_report(dest, figures=False)[0].to_json()["runs"]}
    assert states["halfcheetah/sac/seed-1"] == "pending"


def test_report_numbers_equal_those_computed_from_progress_files(tiny):
    suite, out, _ = tiny
    report, written = write_report(out, last_k=2)
    numbers = json.loads((out / "report.json").read_text())
    across = numbers.pop("aggregate")  # the rliable section (tests/test_experiments_report.py checks it)
    assert across is None or across["algos"] == ["sac"]
    assert numbers == json.loads(json.dumps(report.to_json(relative_to=out)))
    finals, aucs = [], []
    for seed in (0, 1):
        rows = _progress(out / "halfcheetah" / "sac" / f"seed-{seed}")
        steps = [float(r["env_steps"]) for r in rows]
        returns = [float(r["eval_return"]) for r in rows]
        assert steps[0] == 0  # the step-0 evaluation counts in the area under the curve
        finals.append((returns[-2] + returns[-1]) / 2)
        aucs.append(sum((steps[i] - steps[i - 1]) * (returns[i - 1] + returns[i]) / 2 for i in range(1, len(steps)))
                    / (steps[-1] - steps[0]))
    sac = numbers["tasks"]["halfcheetah"]["algos"]["sac"]
    for got, values in ((sac["final"]["eval_return"], finals), (sac["auc"]["eval_return"], aucs)):
        mean = sum(values) / 2
        half = stats.t.ppf(0.975, 1) * abs(values[0] - values[1]) / math.sqrt(2) / math.sqrt(2)
        assert got["n"] == 2 and got["values"] == pytest.approx(values, abs=1e-12)
        assert (got["mean"], got["lo"], got["hi"]) == pytest.approx((mean, mean - half, mean + half), abs=1e-9)
    assert sac["seeds"] == [0, 1] and sac["env_steps"] == 300
    # The failed runs are listed with their errors, not dropped.
    assert numbers["incomplete"] == ["halfcheetah/ppac-nn/seed-0", "halfcheetah/ppac-nn/seed-1"]
    assert numbers["counts"] == {"finished": 2, "failed": 2}
    assert "ppac-nn" not in numbers["tasks"]["halfcheetah"]["algos"]
    markdown = (out / "report.md").read_text()
    assert "| halfcheetah/ppac-nn/seed-1 | failed | 0/3 | " in markdown and "no-such-demos.npz" in markdown
    assert f"{sac['final']['eval_return']['mean']:.4g} [" in markdown
    figure = out / "figures" / "halfcheetah.png"
    assert figure in written and figure.stat().st_size > 10_000
    assert "](figures/halfcheetah.png)" in markdown


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    suite = load_suite(_suite_file(tmp_path, algos='["sac"]', seeds="[5]", name="resume"))
    run = suite.runs[0]
    directory = run.directory(tmp_path / "out")

    class Interrupted(Exception):
        pass

    def stop_after_first_epoch(row):
        if row["phase"] == "online":
            raise Interrupted

    with pytest.raises(Interrupted):
        train(run.config, directory, progress=False, on_epoch_end=stop_after_first_epoch)
    assert run_state(directory) == "unfinished" and len(_progress(directory)) == 2
    events = []
    (result,) = LocalRunner().execute(suite.runs, tmp_path / "out", events.append)
    assert (result.outcome, result.resumed_at, result.summary["rows_this_call"]) == ("finished", 1, 2)
    assert [int(r["epoch"]) for r in _progress(directory)] == [0, 1, 2, 3]
    assert [e["epoch"] for e in events] == [1, 2, 3] and events[0]["eval_return"] is None
    starts = json.loads((directory / "provenance.json").read_text())["starts"]
    assert [(s["epoch"], s["env_steps"]) for s in starts] == [(0, 0), (1, 100)]  # one start, one resume
    assert starts[1]["code"]["nppac"] and "commit" in starts[1]["code"]


def test_a_run_evaluated_every_few_epochs_resumes_from_its_last_row(tmp_path):
    suite = load_suite(_suite_file(tmp_path, algos='["sac"]', seeds="[1]", name="every",
                                   extra="[algo.sac]\nsteps = 500\neval_every = 2\n"))
    run = suite.runs[0]
    directory = run.directory(tmp_path / "out")

    class Interrupted(Exception):
        pass

    def stop(row):
        if row["epoch"] == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(run.config, directory, progress=False, on_epoch_end=stop)
    (result,) = LocalRunner().execute(suite.runs, tmp_path / "out", lambda event: None)
    rows = _progress(directory)
    assert (result.outcome, result.resumed_at, result.summary["epochs"]) == ("finished", 2, 5)
    assert [int(r["epoch"]) for r in rows] == [0, 2, 4, 5]  # every 2nd epoch, and the last
    assert [int(r["gradient_steps"]) for r in rows[1:]] == [int(r["epoch"]) * 20 for r in rows[1:]]


def test_dry_run_estimates_the_time_left_from_each_runs_own_pace(tmp_path, monkeypatch, capsys):
    from nppac.experiments.runners import time_left

    suite = load_suite(_suite_file(tmp_path, algos='["sac"]', seeds="3", name="pace",
                                   extra="[algo.sac]\nsteps = 1000\n"))
    out = tmp_path / "out"
    suite.write_manifest(out)
    for seed, walls in ((0, [20, 30, 40]), (1, [10, 40])):  # step 0 at 20 s, then 10 s per epoch; 30 s per epoch
        directory = suite.runs[seed].directory(out)
        directory.mkdir(parents=True)
        with (directory / "progress.csv").open("w") as f:
            f.write("phase,epoch,env_steps,wall_s\n")
            f.writelines(f"{'init' if i == 0 else 'online'},{i},{100 * i},{w}\n" for i, w in enumerate(walls))
    left = time_left(suite.runs, out)
    assert left[suite.runs[0].key] == (pytest.approx(8 * 10.0), False)
    assert left[suite.runs[1].key] == (pytest.approx(9 * 30.0), False)
    assert left[suite.runs[2].key] == (pytest.approx((20 + 10) / 2 + 10 * (10 + 30) / 2), True)  # borrowed
    code, stdout, _ = nppac_in_process(monkeypatch, capsys, "suite", "run", str(tmp_path / "pace.toml"),
                                       "--out", str(out), "--dry-run", "--json")
    listing = json.loads(stdout)
    assert code == 0 and listing["left_s"] == pytest.approx(80 + 270 + 215)
    assert [(r["epochs"], r["resumes"]) for r in listing["runs"]] == [(2, 0), (1, 0), (0, 0)]


def test_a_finished_run_is_extended_when_the_suite_asks_for_more_steps(tiny, tmp_path, monkeypatch, capsys):
    """The dry run lists such a run as to extend, and the run continues from its checkpoint."""
    suite, out, _ = tiny
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    longer_file = _suite_file(tmp_path, extra="[algo.sac]\nsteps = 500\n")
    longer = load_suite(longer_file)
    code, stdout, _ = nppac_in_process(monkeypatch, capsys, "suite", "run", str(longer_file), "--out", str(copy),
                                       "--dry-run", "--json")
    states = {r["key"]: r["state"] for r in json.loads(stdout)["runs"]}
    assert code == 0 and states["halfcheetah/sac/seed-0"] == "to extend", states
    (result,) = run_suite(longer, copy, progress=False, only=["*/sac/seed-0"])
    assert (result.outcome, result.resumed_at, result.summary["epochs"]) == ("finished", 3, 5)
    seed0 = copy / "halfcheetah/sac/seed-0"
    assert [int(r["epoch"]) for r in _progress(seed0)] == [0, 1, 2, 3, 4, 5]
    assert json.loads((seed0 / "config.json").read_text())["steps"] == 500
    # Until seed 1 is extended too, the report keeps it out of the row instead of mixing 300 and 500 steps.
    numbers = write_report(copy, figures=False)[0].to_json()
    assert numbers["tasks"]["halfcheetah"]["algos"]["sac"]["seeds"] == [0]
    (outdated,) = [r for r in numbers["runs"] if r["status"] == "outdated"]
    assert outdated["key"] == "halfcheetah/sac/seed-1" and "run `nppac suite run` again" in outdated["error"]
    assert [r.outcome for r in run_suite(longer, copy, progress=False, only=["*/sac/*"])] == ["skipped", "finished"]
    sac = write_report(copy, figures=False)[0].to_json()["tasks"]["halfcheetah"]["algos"]["sac"]
    assert sac["seeds"] == [0, 1] and sac["env_steps"] == 500


def test_finished_run_keeps_its_settings_and_a_held_run_is_busy(tiny, tmp_path, caplog):
    suite, out, _ = tiny
    changed = load_suite(_suite_file(tmp_path, extra="[algo.sac]\nupdates_per_epoch = 7\n"))
    with caplog.at_level("WARNING", logger="nppac.experiments.runners"):
        result = execute_run(changed.runs[0], out)
    assert result.outcome == "skipped"
    assert "differs from the suite in: updates_per_epoch" in caplog.text

    run = suite.runs[2]
    lock = out / "halfcheetah" / "sac" / f".seed-{run.seed}.lock"
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242\n")  # what a holder writes: its pid
        held.flush()
        busy = execute_run(run, out)
        assert busy.outcome == "busy" and busy.error == f"process 4242 holds {lock}: it is training this run"
    assert execute_run(run, out).outcome == "skipped"


def test_a_worker_stops_when_its_suite_process_ends():
    from nppac.experiments import runners

    suite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # stands for the suite process
    worker = os.fork()
    if worker == 0:  # the worker: exit code 0 would mean it outlived its suite
        try:
            runners.exit_with(suite.pid, every=0.05)
            time.sleep(20)
        finally:
            os._exit(0)
    suite.kill()
    suite.wait()
    started = time.perf_counter()
    _, status = os.waitpid(worker, 0)
    assert os.waitstatus_to_exitcode(status) == 1 and time.perf_counter() - started < 5


def test_process_pool_trains_in_worker_processes(tmp_path):
    suite = load_suite(_suite_file(tmp_path, seeds="[0]", name="pool"))
    events, results, arrived_with_result = [], [], {}
    for result in LocalRunner(workers=2).execute(suite.runs, tmp_path / "out", events.append):
        results.append(result)
        arrived_with_result[result.key] = [e["epoch"] for e in events if e["key"] == result.key]
    assert sorted((r.key, r.outcome) for r in results) == [
        ("halfcheetah/ppac-nn/seed-0", "failed"), ("halfcheetah/sac/seed-0", "finished")]
    # Epoch events travel back from the worker processes through the pool's queue.
    sac_events = [e["epoch"] for e in events if e["key"] == "halfcheetah/sac/seed-0"]
    assert sac_events == [0, 1, 2, 3]
    # Every event of a run arrives before its result, the last epoch's too (a worker's queue holds events
    # in a feeder thread while its result travels back through the pool).
    assert arrived_with_result["halfcheetah/sac/seed-0"] == [0, 1, 2, 3]
    assert len(_progress(tmp_path / "out" / "halfcheetah" / "sac" / "seed-0")) == 4


def test_cli_exits_1_when_a_run_failed_and_2_when_ray_is_missing(tmp_path, monkeypatch, capsys):
    path = _suite_file(tmp_path, algos='["ppac-nn"]', seeds="1", name="fails")
    code, stdout, stderr = nppac_in_process(monkeypatch, capsys, "suite", "run", str(path), "--out",
                                            str(tmp_path / "out"), "--json", "--quiet")
    assert code == 1
    results = json.loads(stdout)
    assert [(r["key"], r["outcome"]) for r in results["runs"]] == [("halfcheetah/ppac-nn/seed-0", "failed")]
    assert "no-such-demos.npz" in results["runs"][0]["error"]

    # Ray hidden from the interpreter: --ray must say how to install it.
    monkeypatch.setitem(sys.modules, "ray", None)
    code, stdout, stderr = nppac_in_process(monkeypatch, capsys, "suite", "run", str(path), "--out",
                                            str(tmp_path / "ray"), "--ray")
    assert code == 2 and stdout == ""
    assert stderr.strip().splitlines() == [
        "error: --ray needs Ray, which is not installed; install it with: pip install 'nppac[ray]'"]
    assert not (tmp_path / "ray").exists()


def test_ray_runner_with_a_local_ray(tmp_path):
    pytest.importorskip("ray")
    suite = load_suite(_suite_file(tmp_path, algos='["sac"]', seeds="[0]", name="ray"))
    out = tmp_path / "out"
    results = run_suite(suite, out, RayRunner(init_kwargs={"num_cpus": 2}), progress=False)
    assert [(r.key, r.outcome) for r in results] == [("halfcheetah/sac/seed-0", "finished")]
    assert results[0].summary["rows_this_call"] == 4
    rows = _progress(out / "halfcheetah" / "sac" / "seed-0")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert np.isfinite([float(r["eval_return"]) for r in rows]).all()
    assert run_state(out / "halfcheetah" / "sac" / "seed-0") == "finished"


def test_ray_fails_a_cuda_run_at_once_when_the_cluster_has_no_gpu(tmp_path):
    pytest.importorskip("ray")
    suite = load_suite(_suite_file(tmp_path, algos='["sac"]', seeds="[0]", name="ray-gpu",
                                   extra='[algo.sac]\ndevice = "cuda"\n'))
    started = time.perf_counter()
    results = run_suite(suite, tmp_path / "out", RayRunner(init_kwargs={"num_cpus": 1, "num_gpus": 0}), progress=False)
    assert [(r.key, r.outcome) for r in results] == [("halfcheetah/sac/seed-0", "failed")]
    assert "needs 1 GPU but the Ray cluster has 0" in results[0].error
    assert time.perf_counter() - started < 120  # not Ray's endless wait for a GPU


def test_priors_are_fitted_once_per_task_and_kind_and_recorded_in_each_run(tmp_path):
    from nppac.data import save_npz
    from tests.builders import tiny_demos

    save_npz(tiny_demos(), tmp_path / "demos.npz")
    extra = 'demos = "demos.npz"\nprior_iters = 3\ninit_epochs = 1\n'
    path = tmp_path / "shared.toml"
    path.write_text(textwrap.dedent(f'name = "shared"\ntasks = ["halfcheetah"]\nalgos = ["nppac", "nppac-nn-std"]\n'
                                    f"seeds = 2\n[settings]{TINY}{extra}"))
    out = tmp_path / "out"
    results = run_suite(load_suite(path), out, LocalRunner(workers=1), progress=False)
    assert [r.outcome for r in results] == ["finished"] * 4
    shared = sorted(p.name.rsplit("-", 1)[0] for p in (out / "priors").iterdir() if not p.name.startswith("."))
    assert shared == ["halfcheetah-gp", "halfcheetah-gp-mean-nn-std", "halfcheetah-nn"]
    used = {}
    for run in load_suite(path).runs:
        # Each run's config.json names its own copy of the shared prior, which carries the shared record.
        config = json.loads((run.directory(out) / "config.json").read_text())
        assert config["prior"] == "prior"  # relative to the run
        copy = run.directory(out) / "prior"
        used.setdefault(run.algo, set()).add(tuple((str(f.relative_to(copy)), f.read_bytes())
                                                   for f in sorted(copy.rglob("*")) if f.is_file()))
    # Both seeds of an algorithm read the same prior; the ablation's is the combination of the shared two.
    assert all(len(copies) == 1 for copies in used.values()) and used["nppac"] != used["nppac-nn-std"]
    record = json.loads(dict(next(iter(used["nppac"])))["shared_prior.json"])
    assert record["kind"] == "gp" and record["seed"] == 0 and len(record["demos_sha256"]) == 64
    # A second invocation finds every prior in place and fits nothing.
    before = {p: p.stat().st_mtime for p in (out / "priors").rglob("settings.json")}
    assert [r.outcome for r in run_suite(load_suite(path), out, progress=False)] == ["skipped"] * 4
    assert {p: p.stat().st_mtime for p in (out / "priors").rglob("settings.json")} == before


@pytest.fixture(scope="module")
def diverging(tmp_path_factory):
    """Two seeds of SAC; seed 1's losses 'become non-finite' after its second epoch (raised from its epoch hook)."""
    import pytest as _pytest

    from nppac.errors import DivergedError
    from nppac.experiments import runners

    root = tmp_path_factory.mktemp("diverging")
    suite = load_suite(_suite_file(root, algos='["sac"]', name="diverging"))
    out = root / "out"
    real_train = runners.train

    def train_that_diverges(config, directory, **kwargs):
        hook = kwargs["on_epoch_end"]

        def on_epoch_end(row):
            hook(row)
            if directory.name == "seed-1" and row["phase"] == "online" and int(row["epoch"]) == 2:
                raise DivergedError("critic loss became non-finite at epoch 3 (gradient step 5 of 20); run stopped")
        return real_train(config, directory, **{**kwargs, "on_epoch_end": on_epoch_end})

    with _pytest.MonkeyPatch.context() as patch:
        patch.setattr(runners, "train", train_that_diverges)
        results = run_suite(suite, out, LocalRunner(workers=1), progress=False)
    return suite, out, results


def test_a_diverged_run_is_recorded_as_such_and_not_trained_again(diverging, monkeypatch):
    from nppac.experiments import runners

    suite, out, results = diverging
    assert [(r.key, r.outcome) for r in results] == [("halfcheetah/sac/seed-0", "finished"),
                                                     ("halfcheetah/sac/seed-1", "diverged")]
    directory = out / "halfcheetah/sac/seed-1"
    status = json.loads((directory / "status.json").read_text())
    assert status["status"] == "diverged" and status["error"] == results[1].error
    assert "non-finite" in status["error"] and "traceback" not in status
    assert run_state(directory) == "diverged"
    monkeypatch.setattr(runners, "train", lambda *a, **k: pytest.fail("a diverged run was trained again"))
    again = run_suite(suite, out, progress=False)
    assert [r.outcome for r in again] == ["skipped", "skipped"] and again[1].error == status["error"]


def test_a_diverged_run_counts_in_the_report_with_its_last_evaluation_held(diverging, tmp_path):
    from nppac.experiments import export_suite

    _, out, _ = diverging
    rows = _progress(out / "halfcheetah/sac/seed-1")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]  # stopped before its third epoch
    returns = [float(r["eval_return"]) for r in rows]
    report, _ = write_report(out, last_k=2, figures=False)
    numbers = report.to_json()
    sac = numbers["tasks"]["halfcheetah"]["algos"]["sac"]
    assert sac["seeds"] == [0, 1] and sac["diverged"] == [1] and numbers["incomplete"] == []
    # Held: the schedule's step 300 scores the last evaluation (step 200) again.
    assert sac["final"]["eval_return"]["values"][1] == pytest.approx(returns[-1])
    held = [*returns, returns[-1]]
    auc = sum(100 * (held[i - 1] + held[i]) / 2 for i in range(1, 4)) / 300
    assert sac["auc"]["eval_return"]["values"][1] == pytest.approx(auc)
    markdown = report.to_markdown()
    assert "| sac | 2 (1 diverged) | 300 |" in markdown
    assert "## Diverged runs" in markdown and "| halfcheetah/sac/seed-1 | 2/3 | critic loss" in markdown
    # An export keeps the diverged run, so the report made from it is the same.
    dest = tmp_path / "export"
    export_suite(out, dest)
    assert write_report(dest, last_k=2, figures=False)[0].to_json()["tasks"] == numbers["tasks"]


def test_held_to_schedule_holds_evaluations_only():
    from nppac.diagnostics.curves import Run
    from nppac.experiments.report import held_to_schedule

    run = Run(Path("r"), {}, {"env_steps": np.array([0.0, 100.0]), "eval_return": np.array([5.0, 7.0]),
                              "eval_success": np.array([0.5, np.nan]), "kl_mean": np.array([np.nan, 3.0])})
    held = held_to_schedule(run, 400, 100)
    assert held.columns["env_steps"].tolist() == [0, 100, 200, 300, 400]
    assert held.columns["eval_return"].tolist() == [5, 7, 7, 7, 7]
    assert held.columns["eval_success"][2:].tolist() == [0.5, 0.5, 0.5]  # the last finite evaluation
    assert np.isnan(held.columns["kl_mean"][2:]).all()
    assert held.stopped_at == 100 and run.stopped_at is None
    from nppac.diagnostics.curves import Group, _label

    assert _label(Group("sac", [run, held], {})) == "sac (n=2, 1 diverged, last evaluation held)"
    assert _label(Group("sac", [run], {})) == "sac (n=1)"
    assert held_to_schedule(held, 400, 100) is held
    stopped_last = held_to_schedule(Run(Path("r"), {}, {"env_steps": np.array([0.0, 400.0]),
                                                       "eval_return": np.array([5.0, 7.0])}), 400, 100)
    assert stopped_last.stopped_at == 400 and stopped_last.columns["env_steps"].tolist() == [0, 400]


def test_shared_init_initializes_once_per_task_seed_and_sigma_setting_and_is_reused(tmp_path, monkeypatch):
    """Variants that differ after step 0 start from one initialized actor; one of another σ0 from its own; a
    second invocation makes none again."""
    import nppac.training

    variants = textwrap.dedent("""\
        [variant.a]
        algo = "ppac-nn"
        [variant.b]
        algo = "ppac-nn"
        critic_layernorm = true
        [variant.c]
        algo = "ppac-nn"
        prior_sigma = "variance"
        """)
    path = _suite_file(tmp_path, algos='["a", "b", "c"]', seeds="1", name="screen", extra=variants)
    text = path.read_text().replace("[settings]", "[settings]\ninit_epochs = 2\nprior_iters = 20", 1)
    path.write_text("shared_init = true\n" + text)
    calls = []
    real_train = nppac.training.train
    monkeypatch.setattr(nppac.training, "train",
                        lambda cfg, out, **kw: calls.append(out.name) or real_train(cfg, out, **kw))
    suite = load_suite(path)
    out = tmp_path / "out"
    results = run_suite(suite, out, LocalRunner(workers=1), progress=False)
    assert [r.outcome for r in results] == ["finished"] * 3
    inits = sorted(p.name for p in (out / "inits").iterdir() if p.is_dir())
    assert len(inits) == len(calls) == 2  # 2 σ0 settings
    used = {r.key: json.loads((r.directory(out) / "config.json").read_text()) for r in suite.runs}
    for seed in (0,):
        a, b, c = (used[f"halfcheetah/{v}/seed-{seed}"] for v in "abc")
        assert a["init_actor"] == b["init_actor"] != c["init_actor"] and a["init_epochs"] == 0
        assert Path(a["init_actor"]).parent.parent == out / "inits"
        step0 = [_progress(out / "halfcheetah" / v / f"seed-{seed}")[0]["eval_return"] for v in "ab"]
        assert step0[0] == step0[1]  # the same initialized actor, evaluated alike
    run_suite(load_suite(path), out, LocalRunner(workers=1), progress=False)
    assert len(calls) == 2
