"""``fit``: train any ``torch.nn.Module`` on a :class:`Splits`, writing a run folder every epoch or at the end.

One epoch, top to bottom: shuffle the training set into a reused buffer with a seeded generator, take
mini-batch steps on ``cross_entropy + (λ/2) Σ‖W‖²`` (or one full-batch L-BFGS step), stop if the loss is not
finite, score the validation split, write the run atomically (``save="every-epoch"``), keep a snapshot if asked,
maybe stop early.
"""

from __future__ import annotations

import copy
import math
import re
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
from nnsee.distributed import Dist, all_sum, gather_to_main, is_dist_failure
from nnsee.errors import TrainingError, not_one_of
from nnsee.models.registry import model_spec
from nnsee.train.config import DEFAULT_LR, TrainConfig, check_device
from nnsee.train.evaluate import evaluate
from nnsee.train.objective import l2_penalty, objective
from nnsee.train.optimizers import make_optimizer
from nnsee.train.run import Run, out_folder_state, remove_run_files, save_run, save_snapshot
from nnsee.train.shards import steps, validation_sums

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
    dist: Dist | None = None,
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

    A streamed training set (``data.train.streamed``) is read batch by batch through
    :func:`nnsee.data.loader.batches` in the same seeded order (``config.workers`` decoding processes), giving the
    in-memory result. ``dist`` (from :func:`nnsee.distributed.setup`, under torchrun) trains with
    DistributedDataParallel: each rank takes its share of every global batch of ``config.batch_size``
    (:mod:`nnsee.train.shards`), so the updates are the one-process run's up to float rounding (BatchNorm layers
    normalize by each rank's share, not the global batch); losses, accuracies and validation are summed over the
    ranks; only rank 0 writes ``out``. L-BFGS is refused under torchrun (its full-batch steps are not split).
    """
    if out is not None:
        out_folder_state(out)  # a non-empty folder that is not a run: RunError, nothing touched
    if save not in SAVE_POLICIES:
        raise TrainingError(not_one_of("the save policy", save, SAVE_POLICIES))
    config = config or TrainConfig()
    standardizer = Standardizer(config.standardize).fit(data.train.images)
    torch.manual_seed(config.seed)
    trainer = _Trainer(model, data, config, standardizer, out, progress, resumable=save == "every-epoch", dist=dist)
    trainer.replace = replace and out is not None
    return trainer.train(until=config.epochs)


def resume(run_dir: str | Path, epochs: int | None = None, *, data: Splits | None = None,
           model: nn.Module | None = None, progress: bool | None = None,
           allow_changed_data: bool = False, device: str | None = None, dist: Dist | None = None,
           workers: int | None = None) -> FitResult:
    """Continue a run folder exactly where its last complete epoch left it.

    ``epochs=None`` trains up to the run's configured number of epochs; ``epochs=N`` trains N more. The
    result is bitwise what an uninterrupted run would have given. When the run's data set has changed since
    (its per-split counts differ), resuming is refused unless ``allow_changed_data`` (then it warns). ``device``
    (``auto``, ``cpu``, ``cuda[:N]``, ``mps``) replaces the device run.json records; ``None`` keeps that one.
    ``dist``: continue under torchrun, as :func:`fit` trains (every rank reads the run; rank 0 writes it).
    ``workers`` replaces the recorded number of decoding processes (``None`` keeps it).
    """
    from nnsee.data.spec import load_splits
    from nnsee.train.run import load_run

    run = load_run(run_dir, model=model)
    state = run.state()
    config = TrainConfig.from_dict(run.config, device=device)
    if workers is not None:
        config = TrainConfig.from_dict({**config.to_dict(), "workers": workers})
    if data is None:
        data = load_splits(run.data_spec, changed="warn" if allow_changed_data else "refuse")
    _check_same_data(run, data)
    trainer = _Trainer(run.model, data, config, run.standardizer, run_dir, progress, history=run.history, dist=dist)
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
                 resumable: bool = True, dist: Dist | None = None) -> None:
        if len(data.train) == 0:
            raise TrainingError("the training split is empty; give more images or a smaller --val/--test fraction")
        if data.train.n_classes < 2:
            raise TrainingError(f"training needs at least 2 classes, the data has {data.train.n_classes}")
        if dist is not None and config.optimizer == "lbfgs":
            raise TrainingError("L-BFGS takes full-batch steps, which are not split over torchrun's processes: train "
                                "it in one process (without torchrun), or use --optimizer adam or sgd")
        if dist is not None and min(config.batch_size, len(data.train)) < dist.world_size:
            raise TrainingError(f"the batch size {min(config.batch_size, len(data.train))} is smaller than the "
                                f"{dist.world_size} processes: each needs at least one image per step; use "
                                f"--batch-size {dist.world_size} or more, or fewer processes")
        if getattr(data.train, "streamed", False) and config.optimizer == "lbfgs":
            raise TrainingError("L-BFGS takes full-batch steps over the whole training set in memory, but this set is "
                                "streamed from disk (--stream, or it does not fit --max-memory): use --optimizer adam "
                                "or sgd, or --no-stream with a larger --max-memory")
        self.dist = dist
        self.device = dist.device if dist is not None else _device(config.device)
        self.model = model.to(self.device)
        self.data, self.config, self.standardizer = data, config, standardizer
        self.out = Path(out) if out is not None else None
        self.writes = self.out is not None and (dist is None or dist.is_main)  # only rank 0 writes the run
        self.resumable = resumable  # the run folder is written every epoch with its resume state, else at the end
        self.progress = progress if dist is None or dist.is_main else False
        self.streamed = bool(getattr(data.train, "streamed", False))
        self.n = len(data.train)
        self.warned_skipped: dict[str, set[int]] = {"training": set(), "validation": set()}
        self.history: dict[str, list[float]] = {k: list((history or {}).get(k, [])) for k in HISTORY_KEYS}
        self.epoch = 0
        self.best: tuple[float, dict[str, torch.Tensor]] | None = None
        self.bad_epochs = 0
        self.status = "completed"
        self.warned_chance = False
        self.replace = False  # the old run in self.out is deleted right before the first write

        # In memory: the standardized training set on the device, gathered batch by batch. Streamed: nothing here;
        # every epoch reads its batches from disk (nnsee.train.shards).
        self.x = None if self.streamed else torch.from_numpy(standardizer.transform(data.train.images)).to(self.device)
        self.y = torch.from_numpy(data.train.labels).to(self.device)
        self.val_streamed = bool(getattr(data.val, "streamed", False))
        self.x_val = None if self.val_streamed else torch.from_numpy(standardizer.transform(data.val.images)).to(
            self.device)
        self.y_val = torch.from_numpy(data.val.labels).to(self.device)
        self.batch_size = min(config.batch_size, self.n)
        if config.batch_size > self.n and config.optimizer != "lbfgs":
            warnings.warn(
                f"batch size {config.batch_size} is larger than the {self.n} training images; "
                f"using {self.n} (full batch)",
                stacklevel=3,
            )
        if (config.standardize == "none" and self.x is not None and data.train.images.size
                and float(data.train.images.max()) > 1.5):
            warnings.warn(
                f"the training images look unscaled (max pixel {float(data.train.images.max()):g} > 1.5): "
                "scale them to 0..1 or use --standardize image",
                stacklevel=3,
            )
        self.optimizer = make_optimizer(self.model, config)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.net: nn.Module = self.model
        if dist is not None:  # the same weights on every rank (DDP broadcasts rank 0's), gradients averaged
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(self.model, device_ids=[dist.local_rank] if self.device.type == "cuda"
                                               else None)
        if self.x is None or dist is not None:
            return
        # Reused every step: one batch of images, gathered straight from the training set in the epoch's shuffled
        # order (fresh allocations are 7x slower here, and a batch-sized buffer stays in cache for the step's
        # products). Reused every epoch: the labels in that order, and each image's predicted class, compared
        # with its label once at the epoch's end.
        self.x_batch = torch.empty((self.batch_size, *self.x.shape[1:]), dtype=self.x.dtype, device=self.device)
        self.y_shuffled = torch.empty_like(self.y)
        self.predicted = torch.empty(len(self.x), dtype=torch.int64, device=self.device)

    # -- the loop -------------------------------------------------------------------------------------------
    def train(self, until: int) -> FitResult:
        if self.writes and self.epoch == 0:
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
                    if not (math.isfinite(train_loss) and _all_finite(self.model)):
                        self.load_state(last_good)
                        raise TrainingError(self.divergence_message(train_loss))
                    self.epoch += 1
                    val_loss, val_accuracy = self.validate()
                except KeyboardInterrupt:
                    self.load_state(last_good)
                    raise
                except Exception as exc:
                    if self.dist is None or not is_dist_failure(exc):
                        raise
                    self.load_state(last_good)
                    raise TrainingError(self.peer_failure_message(exc)) from None
                self.record(train_loss, train_accuracy, val_loss, val_accuracy, time.perf_counter() - started)
                # Under torchrun val_loss is one all-reduced sum, the same bytes on every rank (ring all-reduce
                # hands each rank the same reduced chunks), so every rank takes the same decision.
                stop = self.early_stopping(val_loss)
                with _sigint_deferred():
                    if self.writes and self.resumable:
                        self.checkpoint()
                    if self.writes and self.epoch in self.config.snapshots:
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
            if self.dist is None or self.dist.is_main:
                print(f"interrupted during epoch {self.epoch + 1}{where}", file=sys.stderr)
        finally:
            bar.close()
        return self.finish()

    def train_one_epoch(self) -> tuple[float, float]:
        self.model.train()
        if self.config.optimizer == "lbfgs":
            return self.lbfgs_step()
        if self.x is None or self.dist is not None:
            return self.train_one_epoch_in_shares()
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

    def train_one_epoch_in_shares(self) -> tuple[float, float]:
        """One epoch of this rank's shares of the global batches (streamed, or under torchrun): the same seeded
        order and updates as :meth:`train_one_epoch` (:mod:`nnsee.train.shards`); loss and accuracy summed over
        the ranks."""
        order = torch.randperm(self.n, generator=self.generator).numpy()
        world = self.dist.world_size if self.dist is not None else 1
        cuda = self.device.type == "cuda"
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        step = getattr(self.optimizer, "unlabelled_step", self.optimizer.step)
        losses: list[torch.Tensor] = []
        correct: list[torch.Tensor] = []
        count, skipped = 0, []
        for share in steps(self.data.train, order, self.batch_size, self.dist, transform=self.standardizer.transform,
                           workers=self.config.workers, pin_memory=cuda, images=self.x,
                           labels=None if self.x is None else self.y):
            xb = share.images.to(self.device, non_blocking=cuda)
            yb = share.labels.to(self.device, non_blocking=cuda)
            skipped += share.skipped
            logits = self.net(xb)
            total = F.cross_entropy(logits, yb, reduction="sum")
            # One process: the batch mean (what the in-memory loop takes). Several: (W / L_t) x this rank's sum,
            # which DDP's average over ranks turns into the global batch's mean gradient.
            loss = total / max(1, len(yb)) if self.dist is None else total * (world / share.planned)
            losses.append(total.detach())
            correct.append((logits.detach().argmax(1) == yb).sum())
            count += len(yb)
            for p in params:
                p.grad = None
            loss.backward()
            step()
        self.warn_skipped(skipped, "training", self.epoch + 1)
        sums = [torch.stack(losses).double().sum().item(), torch.stack(correct).sum().item(), count]
        if self.dist is not None:
            sums = all_sum(self.dist, sums)
        if sums[2] == 0:
            raise TrainingError("no training image could be read in this epoch (every file failed to decode): check "
                                "the data folder")
        return sums[0] / sums[2], sums[1] / sums[2]

    def warn_skipped(self, skipped: list[tuple[int, str, str]], split: str, epoch: int) -> None:
        """One warning (on rank 0) naming the ``split`` images that could not be read, each the first time."""
        if self.dist is not None:
            ranks = gather_to_main(self.dist, skipped)
            skipped = [s for part in ranks for s in part] if ranks is not None else []
        seen = self.warned_skipped[split]
        new = sorted({s for s in skipped if s[0] not in seen})
        if not new:
            return
        seen.update(s[0] for s in new)
        from nnsee.errors import first_few

        warnings.warn(f"{len(new)} {split} image(s) could not be read and were skipped in epoch {epoch}: "
                      + first_few((f"{path} ({reason})" for _, path, reason in new), quote=False), stacklevel=2)

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
        if len(self.data.val) == 0:
            return float("nan"), float("nan")
        if self.x_val is None or self.dist is not None:
            return self.validate_in_shares()
        self.model.eval()
        logits = torch.cat([self.model(self.x_val[i : i + 4096]) for i in range(0, len(self.x_val), 4096)])
        return F.cross_entropy(logits, self.y_val).item(), (logits.argmax(1) == self.y_val).float().mean().item()

    @torch.no_grad()
    def validate_in_shares(self) -> tuple[float, float]:
        """Validation loss (mean cross-entropy) and accuracy from sums over this rank's block of the validation set
        (:func:`~nnsee.train.shards.validation_sums`), summed over the ranks."""
        self.model.eval()
        skipped: list[tuple[int, str, str]] = []
        sums = validation_sums(self.model, self.data.val, self.dist, self.x_val, self.y_val,
                               transform=self.standardizer.transform, workers=self.config.workers, skipped=skipped)
        self.warn_skipped(skipped, "validation", self.epoch)  # the epoch just trained
        if self.dist is not None:
            sums = all_sum(self.dist, sums)
        return (sums[0] / sums[2], sums[1] / sums[2]) if sums[2] else (float("nan"), float("nan"))

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
        per_epoch = 1 if self.config.optimizer == "lbfgs" else math.ceil(self.n / self.batch_size)
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

    def peer_failure_message(self, exc: BaseException) -> str:
        """Another rank stopped (torchrun's process group failed): what happened and where the run stands."""
        held = (f"; {self.out} holds epoch {self.epoch}: continue with `nnsee resume {self.out}` (under torchrun "
                "or not)" if self.out is not None and self.resumable else "")
        first = re.sub(r"^\[[^\]]*\]\s*", "", (str(exc).strip().splitlines() or [type(exc).__name__])[0])[:160]
        return (f"training stopped in epoch {self.epoch + 1} on rank {self.dist.rank if self.dist else 0}: another "
                f"process of the job stopped or did not answer ({first}){held}")

    def divergence_message(self, loss: float) -> str:
        x = self.x
        inputs = "" if x is None else (
            f"Inputs after '{self.config.standardize}' standardization have mean "
            f"{x.mean().item():.3g}, std {x.std().item():.3g}, max |x| {x.abs().max().item():.3g}. ")
        return (
            f"training stopped in epoch {self.epoch + 1}: "
            + (f"the loss became {loss} " if not math.isfinite(loss) else "the weights became ")
            + "NaN or infinite (not finite). "
            + f"The learning rate {self.config.lr:g} is probably too large for {self.config.optimizer}: try "
            f"{min(self.config.lr / 10, DEFAULT_LR[self.config.optimizer]):g}"
            + (f" (or a smaller --l2 than {self.config.l2:g})" if self.config.l2 > 0 else "")
            + ". " + inputs
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
        metrics: dict[str, Any] = {}
        # The other ranks neither report nor write. Interrupted under torchrun or on streamed sets, nothing is scored:
        # a pass over a large set would hold up the stop (torchrun kills ranks 30 s after its SIGTERM).
        slow = self.dist is not None or self.streamed or self.val_streamed
        if (self.dist is None or self.dist.is_main) and not (self.status == "interrupted" and slow):
            metrics = {
                "val": evaluate(self.model, self.data.val, self.standardizer, workers=self.config.workers),
                "test": evaluate(self.model, self.data.test, self.standardizer, workers=self.config.workers),
            }
        if self.writes and self.status != "interrupted":
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
    """Hold Ctrl-C (and SIGTERM, torchrun's stop, where it is made an interrupt) while a checkpoint is written,
    then raise it: a run is never half saved by an interrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    held = [signal.SIGINT]
    if callable(signal.getsignal(signal.SIGTERM)):  # a Python handler (nnsee.distributed's): hold it too
        held.append(signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum)) for sig in held}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        raise KeyboardInterrupt


