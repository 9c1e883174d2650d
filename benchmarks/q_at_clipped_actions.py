"""Does a KL-SAC critic overestimate because it is queried outside the action box?

    python benchmarks/q_at_clipped_actions.py RUN_DIR [RUN_DIR ...] \\
        --demos ../shared/data/pen2_sparse.npy --allow-pickle

The training loop stores the executed (clipped) action in the replay buffer, while the
critic target and the actor loss query Q at the Gaussian head's raw samples, which may
leave [−1, 1]. For each run directory (a suite's, with its checkpoint.pt), on the
demonstration states, with samples drawn from the checkpointed policy: the fraction of
sampled action entries outside [−1, 1], the policy's median σ, and min_k Q_k at the
sampled actions, at the same actions clipped, and at the mean action. Equal Q values say
the box is not where the critic's values come from.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from nppac.data.loaders import load_demos
from nppac.training import TrainConfig
from nppac.training.checkpoint import load_checkpoint
from nppac.training.setup import kl_sac_config


def probe(run: Path, states: torch.Tensor) -> str:
    from nppac.agents import KLSAC

    cfg = TrainConfig.load(run / "config.json").resolved()
    task = cfg.task_spec
    agent = KLSAC(task.obs_dim, task.act_dim, cfg.actor, cfg.actor_hidden, cfg.critic_hidden,
                  kl_sac_config(cfg), log_std_range=cfg.algo_config().log_std_range)
    state = load_checkpoint(run / "checkpoint.pt", "cpu", required=("agent.actor", "agent.critic"), mmap=True)["agent"]
    agent.actor.load_state_dict(state["actor"])
    agent.critic.load_state_dict(state["critic"])
    torch.manual_seed(0)
    with torch.no_grad():
        action, _ = agent.actor.sample(states)
        _, std = agent.actor(states)
        q = [agent.critic(states, a).min(0).values.mean().item()
             for a in (action, action.clamp(-1.0, 1.0), agent.actor.deterministic(states))]
    outside = (action.abs() > 1).float().mean().item()
    return (f"| {cfg.task} / {cfg.algo} / seed {cfg.seed} | {outside:.3f} | {std.median().item():.3g} "
            f"| {q[0]:.4g} | {q[1]:.4g} | {q[2]:.4g} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories of KL-SAC algorithms (nppac, sac-bc, …)")
    parser.add_argument("--demos", required=True, help="the demonstrations whose states are probed")
    parser.add_argument("--allow-pickle", action="store_true")
    args = parser.parse_args()
    task = TrainConfig.load(args.runs[0] / "config.json").task
    states = torch.as_tensor(load_demos(args.demos, task=task, allow_pickle=args.allow_pickle).states,
                             dtype=torch.float32)
    print("| run | sampled entries outside [−1, 1] | median σ | Q(s, a) | Q(s, clip(a)) | Q(s, mean action) |")
    print("|---|---|---|---|---|---|")
    for run in args.runs:
        print(probe(run, states))


if __name__ == "__main__":
    main()
