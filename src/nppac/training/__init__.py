"""The one online training loop shared by every algorithm, its configuration and checkpoints."""

from nppac.training.config import TrainConfig
from nppac.training.envs import evaluate, make_env
from nppac.training.logger import LEADING_COLUMNS, progress_columns
from nppac.training.loop import EpochMetrics, make_gradient_step, train

__all__ = ["LEADING_COLUMNS", "progress_columns", "EpochMetrics", "TrainConfig", "evaluate", "make_env",
           "make_gradient_step", "train"]
