"""The one online training loop shared by every algorithm, its configuration and checkpoints."""

from nppac.training.config import TrainConfig
from nppac.training.logger import PROGRESS_COLUMNS
from nppac.training.loop import EpochMetrics, evaluate, make_env, make_gradient_step, train

__all__ = ["PROGRESS_COLUMNS", "EpochMetrics", "TrainConfig", "evaluate", "make_env", "make_gradient_step", "train"]
