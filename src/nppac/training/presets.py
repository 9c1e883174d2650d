"""Named groups of settings: ``preset = "published"`` gives the published code's settings for a task.

A preset fills the settings a run leaves unset, before the algorithm's and the task's defaults (an explicit setting
always wins). Its values are written here as the published code had them (DESIGN.md §3), not read from nppac's own
task defaults, so that a change of nppac's defaults does not change what the preset reproduces.

``published``, for the algorithms with a prior (N-PPAC, PPAC-NN, the variance ablation):

* the prior the published code computed: σ0² from gpytorch 1.0.1's LOVE in the place of σ0
  (``prior_convention = "published"``; an NN prior's σ0 is its own, exact);
* N-PPAC's own hand protocol (reward 0/1, 100-step pen episodes, the time limit a terminal);
* the warm-up collected by the initialized policy;
* the per-task α, GP kernel, actor head and widths, batch size and initialization epochs of
  the table below. Hopper and hammer-binary have no published setting: they take their
  family's (halfcheetah's, resp. relocate's, as DESIGN.md §3 says).

For the other algorithms the preset pins the protocol of their own published code (AWAC's hand protocol for ``awac``,
``bc`` and ``sac-bc``; SAC's uniform warm-up), whose other defaults are already those configurations
(docs/baselines.md). The preset cannot name the published pen GP checkpoint, which nppac does not ship: set
``prior_gpytorch`` to use it.
"""

from __future__ import annotations

from typing import Any

from nppac.errors import NppacError

PRESETS: tuple[str, ...] = ("published",)
"""The named presets."""

_LOCOMOTION = {"actor": "tanh_gaussian", "actor_hidden": (256, 256), "batch_size": 256}
_HAND = {"actor": "gaussian_tanh_mean", "actor_hidden": (256, 256, 256, 256), "batch_size": 1024}
PUBLISHED: dict[str, dict[str, Any]] = {
    "halfcheetah": {"alpha": 0.1, "prior_kernel": "rbf", "init_epochs": 400, **_LOCOMOTION},
    "ant": {"alpha": 0.1, "prior_kernel": "rbf", "init_epochs": 400, **_LOCOMOTION},
    "walker2d": {"alpha": 0.2, "prior_kernel": "rbf", "init_epochs": 400, **_LOCOMOTION},
    "door-binary": {"alpha": 0.5, "prior_kernel": "matern12", "init_epochs": 400, **_HAND},
    "pen-binary": {"alpha": 0.1, "prior_kernel": "matern52", "init_epochs": 550, **_HAND},
    "relocate-binary": {"alpha": 0.5, "prior_kernel": "matern12", "init_epochs": 400, **_HAND},
}
"""The published per-task settings of N-PPAC (DESIGN.md §3; relocate's α was not published: 0.5)."""
FAMILY_FALLBACK = {"locomotion": "halfcheetah", "hand": "relocate-binary"}
"""Whose published settings a task without its own takes (hopper, hammer-binary)."""


def preset_settings(name: str, task: str, family: str, algo: str, uses_prior: bool) -> dict[str, Any]:
    """The settings preset ``name`` gives a run of ``algo`` on ``task`` (of ``family``), as TrainConfig fields."""
    if name not in PRESETS:
        raise NppacError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    hand = family == "hand"
    if not uses_prior:
        protocol = {"hand_protocol": "awac"} if hand and algo != "sac" else {}
        return {**protocol, **({"warmup": "uniform"} if algo in ("sac", "sac-bc") else {})}
    if task in PUBLISHED:
        table = PUBLISHED[task]
    elif family in FAMILY_FALLBACK:
        table = PUBLISHED[FAMILY_FALLBACK[family]]
    else:
        raise NppacError(f"preset {name!r} has no settings for task {task!r}: the published code ran "
                         f"{', '.join(PUBLISHED)}; set the task's settings yourself")
    return {**table, "prior_convention": "published", "warmup": "policy",
            **({"hand_protocol": "nppac"} if hand else {})}
