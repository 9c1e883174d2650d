"""Replications: runs whose resolved settings are equal apart from the seed and where they ran are one cell."""

from __future__ import annotations

import json

from nppac.experiments.replicates import cell_setting_key, differing_settings, setting_key
from nppac.training import TrainConfig


def _config(**changes: object) -> dict:
    return {**TrainConfig(task="halfcheetah", algo="ppac-nn", steps=3000).resolved().to_dict(), **changes}


def test_runs_that_differ_in_seed_and_location_only_replicate_one_cell():
    here = _config(seed=0, prior="/root/nppac-results/cpu/priors/halfcheetah-nn-cb510481b136", device="cpu",
                   num_threads=1, demos="/home/a/demos/halfcheetah.npz")
    there = _config(seed=4, prior="/data/cpu-published/halfcheetah/ppac-nn/seed-4/prior", device="cuda",
                    num_threads=8, demos="/mnt/b/demos/halfcheetah.npz")
    assert setting_key(here) == setting_key(there)
    assert differing_settings(here, there) == {}


def test_any_other_setting_makes_another_cell():
    base = _config()
    assert differing_settings(base, _config(prior_variance="love", prior_convention="published")) == {
        "prior_convention": (None, "published"), "prior_variance": ("exact", "love")}
    assert setting_key(base) != setting_key(_config(eval_every=5))  # final averages other rows
    assert setting_key(base) != setting_key(_config(demos="/a/other-demos.npz"))
    assert setting_key(base) != setting_key(_config(steps=6000))


def test_a_run_written_before_a_setting_existed_reads_as_it_ran():
    """Settings added since (the remedies, eval_every, the variance estimate) are filled as such a run (written
    before config schemas) had them."""
    today = _config()
    old = {k: v for k, v in today.items()
           if k not in ("schema", "eval_every", "prior_variance", "critic_layernorm", "auto_alpha_target")}
    assert setting_key(old) == setting_key(today)
    assert setting_key(old) != setting_key(_config(critic_layernorm=True))


def test_a_suite_column_has_a_cell_only_when_its_seeds_agree(tmp_path):
    runs = []
    for seed in range(2):
        run = tmp_path / f"seed-{seed}"
        run.mkdir()
        (run / "config.json").write_text(json.dumps(_config(seed=seed)))
        runs.append(run)
    assert cell_setting_key(runs) == setting_key(_config())
    (runs[1] / "config.json").write_text(json.dumps(_config(seed=1, alpha=0.3)))
    assert cell_setting_key(runs) is None
    assert cell_setting_key([tmp_path / "missing"]) is None
