"""``fit``: train any ``torch.nn.Module`` on a :class:`Splits`, writing a run folder every epoch or at the end.

One epoch, top to bottom: shuffle the training set into a reused buffer with a seeded generator, take
mini-batch steps on ``cross_entropy + (λ/2) Σ‖W‖²`` (or one full-batch L-BFGS step), stop if the loss is not
finite, score the validation split, write the run atomically (``save="every-epoch"``), keep a snapshot if asked,
maybe stop early.
"""

from __future__ import annotations

import copy
import math
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from nnsee.data.imageset import Splits
from nnsee.data.standardize import Standardizer
from nnsee.errors import TrainingError, not_one_of
from nnsee.models.registry import model_spec
from nnsee.train.config import DEFAULT_LR, TrainConfig, check_device
from nnsee.train.evaluate import evaluate
from nnsee.train.objective import l2_penalty, objective
from nnsee.train.optimizers import make_optimizer
from nnsee.train.run import Run, out_folder_state, remove_run_files, save_run, save_snapshot

HISTORY_KEYS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "l2_penalty", "seconds")
SAVE_POLICIES = ("every-epoch", "end")


@dataclass
class FitResult:
    """What training left: the model (best weights if stopped early), its history, and final scores.

    ``status`` is ``completed``, ``early-stopped`` or ``interrupted`` (the run folder then holds the last
    complete epoch; ``nnsee resume`` continues it).
    """

    model: nn.Module
    history: dict[str, list[float]]
    standardizer: Standardizer
    metrics: dict[str, Any] = field(default_factory=dict)
    status: str = "completed"
    epoch: int = 0
    out: Path | None = None


def fit(
    model: nn.Module,
    data: Splits,
    config: TrainConfig | None = None,
    out: str | Path | None = None,
    *,
    save: str = "every-epoch",
    progress: bool | None = None,
    replace: bool = False,
) -> FitResult:
    """Train ``model`` on ``data.train``, validating on ``data.val`` every epoch; write the run to ``out``.

    ``save="every-epoch"`` writes the run with its resume state after every epoch (Ctrl-C or a crash leaves the
    last complete epoch, which ``resume`` continues); ``save="end"`` writes it once, when training ends, without
    resume state (for runs never resumed: L-BFGS's history alone is ~41 MB for a 300-unit MLP on 28x28 images).
    Snapshots are written at their epochs either way. Seed the model's initialisation yourself
    (``torch.manual_seed``) before building it: with the same seed, data and machine, the weights come out bitwise
    the same. ``progress=None`` shows a bar only on a terminal. ``replace=True`` deletes the run already in ``out``
    (only the files nnsee wrote: :func:`~nnsee.train.run.remove_run_files`) right before the first write, once
    everything has been checked and training is set up; until then the old run is intact. An ``out`` that holds
    anything but an nnsee run (a folder of the user's) is refused before anything else, as ``nnsee train`` does.
    """
    if out is not None:
        out_folder_state(out)  # a non-empty folder that is not a run: RunError, nothing touched
    if save not in SAVE_POLICIES:
        raise TrainingError(not_one_of("the save policy", save, SAVE_POLICIES))
    config = config or TrainConfig()
    standardizer = Standardizer(config.standardize).fit(data.train.images)
    torch.manual_seed(config.seed)
    trainer = _Trainer(model, data, config, standardizer, out, progress, resumable=save == "every-epoch")
    trainer.replace = replace and out is not None
    return trainer.train(until=config.epochs)


def resume(run_dir: str | Path, epochs: int | None = None, *, data: Splits | None = None,
           model: nn.Module | None = None, progress: bool | None = None,
           allow_changed_data: bool = False, device: str | None = None) -> FitResult:
    """Continue a run folder exactly where its last complete epoch left it.

    ``epochs=None`` trains up to the run's configured number of epochs; ``epochs=N`` trains N more. The
    result is bitwise what an uninterrupted run would have given. When the run's data set has changed since
    (its per-split counts differ), resuming is refused unless ``allow_changed_data`` (then it warns). ``device``
    (``auto``, ``cpu``, ``cuda[:N]``, ``mps``) replaces the device run.json records; ``None`` keeps that one.
    """
    from nnsee.data.spec import load_splits
    from nnsee.train.run import load_run

    run = load_run(run_dir, model=model)
    state = run.state()
    config = TrainConfig.from_dict(run.config, device=device)
    if data is None:
        data = load_splits(run.data_spec, changed="warn" if allow_changed_data else "refuse")
    _check_same_data(run, data)
    trainer = _Trainer(run.model, data, config, run.standardizer, run_dir, progress, history=run.history)
    trainer.load_state(state)
    until = trainer.epoch + epochs if epochs is not None else max(config.epochs, trainer.epoch)
    if epochs is not None:
        trainer.config.epochs = until
    return trainer.train(until=until)


def _check_same_data(run: Run, data: Splits) -> None:
    if list(data.class_names) != list(run.class_names):
        raise TrainingError(
            f"cannot resume {run.path}: it was trained on classes {run.class_names}, the data has {data.class_names}"
        )
    if tuple(data.shape) != tuple(run.input_shape):
        raise TrainingError(
            f"cannot resume {run.path}: it was trained on images of shape {tuple(run.input_shape)}, "
            f"the data has {tuple(data.shape)}; pass the same --size/--grayscale as for training"
        )


class _Trainer:
    def __init__(self, model: nn.Module, data: Splits, config: TrainConfig, standardizer: Standardizer,
                 out: str | Path | None, progress: bool | None, history: dict | None = None,
                 resumable: bool = True) -> None:
        if len(data.train) == 0:
            raise TrainingError("the training split is empty; give more images or a smaller --val/--test fraction")
        if data.train.n_classes < 2:
            raise TrainingError(f"training needs at least 2 classes, the data has {data.train.n_classes}")
        self.device = _device(config.device)
        self.model = model.to(self.device)
        self.data, self.config, self.standardizer = data, config, standardizer
        self.out = Path(out) if out is not None else None
        self.resumable = resumable  # the run folder is written every epoch with its resume state, else at the end
        self.progress = progress
        self.history: dict[str, list[float]] = {k: list((history or {}).get(k, [])) for k in HISTORY_KEYS}
        self.epoch = 0
        self.best: tuple[float, dict[str, torch.Tensor]] | None = None
        self.bad_epochs = 0
        self.status = "completed"
        self.warned_chance = False
        self.replace = False  # the old run in self.out is deleted right before the first write

        self.x = torch.from_numpy(standardizer.transform(data.train.images)).to(self.device)
        self.y = torch.from_numpy(data.train.labels).to(self.device)
        self.x_val = torch.from_numpy(standardizer.transform(data.val.images)).to(self.device)
        self.y_val = torch.from_numpy(data.val.labels).to(self.device)
        self.batch_size = min(config.batch_size, len(self.x))
        if config.batch_size > len(self.x) and config.optimizer != "lbfgs":
            warnings.warn(
                f"batch size {config.batch_size} is larger than the {len(self.x)} training images; "
                f"using {len(self.x)} (full batch)",
                stacklevel=3,
            )
        if config.standardize == "none" and data.train.images.size and float(data.train.images.max()) > 1.5:
            warnings.warn(
                f"the training images look unscaled (max pixel {float(data.train.images.max()):g} > 1.5): "
                "scale them to 0..1 or use --standardize image",
                stacklevel=3,
            )
        self.optimizer = make_optimizer(self.model, config)
        self.generator = torch.Generator().manual_seed(config.seed)
        # Reused every step: one batch of images, gathered straight from the training set in the epoch's shuffled
        # order (fresh allocations are 7x slower here, and a batch-sized buffer stays in cache for the step's
        # products). Reused every epoch: the labels in that order, and each image's predicted class, compared
        # with its label once at the epoch's end.
        self.x_batch = torch.empty((self.batch_size, *self.x.shape[1:]), dtype=self.x.dtype, device=self.device)
        self.y_shuffled = torch.empty_like(self.y)
        self.predicted = torch.empty(len(self.x), dtype=torch.int64, device=self.device)

    # -- the loop -------------------------------------------------------------------------------------------
    def train(self, until: int) -> FitResult:
        if self.out is not None and self.epoch == 0:
            with _sigint_deferred():  # with replace=True, the old run's removal and the new run's first save
                if self.resumable:
                    self.checkpoint()
                if 0 in self.config.snapshots:
                    self.snapshot()
        bar = tqdm(total=max(until - self.epoch, 0), unit="epoch", disable=_quiet(self.progress), leave=False)
        try:
            while self.epoch < until:
                last_good = self.state()
                started = time.perf_counter()
                try:
                    train_loss, train_accuracy = self.train_one_epoch()
                except KeyboardInterrupt:
                    self.load_state(last_good)
                    raise
                if not (math.isfinite(train_loss) and _all_finite(self.model)):
                    self.load_state(last_good)
                    raise TrainingError(self.divergence_message(train_loss))
                self.epoch += 1
                val_loss, val_accuracy = self.validate()
                self.record(train_loss, train_accuracy, val_loss, val_accuracy, time.perf_counter() - started)
                stop = self.early_stopping(val_loss)
                with _sigint_deferred():
                    if self.out is not None and self.resumable:
                        self.checkpoint()
                    if self.out is not None and self.epoch in self.config.snapshots:
                        self.snapshot()
                bar.update(1)
                bar.set_postfix(loss=f"{train_loss:.4f}", val_acc=f"{val_accuracy:.3f}")
                if stop:
                    self.status = "early-stopped"
                    break
        except KeyboardInterrupt:
            self.status = "interrupted"
            where = ""
            if self.out is not None and self.resumable:
                where = f"; {self.out} holds epoch {self.epoch}: continue with `nnsee resume {self.out}`"
            elif self.out is not None:
                where = f"; the run was not written to {self.out} (save='end' writes it when training ends)"
            print(f"interrupted during epoch {self.epoch + 1}{where}", file=sys.stderr)
        finally:
            bar.close()
        return self.finish()

    def train_one_epoch(self) -> tuple[float, float]:
        self.model.train()
        if self.config.optimizer == "lbfgs":
            return self.lbfgs_step()
        n, size = len(self.x), self.batch_size
        order = torch.randperm(n, generator=self.generator).to(self.device)
        model, predicted, y_shuffled = self.model, self.predicted, self.y_shuffled
        torch.index_select(self.y, 0, order, out=y_shuffled)
        # Per step only what the step needs: no host syncs (.item()), no extra kernels, no profiler labels. The
        # batch losses are kept as tensors and the predicted classes written into one buffer; both are summed
        # once, after the last step. Gradients are set to None, not zeroed: backward then hands each one over
        # instead of adding it to zeros (what optimizer.zero_grad() does, without its profiler label).
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        step = getattr(self.optimizer, "unlabelled_step", self.optimizer.step)
        losses: list[torch.Tensor] = []
        for start in range(0, n, size):
            rows = order[start : start + size]
            xb = torch.index_select(self.x, 0, rows, out=self.x_batch[: len(rows)])
            yb = y_shuffled[start : start + size]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            # Scored while the logits are still in cache (after the update they are not).
            losses.append(loss.detach())
            torch.argmax(logits, 1, out=predicted[start : start + len(rows)])
            for p in params:
                p.grad = None
            loss.backward()
            step()
        sizes = torch.full((len(losses),), float(size), dtype=torch.float64, device=self.device)
        sizes[-1] = n - size * (len(losses) - 1)
        total_loss = torch.dot(torch.stack(losses).to(torch.float64), sizes)
        return total_loss.item() / n, (predicted == y_shuffled).sum().item() / n

    def lbfgs_step(self) -> tuple[float, float]:
        def closure() -> torch.Tensor:
            self.optimizer.zero_grad()
            loss = objective(self.model, self.x, self.y, self.config.l2)
            loss.backward()
            return loss

        self.optimizer.step(closure)
        with torch.no_grad():
            logits = self.model(self.x)
            loss = F.cross_entropy(logits, self.y).item()
            accuracy = (logits.argmax(1) == self.y).float().mean().item()
        return loss, accuracy

    @torch.no_grad()
    def validate(self) -> tuple[float, float]:
        if len(self.x_val) == 0:
            return float("nan"), float("nan")
        self.model.eval()
        logits = torch.cat([self.model(self.x_val[i : i + 4096]) for i in range(0, len(self.x_val), 4096)])
        return F.cross_entropy(logits, self.y_val).item(), (logits.argmax(1) == self.y_val).float().mean().item()

    def record(self, train_loss: float, train_accuracy: float, val_loss: float, val_accuracy: float,
               seconds: float) -> None:
        with torch.no_grad():
            penalty = float(l2_penalty(self.model, self.config.l2))
        for key, value in zip(
            HISTORY_KEYS,
            (self.epoch, train_loss, train_accuracy, val_loss, val_accuracy, penalty, seconds),
            strict=True,
        ):
            self.history[key].append(value)
        # Judge "stuck" only once the optimizer has had a fair number of steps (3 epochs and 50 updates).
        chance = math.log(self.data.train.n_classes)
        per_epoch = 1 if self.config.optimizer == "lbfgs" else math.ceil(len(self.x) / self.batch_size)
        ready = self.epoch >= 3 and self.epoch * per_epoch >= 50
        if ready and not self.warned_chance and train_loss > 0.95 * chance:
            self.warned_chance = True
            warnings.warn(
                f"the training loss {train_loss:.3f} is no better than chance (ln {self.data.train.n_classes} = "
                f"{chance:.3f}) after {self.epoch} epochs: lower the learning rate (--lr, now {self.config.lr:g}) "
                "or standardize the inputs (--standardize image)",
                stacklevel=2,
            )

    def early_stopping(self, val_loss: float) -> bool:
        if self.config.patience == 0 or not math.isfinite(val_loss):
            return False
        if self.best is None or val_loss < self.best[0]:
            self.best = (val_loss, copy.deepcopy(self.model.state_dict()))
            self.bad_epochs = 0
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.config.patience

    def divergence_message(self, loss: float) -> str:
        x = self.x
        return (
            f"training stopped in epoch {self.epoch + 1}: "
            + (f"the loss became {loss} " if not math.isfinite(loss) else "the weights became ")
            + "NaN or infinite (not finite). "
            + f"The learning rate {self.config.lr:g} is probably too large for {self.config.optimizer}: try "
            f"{min(self.config.lr / 10, DEFAULT_LR[self.config.optimizer]):g}"
            + (f" (or a smaller --l2 than {self.config.l2:g})" if self.config.l2 > 0 else "")
            + f". Inputs after '{self.config.standardize}' standardization have mean "
            f"{x.mean().item():.3g}, std {x.std().item():.3g}, max |x| {x.abs().max().item():.3g}. "
            + (f"{self.out} keeps the last good epoch ({self.epoch})." if self.out and self.resumable else "")
        )

    # -- state ----------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything needed to continue bitwise: weights, optimizer, epoch, both random generators."""
        state: dict[str, Any] = {
            "epoch": self.epoch,
            "model": copy.deepcopy(self.model.state_dict()),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "torch_rng": torch.get_rng_state(),
            "shuffle_rng": self.generator.get_state(),
            "bad_epochs": self.bad_epochs,
        }
        if self.best is not None:
            state["best_val_loss"] = self.best[0]
            state["best_model"] = self.best[1]
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        self.generator.set_state(state["shuffle_rng"])
        self.bad_epochs = int(state.get("bad_epochs", 0))
        if "best_model" in state:
            self.best = (float(state["best_val_loss"]), state["best_model"])
        for key in HISTORY_KEYS:
            del self.history[key][self.epoch :]

    def meta(self, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "model": model_spec(self.model),
            "data": self.data.spec,
            "standardization": self.standardizer.to_dict(),
            "class_names": list(self.data.class_names),
            "input_shape": list(self.data.shape),
            "config": self.config.to_dict(),
            "history": self.history,
            "metrics": metrics or {},
            "epoch": self.epoch,
            "status": self.status if metrics is not None else "training",
        }

    def take_place(self) -> None:
        """Before the first write into ``self.out``: delete the run it replaces (``fit(replace=True)``)."""
        if self.replace:
            assert self.out is not None
            remove_run_files(self.out)
            self.replace = False

    def checkpoint(self, metrics: dict[str, Any] | None = None) -> None:
        assert self.out is not None
        self.take_place()
        save_run(self.out, self.model, self.meta(metrics), self.state() if self.resumable else None)

    def snapshot(self) -> None:
        assert self.out is not None
        self.take_place()
        save_snapshot(self.out, self.epoch, self.model, class_names=list(self.data.class_names))

    def finish(self) -> FitResult:
        if self.status == "early-stopped" and self.best is not None:
            self.model.load_state_dict(self.best[1])
        self.model.eval()
        metrics = {
            "val": evaluate(self.model, self.data.val, self.standardizer),
            "test": evaluate(self.model, self.data.test, self.standardizer),
        }
        if self.out is not None and self.status != "interrupted":
            with _sigint_deferred():
                self.checkpoint(metrics)
        return FitResult(self.model, self.history, self.standardizer, metrics, self.status, self.epoch, self.out)


def _device(name: str) -> torch.device:
    """The torch device of a checked device name (:func:`~nnsee.train.config.check_device`: one rule everywhere)."""
    return torch.device(check_device(name))


def _quiet(progress: bool | None) -> bool | None:
    return None if progress is None else not progress


def _all_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


@contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold Ctrl-C while a checkpoint is written, then raise it: a run is never half saved by an interrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


