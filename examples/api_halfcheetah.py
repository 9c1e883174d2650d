"""The Python API in a few lines: fit the GP prior, train N-PPAC with early stopping, reload, act.

    python examples/api_halfcheetah.py [RUN_DIR]

Short on purpose: a GP on 2 of the 10 bundled trajectories, 10 epochs of policy initialization,
3 epochs of 1,000 steps with 200 updates each. The published settings are the defaults (drop the
keyword arguments, and the trajectory subset, for them).
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

from nppac import NPPAC, Model, fit_prior
from nppac.data import load_demos
from nppac.tasks import get_task


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="nppac-api-")) / "hc"
    demos = load_demos(get_task("halfcheetah").bundled_demos, task="halfcheetah", clip_actions=True)
    demos = dataclasses.replace(demos, trajectories=demos.trajectories[:2])
    prior = fit_prior(demos, task="halfcheetah", kind="gp", iters=100)
    print(f"GP prior on {demos.n_transitions} transitions: σ0 on the data {prior.metrics['std_on_data']:.3f}",
          flush=True)

    def report(row: dict) -> bool:
        print(f"  env step {row['env_steps']:>5}: eval return {row['eval_return']:8.1f}", flush=True)
        return row["eval_return"] > -500  # stop early if the policy collapses

    model = NPPAC("halfcheetah", prior=prior, demos=demos, seed=0, init_epochs=10, updates_per_epoch=200,
                  num_threads=1)
    model.learn(total_timesteps=3_000, out_dir=out, callback=report, progress=False)
    again = Model.load(out)
    action, _ = again.predict(np.zeros(17, dtype=np.float32), deterministic=True)
    print(f"run directory {out}; action at the zero state {np.round(action, 2)}")


if __name__ == "__main__":
    main()
