"""Training settings, with the checks that turn degenerate settings into clear errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from nnsee.errors import TrainingError, not_one_of

OPTIMIZERS = ("sgd", "adam", "lbfgs")
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "lbfgs": 1.0}
STANDARDIZE_MODES = ("image", "pixel", "none")


@dataclass
class TrainConfig:
    """How to train.

    ``l2`` is λ in ``objective = mean_i(−log p(y_i | x_i)) + (λ/2) Σ_layers ‖W‖²`` (weights only, no biases).
    For ``lbfgs`` one epoch is one full-batch L-BFGS step of ``lbfgs_iterations`` iterations.
    ``patience`` > 0 stops when the validation loss has not improved for that many epochs and keeps the best
    weights; 0 trains every epoch. ``snapshots`` lists the epochs whose weights are kept (0 = before training).
    """

    optimizer: str = "adam"
    lr: float | None = None
    epochs: int = 10
    batch_size: int = 128
    l2: float = 0.0
    momentum: float = 0.9
    seed: int = 0
    patience: int = 0
    snapshots: list[int] = field(default_factory=list)
    standardize: str = "image"
    lbfgs_iterations: int = 20
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise TrainingError(not_one_of("the optimizer", self.optimizer, OPTIMIZERS))
        if self.standardize not in STANDARDIZE_MODES:
            raise TrainingError(not_one_of("the standardization", self.standardize, STANDARDIZE_MODES))
        if self.lr is None:
            self.lr = DEFAULT_LR[self.optimizer]
        checks = [
            (self.epochs >= 0, f"epochs must be 0 or more, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be at least 1, got {self.batch_size}"),
            (self.lr > 0, f"learning rate must be positive, got {self.lr}"),
            (self.l2 >= 0, f"the L2 penalty must be 0 or more, got {self.l2}"),
            (0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}"),
            (self.patience >= 0, f"patience must be 0 (off) or more, got {self.patience}"),
            (self.lbfgs_iterations >= 1, f"lbfgs iterations must be at least 1, got {self.lbfgs_iterations}"),
            (all(s >= 0 for s in self.snapshots), f"snapshot epochs must be 0 or more, got {self.snapshots}"),
        ]
        for ok, message in checks:
            if not ok:
                raise TrainingError(message)
        self.snapshots = sorted({int(s) for s in self.snapshots})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)
