"""The variance ablation's mean-std prior: the GP's mean with the NN's σ0, in the library, on disk and from the CLI."""

import json

import numpy as np
import pytest
import torch

from nppac.errors import NppacError
from nppac.priors import MeanStdPrior, combine_priors, fit_prior, load_prior
from tests.builders import make_demos, nppac_in_process, one_thread  # noqa: F401 (autouse fixture)
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def parts():
    rng = np.random.default_rng(0)
    states = rng.normal(size=(80, 3))
    demos = make_demos(states, np.tanh(states[:, :2]))
    gp, _ = fit_prior(demos, "gp", kernel="rbf", iters=20)
    nn, _ = fit_prior(demos, "nn", iters=20)
    return gp, nn


def test_mean_is_the_gps_and_std_is_the_nns_at_any_states(parts, tmp_path):
    gp, nn = parts
    ablation = combine_priors(gp, nn)
    assert ablation.kind == "gp-mean-nn-std" and (ablation.obs_dim, ablation.act_dim) == (3, 2)
    # On the data, off it, and far off it (where the two σ0 differ by orders of magnitude).
    states = torch.cat([torch.randn(20, 3), 5 * torch.randn(20, 3), torch.full((1, 3), 40.0)])
    mean, std = ablation.predict(states)
    torch.testing.assert_close(mean, gp.predict(states)[0])
    torch.testing.assert_close(std, nn.predict(states)[1])
    assert not torch.allclose(std, gp.predict(states)[1])
    ablation.save(tmp_path / "ablation")
    settings = json.loads((tmp_path / "ablation" / "settings.json").read_text())
    assert (settings["kind"], settings["mean"], settings["std"]) == ("gp-mean-nn-std", "gp", "nn")  # one name
    loaded = load_prior(tmp_path / "ablation")
    assert isinstance(loaded, MeanStdPrior) and loaded.kind == "gp-mean-nn-std"
    torch.testing.assert_close(loaded.predict(states)[0], mean)
    torch.testing.assert_close(loaded.predict(states)[1], std)


def test_a_prior_saved_under_the_earlier_kind_combined_loads(parts, tmp_path):
    gp, nn = parts
    combine_priors(gp, nn).save(tmp_path / "old")
    # Earlier versions wrote settings.json with kind "combined" (the committed results' shared priors still do).
    settings_file = tmp_path / "old" / "settings.json"
    settings_file.write_text(json.dumps({**json.loads(settings_file.read_text()), "kind": "combined"}))
    loaded = load_prior(tmp_path / "old")
    assert loaded.kind == "gp-mean-nn-std"
    states = torch.randn(9, 3)
    torch.testing.assert_close(loaded.predict(states)[0], gp.predict(states)[0])
    torch.testing.assert_close(loaded.predict(states)[1], nn.predict(states)[1])
    # A settings.json whose kind names other parts than it holds is not read as this prior.
    settings_file.write_text(json.dumps({**json.loads(settings_file.read_text()), "kind": "nn-mean-gp-std"}))
    with pytest.raises(NppacError, match="not a mean-std prior"):
        load_prior(tmp_path / "old")


def test_parts_of_other_dimensions_are_refused(parts):
    gp, _ = parts
    other = make_demos(np.zeros((10, 4)), np.zeros((10, 2)))
    nn4, _ = fit_prior(other, "nn", iters=2)
    with pytest.raises(NppacError, match="cannot combine"):
        combine_priors(gp, nn4)


def test_cli_combines_two_saved_priors(parts, tmp_path, monkeypatch, capsys):
    gp, nn = parts
    gp.save(tmp_path / "gp")
    nn.save(tmp_path / "nn")
    args = ("prior", "combine", "--mean", str(tmp_path / "gp"), "--std", str(tmp_path / "nn"),
            "--out", str(tmp_path / "ablation"))
    code, stdout, _ = nppac_in_process(monkeypatch, capsys, *args)
    assert code == 0 and "gp-mean-nn-std" in stdout
    assert json.loads((tmp_path / "ablation" / "settings.json").read_text())["kind"] == "gp-mean-nn-std"
    states = torch.randn(7, 3)
    ablation = load_prior(tmp_path / "ablation")
    torch.testing.assert_close(ablation.predict(states)[0], load_prior(tmp_path / "gp").predict(states)[0])
    torch.testing.assert_close(ablation.predict(states)[1], load_prior(tmp_path / "nn").predict(states)[1])
    again = run_cli(*args)
    assert again.returncode == 2 and "exists and is not empty" in again.stderr
