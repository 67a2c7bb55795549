"""Training: ``fit`` any model on a Splits, ``resume`` a run, ``evaluate``; run folders in safetensors + JSON."""

from nnsee.train.config import TrainConfig
from nnsee.train.evaluate import evaluate, predict_logits
from nnsee.train.fit import FitResult, fit, resume
from nnsee.train.objective import l2_penalty, objective
from nnsee.train.run import Run, load_run, save_run

__all__ = [
    "FitResult",
    "Run",
    "TrainConfig",
    "evaluate",
    "fit",
    "l2_penalty",
    "load_run",
    "objective",
    "predict_logits",
    "resume",
    "save_run",
]
