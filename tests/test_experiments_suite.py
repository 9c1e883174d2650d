"""Suite files: expansion into runs, precedence of the tables, one-line validation errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from nppac.errors import NppacError
from nppac.experiments import load_suite, parse_suite, read_manifest
from nppac.experiments.suite import Suite
from tests.builders import nppac_in_process
from tests.conftest import run_cli

SUITE = """
name = "priors"
tasks = ["halfcheetah", "door-binary"]
algos = ["nppac", "ppac-nn", "sac"]
seeds = 3

[settings]
steps = 2e4
steps_per_epoch = 500
actor_hidden = [64, 64]
alpha = 0.3

[task.door-binary]
alpha = 0.5
demos = "demos/door.npz"
seed_demos = true

[algo.sac]
alpha = 0.05
auto_alpha = true

[report]
last_k = 4
threshold = { door-binary = 0.5 }
"""


def _write(tmp_path, text, name="suite.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_expansion_counts_order_dirs_and_table_precedence(tmp_path):
    suite = load_suite(_write(tmp_path, SUITE))
    assert suite.name == "priors"
    assert len(suite.runs) == 2 * 3 * 3
    # Seed by seed: all tasks and algorithms of seed 0 come first.
    assert [r.key for r in suite.runs[:6]] == [
        "halfcheetah/nppac/seed-0", "halfcheetah/ppac-nn/seed-0", "halfcheetah/sac/seed-0",
        "door-binary/nppac/seed-0", "door-binary/ppac-nn/seed-0", "door-binary/sac/seed-0"]
    assert [r.seed for r in suite.runs] == [0] * 6 + [1] * 6 + [2] * 6
    assert len({r.directory(tmp_path / "out") for r in suite.runs}) == 18
    assert suite.runs[7].directory(tmp_path / "out") == tmp_path / "out" / "halfcheetah" / "ppac-nn" / "seed-1"

    by_key = {r.key: r.config for r in suite.runs}
    cheetah_nppac, door_nppac = by_key["halfcheetah/nppac/seed-2"], by_key["door-binary/nppac/seed-2"]
    door_sac = by_key["door-binary/sac/seed-1"]
    # settings < task < algo; TOML floats that are whole numbers fill integer fields, lists fill tuples.
    assert (cheetah_nppac.steps, cheetah_nppac.steps_per_epoch, cheetah_nppac.n_epochs) == (20_000, 500, 40)
    assert cheetah_nppac.actor_hidden == (64, 64)
    assert cheetah_nppac.alpha == 0.3 and door_nppac.alpha == 0.5 and door_sac.alpha == 0.05
    assert door_sac.auto_alpha and not door_nppac.auto_alpha
    assert door_nppac.seed_demos and not cheetah_nppac.seed_demos
    # Relative data paths are taken from the suite file's directory.
    assert door_nppac.demos == str(tmp_path / "demos" / "door.npz") and cheetah_nppac.demos is None
    assert suite.runs[0].overrides[:2] == ("steps=20000", "steps_per_epoch=500")
    assert (suite.report.last_k, suite.report.thresholds) == (4, {"door-binary": 0.5})


def test_seed_list_single_names_and_default_name(tmp_path):
    suite = load_suite(_write(tmp_path, 'tasks = "hopper"\nalgos = ["sac"]\nseeds = [3, 7]\n', "mine.toml"))
    assert suite.name == "mine"
    assert [r.key for r in suite.runs] == ["hopper/sac/seed-3", "hopper/sac/seed-7"]
    assert suite.runs[0].config.steps == 1_000_000 and suite.runs[0].overrides == ()


def test_manifest_round_trip_and_refuses_another_suite(tmp_path):
    suite = load_suite(_write(tmp_path, SUITE))
    out = tmp_path / "out"
    suite.write_manifest(out)
    back = read_manifest(out)
    assert back.name == suite.name and back.report == suite.report
    assert [(r.key, r.config, r.overrides) for r in back.runs] == [(r.key, r.config, r.overrides) for r in suite.runs]
    other = load_suite(_write(tmp_path, 'name = "other"\ntasks = ["hopper"]\nalgos = ["sac"]\nseeds = 1\n', "o.toml"))
    with pytest.raises(NppacError, match="holds the runs of suite 'priors'"):
        other.write_manifest(out)


@pytest.mark.parametrize("report, message", [
    ({"last_k": 2.5}, "report.last_k must be a positive integer, got 2.5"),
    ({"threshold": {"halfcheetah": "x"}}, "report.threshold.halfcheetah must be a finite number, got 'x'"),
    ({"adjust": "bogus"}, "report.adjust must be one of holm, bh, none"),
])
def test_a_manifests_report_settings_are_typed_as_the_suite_files_are(tmp_path, report, message):
    out = tmp_path / "out"
    load_suite(_write(tmp_path, SUITE)).write_manifest(out)
    data = json.loads((out / "suite.json").read_text())
    data["report"].update(report)
    (out / "suite.json").write_text(json.dumps(data))
    with pytest.raises(NppacError, match=r"suite.json is not a suite manifest .*" + message.replace(".", r"\.")):
        read_manifest(out)


BASE = 'tasks = ["halfcheetah"]\nalgos = ["sac"]\nseeds = 2\n'


@pytest.mark.parametrize("text, expected", [
    (BASE + "[settings]\nstepz = 100\n", "[settings] stepz: unknown setting"),
    (BASE + "[algo.sac]\nlearning_rate = 1e-3\n", "[algo.sac] learning_rate: unknown setting"),
    ('tasks = ["halfcheeta"]\nalgos = ["sac"]\nseeds = 1\n', "tasks: unknown name 'halfcheeta'"),
    ('tasks = ["hopper"]\nalgos = ["td3"]\nseeds = 1\n', "algos: unknown name 'td3'"),
    ('tasks = ["hopper"]\nseeds = 1\n', "missing key algos"),
    (BASE + "sedes = 3\n", "unknown key sedes"),
    (BASE + "[settings]\nseed = 4\n", "[settings] seed: set by the suite's seeds list"),
    (BASE + "[settings]\nsteps = \"many\"\n", "[settings] steps = 'many': expected a whole number"),
    (BASE + "[settings]\nauto_alpha = 3\n", "[settings] auto_alpha = 3: expected true or false"),
    (BASE + "[task.walker]\nalpha = 0.2\n", "[task.walker]: unknown task 'walker'"),
    (BASE + "[settings]\nsteps = 10\n", "run halfcheetah/sac/seed-0: steps=10 is less than one epoch"),
    ('tasks = ["hopper"]\nalgos = ["sac"]\nseeds = 0\n', "seeds must be at least 1"),
    ('tasks = ["hopper"]\nalgos = ["sac"]\nseeds = [1, 1]\n', "seeds lists a seed twice"),
    (BASE + "[report]\nthreshold = { ant2 = 1.0 }\n", "report.threshold: 'ant2' is not one of the suite's tasks"),
    (BASE + "[report]\nlast_k = 0\n", "report.last_k must be a positive integer"),
    (BASE + "[settings\n", "not valid TOML"),
])
def test_validation_errors_are_one_line_naming_file_and_key(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(NppacError) as info:
        load_suite(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_cli_validation_error_exits_2_with_one_line(tmp_path):
    path = _write(tmp_path, BASE + "[settings]\nstepz = 100\n")
    proc = run_cli("suite", "run", str(path), "--out", str(tmp_path / "out"), "--dry-run")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "stepz" in lines[0] and str(path) in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()


def test_cli_dry_run_json_lists_runs_and_writes_nothing(tmp_path, monkeypatch, capsys):
    path = _write(tmp_path, SUITE)
    out = tmp_path / "out"
    code, stdout, _ = nppac_in_process(monkeypatch, capsys, "suite", "run", str(path), "--out", str(out),
                                       "--dry-run", "--json")
    assert code == 0
    listing = json.loads(stdout)
    assert listing["suite"] == "priors" and len(listing["runs"]) == 18
    first = listing["runs"][0]
    assert first["dir"] == str(out / "halfcheetah" / "nppac" / "seed-0")
    assert (first["state"], first["epochs"], first["n_epochs"]) == ("pending", 0, 40)
    assert first["config"]["actor_hidden"] == [64, 64]
    assert not out.exists()


def test_example_suites_expand():
    examples = Path(__file__).resolve().parents[1] / "examples" / "suites"
    priors = load_suite(examples / "halfcheetah_priors.toml")
    assert (priors.name, len(priors.runs), priors.seeds) == ("halfcheetah-priors", 30, [0, 1, 2, 3, 4])
    door = next(r.config for r in priors.runs if r.key == "door-binary/nppac/seed-0")
    assert door.demos == str(examples / "demos" / "door-binary.npz") and door.seed_demos
    smoke = load_suite(examples / "smoke.toml")
    assert [r.key for r in smoke.runs] == ["halfcheetah/sac/seed-0", "halfcheetah/sac/seed-1"]
    assert smoke.runs[0].config.n_epochs == 3


def test_select_runs_by_shell_patterns(tmp_path):
    suite = load_suite(_write(tmp_path, SUITE))
    assert suite.select([]) == suite.runs
    one_task = suite.select([f"{suite.tasks[0]}/*"])
    assert one_task and {r.task for r in one_task} == {suite.tasks[0]}
    either = suite.select([f"*/{suite.algos[0]}/*", "*/seed-0"])
    assert {r.key for r in either} == {r.key for r in suite.runs if r.algo == suite.algos[0] or r.seed == 0}
    assert [r.key for r in either] == [r.key for r in suite.runs if r in either]  # the suite's order
    with pytest.raises(NppacError, match=r"--only 'door/\*' matches no run of suite priors; runs are named"):
        suite.select(["door/*"])


def test_skip_leaves_task_algo_pairs_out_of_the_product(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('tasks = ["halfcheetah", "hopper"]\nalgos = ["sac", "bc"]\nseeds = 2\nskip = ["hopper/bc"]\n')
    keys = [r.key for r in load_suite(path).runs]
    assert len(keys) == 6 and not any(k.startswith("hopper/bc/") for k in keys)
    path.write_text('tasks = ["halfcheetah"]\nalgos = ["sac"]\nseeds = 1\nskip = ["hopper/sac"]\n')
    with pytest.raises(NppacError, match="'hopper/sac', which is not one of the suite's task/algo pairs"):
        load_suite(path)


def test_an_algorithms_own_setting_belongs_in_its_table(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('tasks = ["pen-binary"]\nalgos = ["awac", "sac"]\nseeds = 1\n[algo.awac]\nlam = 0.3\n')
    awac = next(r for r in load_suite(path).runs if r.algo == "awac")
    assert awac.config.algo_settings == {"lam": 0.3}
    path.write_text('tasks = ["pen-binary"]\nalgos = ["awac", "sac"]\nseeds = 1\n[settings]\nlam = 0.3\n')
    with pytest.raises(NppacError, match=r"\[settings\] lam: unknown setting"):
        load_suite(path)


def test_dry_run_piped_keeps_every_run_name_whole(tmp_path, capsys):
    from nppac.cli import main

    path = tmp_path / "long.toml"
    # A long setting of one task only: it stays in the table, beside the run names.
    path.write_text('tasks = ["relocate-binary", "hammer-binary"]\nalgos = ["nppac-nn-std"]\nseeds = [12345]\n'
                    '[task.relocate-binary]\ndemos = "a/very/long/path/to/some/demonstrations/relocate-binary.npz"\n')
    with pytest.raises(SystemExit) as exit_info:
        main(["suite", "run", str(path), "--out", str(tmp_path / "out"), "--dry-run"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "relocate-binary/nppac-nn-std/seed-12345" in out and "…" not in out


@pytest.mark.parametrize(("name", "count"), [("cpu", 36), ("cpu_std", 9), ("cpu_door", 9), ("cpu_published", 18),
                                             ("cpu_door_published", 2), ("cpu_remedies", 12), ("paper", 210),
                                             ("screen_second_actor", 48)])
def test_shipped_suite_files_expand(name, count, tmp_path):
    """The suites under benchmarks/suites parse, and their dry run lists every run without training one."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "suites" / f"{name}.toml"
    assert len(load_suite(path).runs) == count
    proc = run_cli("suite", "run", str(path), "--out", str(tmp_path / "out"), "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "out").exists()


def test_the_second_actor_screen_runs_each_remedy_on_every_task():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "suites" / "screen_second_actor.toml"
    runs = {r.key: r.config for r in load_suite(path).runs}
    assert {(r.config.n_epochs, r.config.algo) for r in load_suite(path).runs} == {(10, "nppac")}
    pen = runs["pen-binary/second-prior/seed-1"]
    assert pen.demos is not None and pen.demos.endswith("shared/data/pen2_sparse.npy") and pen.allow_pickle
    assert pen.resolved().hand_protocol == "nppac"
    assert (pen.second_actor, pen.second_actor_choice) == ("prior-mean", "greedy")
    assert runs["hopper/second-init/seed-0"].second_actor == "init-actor"
    assert runs["walker2d/nppac/seed-0"].second_actor == "none"
    rlpd = runs["halfcheetah/demos-half-ln/seed-0"]
    assert (rlpd.demo_batch_fraction, rlpd.critic_layernorm, rlpd.second_actor) == (0.5, True, "none")
    alpha = runs["halfcheetah/demos-half-alpha-init/seed-0"]
    assert (alpha.demo_batch_fraction, alpha.auto_alpha_target, alpha.critic_layernorm) == (0.5, "init-kl", False)
    assert runs["halfcheetah/demos-half/seed-0"].demo_batch_fraction == 0.5


@pytest.mark.parametrize("extra, message", [
    ({"task": {"hopper": {"steps": 300}}}, r"\[task.hopper\]: hopper is not in the suite's tasks"),
    ({"algo": {"awac": {"lam": 0.3}}}, r"\[algo.awac\]: awac is not in the suite's algos"),
    ({"settings": {"demos": 5}}, "demos = 5: expected a string or null"),
    ({"report": {"threshold": {"hopper": 1.0}}}, "'hopper' is not one of the suite's tasks"),
    ({"report": {"threshold": {"halfcheetah": float("nan")}}}, "must be a finite number"),
    ({"skip": ["halfcheetah/nppac", "halfcheetah/sac"]}, "skip removes every task/algo pair"),
])
def test_settings_are_checked_against_the_suite_they_belong_to(extra, message):
    data = {"tasks": ["halfcheetah"], "algos": ["nppac", "sac"], "seeds": 1, **extra}
    with pytest.raises(NppacError, match=message):
        parse_suite(data)


def test_a_prior_recorded_for_another_task_is_refused(tmp_path):
    import json

    from nppac.training.setup import check_prior_task

    (tmp_path / "metrics.json").write_text(json.dumps({"task": "halfcheetah"}))
    check_prior_task(tmp_path, "halfcheetah")
    with pytest.raises(NppacError, match="fitted for task halfcheetah \\(metrics.json\\), not walker2d"):
        check_prior_task(tmp_path, "walker2d")


def test_a_variant_is_an_algorithm_with_settings_of_its_own(tmp_path):
    path = _write(tmp_path, """
        tasks = ["pen-binary"]
        algos = ["nppac", "nppac-ln", "awac-strict"]
        seeds = 2
        [settings]
        alpha = 0.3

        [algo.nppac]
        alpha = 0.2
        batch_size = 64

        [variant.nppac-ln]
        algo = "nppac"
        critic_layernorm = true
        alpha = 0.1

        [variant.awac-strict]
        algo = "awac"
        lam = 0.1
        """)
    suite = load_suite(path)
    assert suite.algos == ["nppac", "nppac-ln", "awac-strict"]
    runs = {r.key: r for r in suite.runs}
    ln = runs["pen-binary/nppac-ln/seed-1"]
    # settings < the algorithm's table (it applies to its variants) < the variant's table.
    assert (ln.config.algo, ln.variant, ln.config.alpha, ln.config.batch_size) == ("nppac", "nppac-ln", 0.1, 64)
    assert ln.config.critic_layernorm is True and runs["pen-binary/nppac/seed-1"].config.critic_layernorm is False
    assert runs["pen-binary/nppac/seed-1"].config.alpha == 0.2 and runs["pen-binary/nppac/seed-1"].variant is None
    assert ln.directory(tmp_path) == tmp_path / "pen-binary" / "nppac-ln" / "seed-1"
    strict = runs["pen-binary/awac-strict/seed-0"]
    assert strict.config.algo == "awac" and strict.config.algo_settings == {"lam": 0.1}
    assert [r.key for r in suite.select(["*/nppac-ln/*"])] == ["pen-binary/nppac-ln/seed-0",
                                                               "pen-binary/nppac-ln/seed-1"]
    suite.write_manifest(tmp_path / "out")
    again = read_manifest(tmp_path / "out")
    assert [(r.key, r.variant, r.config) for r in again.runs] == [(r.key, r.variant, r.config) for r in suite.runs]


@pytest.mark.parametrize("variant, message", [
    ({"sac": {"algo": "sac"}}, r"\[variant.sac\]: a variant needs a name of its own"),
    ({"SAC": {"algo": "sac"}}, r"\[variant.SAC\]: a variant needs a name of its own"),
    ({"n[ln]": {"algo": "sac"}}, r"\[variant.n\[ln\]\]: a variant needs a name of its own"),
    ({"v": {"algo": ["nppac"]}}, r"\[variant.v\] algo = \['nppac'\]: name the algorithm it varies"),
    ({"v": {"alpha": 0.2}}, r"\[variant.v\] algo = None: name the algorithm it varies"),
    ({"v": {"algo": "td3"}}, r"\[variant.v\] algo = 'td3'"),
    ({"v": {"algo": "sac", "lam": 0.3}}, r"\[variant.v\] lam: unknown setting"),
    ({"v": {"algo": "sac", "alpha": "high"}}, r"\[variant.v\] alpha = 'high'"),
    ({"v": {"algo": "sac"}, "w": {"algo": "nppac"}}, r"\[variant.w\]: w is not in the suite's algos"),
])
def test_variants_are_checked_like_algorithm_tables(variant, message):
    with pytest.raises(NppacError, match=message):
        parse_suite({"tasks": ["hopper"], "algos": ["nppac", "v"] if "v" in variant else ["nppac"], "seeds": 1,
                     "variant": variant})


def test_a_skipped_cell_does_not_move_its_column(tmp_path):
    suite = parse_suite({"tasks": ["hopper", "halfcheetah"], "algos": ["nppac", "v", "sac"], "seeds": 1,
                         "skip": ["hopper/nppac"], "variant": {"v": {"algo": "nppac", "critic_layernorm": True}}})
    assert [r.key for r in suite.runs][:2] == ["hopper/v/seed-0", "hopper/sac/seed-0"]
    assert suite.algos == ["nppac", "v", "sac"]  # the report's default baseline stays the first listed
    assert Suite(suite.name, suite.runs).algos == ["v", "sac", "nppac"]  # without the file's order: as they come
    suite.write_manifest(tmp_path)
    assert read_manifest(tmp_path).algos == ["nppac", "v", "sac"]


def test_shared_priors_keep_a_runs_variant(tmp_path, monkeypatch):
    import nppac.experiments.shared_priors as shared

    suite = parse_suite({"tasks": ["hopper"], "algos": ["nppac", "v"], "seeds": 1,
                         "variant": {"v": {"algo": "nppac", "critic_layernorm": True}}})
    monkeypatch.setattr(shared, "shared_prior", lambda cfg, kind, root: root / f"{cfg.task}-{kind}")
    runs = shared.with_shared_priors(suite, tmp_path).runs
    assert [(r.key, r.variant, Path(r.config.prior).name) for r in runs] == [
        ("hopper/nppac/seed-0", None, "hopper-gp"), ("hopper/v/seed-0", "v", "hopper-gp")]


def test_shared_priors_are_fitted_only_for_the_runs_about_to_train(tmp_path, monkeypatch):
    import nppac.experiments.shared_priors as shared

    suite = parse_suite({"tasks": ["hopper", "walker2d"], "algos": ["nppac", "ppac-nn", "sac"], "seeds": 1})
    fitted = []
    monkeypatch.setattr(shared, "shared_prior",
                        lambda cfg, kind, root: fitted.append((cfg.task, kind)) or root / f"{cfg.task}-{kind}")
    runs = shared.with_shared_priors(suite, tmp_path, {"walker2d/ppac-nn/seed-0", "hopper/sac/seed-0"}).runs
    assert fitted == [("walker2d", "nn")]
    assert [r.key for r in runs if r.config.prior is not None] == ["walker2d/ppac-nn/seed-0"]
    assert len(shared.with_shared_priors(suite, tmp_path).runs) == 6 and len(fitted) == 1 + 4


def test_the_example_suite_of_the_docs_parses(tmp_path):
    text = (Path(__file__).resolve().parents[1] / "docs" / "experiments.md").read_text()
    example = text.split("### The suite file", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "demos").mkdir()
    (tmp_path / "example.toml").write_text(example)
    suite = load_suite(tmp_path / "example.toml")
    assert suite.algos == ["nppac", "ppac-nn", "sac", "awac", "nppac-ln"]


def test_a_dry_run_with_nothing_measured_says_so_and_no_time(tmp_path):
    path = _write(tmp_path, BASE)
    proc = run_cli("suite", "run", str(path), "--out", str(tmp_path / "out"), "--dry-run", "--quiet")
    caption = " ".join(proc.stdout.split())
    runs = len(load_suite(path).runs)
    assert proc.returncode == 0 and f"left: {runs} runs nothing has measured yet" in caption, proc.stdout
    assert "0 min" not in caption
