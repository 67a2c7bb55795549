"""Training settings, with the checks that turn degenerate settings into clear errors.

Every setting is checked here, once, before any data is loaded or any file is touched (``nnsee train`` builds its
:class:`TrainConfig` first; ``resume`` rebuilds it from run.json): numbers must be finite and in range, counts
whole numbers, the device one this machine has. A learning rate is finite (its divergence advice, a tenth of it,
is then finite too), and λ is at most :data:`MAX_L2`, so a run that diverges is fixed by a smaller learning rate, as
that advice says (SGD's weight decay diverges only when lr·λ > 2).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from numbers import Integral, Real
from typing import Any

from nnsee.errors import TrainingError, not_one_of

OPTIMIZERS = ("sgd", "adam", "lbfgs")
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "lbfgs": 1.0}
STANDARDIZE_MODES = ("image", "pixel", "none")
#: Seeds are 0 .. 2^32 − 1 (NumPy's and torch's generators both take them; the CLI's --seed has the same range).
SEED_MAX = 2**32 - 1
#: Largest L2 λ: the penalty (λ/2)·Σ‖W‖² then outweighs any cross-entropy (ln K at chance) by orders of magnitude.
MAX_L2 = 10.0
#: Largest number of epochs (and epoch numbers in patience and snapshots); the CLI's --epochs has the same bound.
MAX_EPOCHS = 1_000_000
MAX_BATCH_SIZE = 2**31 - 1
MAX_LBFGS_ITERATIONS = 100_000
#: Most DataLoader worker processes decoding a streamed set's batches (``--workers``).
MAX_WORKERS = 256
#: The devices a run can train on: cpu, cuda or cuda:N (when CUDA is available), mps (when available).
DEVICE_KINDS = ("cpu", "cuda", "mps")
#: ``--device auto``: the first CUDA GPU when CUDA is available, else the CPU (never mps, see :func:`resolve_device`).
AUTO = "auto"


def resolve_device(name: object = AUTO) -> str:
    """The device ``name`` means on this machine: ``auto`` is ``cuda:0`` when CUDA is available, else ``cpu``;
    any other name is :func:`check_device`'s (a ``torch.device`` is read as its string).

    ``auto`` never picks ``mps``: Apple's backend has no float64 (the CPU references, the float64 sums of the
    methods) and lacks some operators, so it is used only when asked for by name, and passed through to torch.
    """
    import torch

    if name == AUTO:
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    return check_device(str(name) if isinstance(name, torch.device) else name)


def check_device(name: object) -> str:
    """``name`` if this machine can train on it, else a TrainingError saying which devices it has.

    Accepted: ``cpu``; ``cuda`` or ``cuda:N`` with N < the number of GPUs, when CUDA is available; ``mps`` when
    available. Anything else (``meta``, which holds no data; ``CPU``; ``cpu:3``; an empty string) is refused.
    """
    import torch

    have = ["cpu"]
    if torch.cuda.is_available():
        have += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        have.append("mps")
    if name in have:
        return name  # type: ignore[return-value]
    kind = str(name).partition(":")[0]
    if kind == "cuda" and "cuda" not in have:
        raise TrainingError(f"--device {_shown(name)} was asked for but CUDA is not available here; use --device cpu "
                            "(or auto: CUDA when present, else the CPU)")
    if kind in DEVICE_KINDS and kind in have:
        raise TrainingError(f"--device {_shown(name)} is not on this machine: use one of {', '.join([AUTO, *have])}")
    raise TrainingError(f"unknown device {_shown(name)}: use one of {', '.join([AUTO, *have])}")


def _shown(value: object) -> str:
    """``repr(value)``, cut to 60 characters (a run.json field may be megabytes long)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _whole(name: str, value: object, low: int, high: int, hint: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, Integral) or not low <= value <= high:
        raise TrainingError(f"{name} must be a whole number from {low:,} to {high:,}, got {_shown(value)}{hint}")


def _number(name: str, value: object, low: float, high: float = math.inf, *, open_low: bool = False,
            open_high: bool = False, hint: str = "") -> None:
    ok = not isinstance(value, bool) and isinstance(value, Real) and math.isfinite(value)
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (low < v if open_low else low <= v) and (v < high if open_high else v <= high)
    if not ok:
        interval = f"{'>' if open_low else '≥'} {low:g}" if math.isinf(high) else \
            f"in {'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        raise TrainingError(f"{name} must be a finite number {interval}, got {_shown(value)}{hint}")


@dataclass
class TrainConfig:
    """How to train.

    ``l2`` is λ in ``objective = mean_i(−log p(y_i | x_i)) + (λ/2) Σ_layers ‖W‖²`` (weights only, no biases).
    For ``lbfgs`` one epoch is one full-batch L-BFGS step of ``lbfgs_iterations`` iterations.
    ``patience`` > 0 stops when the validation loss has not improved for that many epochs and keeps the best
    weights; 0 trains every epoch. ``snapshots`` lists the epochs whose weights are kept (0 = before training).
    Ranges: lr finite and positive, l2 in [0, 10], momentum in [0, 1), seed 0 .. 2^32 − 1, epochs, patience and snapshot
    epochs 0 .. 10^6; ``workers`` processes (0 .. 256) decode a streamed set's batches; the device must exist
    here (:func:`resolve_device`: ``auto`` is recorded as the device it
    picked).
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
    workers: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise TrainingError(not_one_of("the optimizer", self.optimizer, OPTIMIZERS))
        if self.standardize not in STANDARDIZE_MODES:
            raise TrainingError(not_one_of("the standardization", self.standardize, STANDARDIZE_MODES))
        if self.lr is None:
            self.lr = DEFAULT_LR[self.optimizer]
        defaults = ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items())
        _number("the learning rate (--lr)", self.lr, 0, open_low=True, hint=f"; the defaults: {defaults}")
        _number("the L2 penalty λ (--l2)", self.l2, 0, MAX_L2, hint="; 0 turns it off, typical values 1e-5 .. 0.3")
        _number("momentum", self.momentum, 0, 1, open_high=True)
        _whole("epochs (--epochs)", self.epochs, 0, MAX_EPOCHS)
        _whole("the batch size (--batch-size)", self.batch_size, 1, MAX_BATCH_SIZE)
        _whole("the seed (--seed)", self.seed, 0, SEED_MAX)
        _whole("patience (--patience)", self.patience, 0, MAX_EPOCHS, hint="; 0 turns early stopping off")
        _whole("lbfgs iterations", self.lbfgs_iterations, 1, MAX_LBFGS_ITERATIONS)
        _whole("workers (--workers)", self.workers, 0, MAX_WORKERS, hint="; 0 decodes in the training process")
        if not isinstance(self.snapshots, list | tuple):
            raise TrainingError(f"snapshot epochs must be a list of whole numbers, got {_shown(self.snapshots)}")
        for s in self.snapshots:
            _whole("snapshot epochs (--snapshots)", s, 0, MAX_EPOCHS)
        self.device = resolve_device(self.device)
        self.snapshots = sorted({int(s) for s in self.snapshots})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], device: str | None = None) -> TrainConfig:
        """The settings of ``values`` (run.json's ``config``); ``device``, when given, replaces the recorded one
        (a run recorded on ``cuda:3`` resumes on this machine's ``--device``)."""
        if not isinstance(values, dict):
            raise TrainingError(f"the training settings must be a JSON object, got {type(values).__name__}")
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        if device is not None:
            known["device"] = device
        return cls(**known)
