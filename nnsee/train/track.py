"""``nnsee.track``: a run folder written from your own training loop (plain PyTorch, Lightning, ...), so the
learning curves, the evolution views and every other view work for a model nnsee did not train.

The folder is an adopted run (:func:`nnsee.adopt`: ``run.json``, ``model.safetensors``) of the model as it is when
``track`` is called: epoch 0, snapshotted if 0 is in ``snapshots``. Each ``tracker.epoch(e, ...)`` then writes, in
this order, each file atomically or as one appended line:

1. ``snapshots/epoch-EEEE.safetensors`` when ``e`` is in ``snapshots``;
2. ``model.safetensors``: the weights of epoch ``e``, so the run always shows the latest model;
3. one line of ``history.jsonl``: ``e``, the numbers given and the seconds since the previous call.

``run.json`` is written by ``track`` and by ``close`` only (there with the whole history; the log is then removed),
so a call costs one or two weights writes and one line, O(model), never O(epochs). Reading a run merges the log into
its history (:func:`nnsee.train.run.merge_history_log`): a process killed at any point leaves a run that loads, with
every epoch whose line was written, and ``track(..., resume=True)`` continues it from the loop's own checkpoint.
The history has the keys nnsee's own training writes (``epoch``, ``train_loss``, ``train_accuracy``, ``val_loss``,
``val_accuracy``, ``seconds``) plus any other numbers given; a line would never take the log past what a load reads.

Bad input is one line each: a folder holding files of the user's (never written into), an epoch not above the last,
a value that is not a number, weights whose names or shapes changed since epoch 0, non-finite weights (refused: the
run keeps the last good epoch). A non-finite loss or score is recorded as missing (null in the JSON, a gap in the
learning curves), said once.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import math
import operator
import os
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnsee.data.standardize import Standardizer
from nnsee.errors import RunError, TrainingError, first_few
from nnsee.train.checkpoint import all_finite, load_weights, save_weights
from nnsee.train.run import (
    HISTORY_LOG,
    MAX_HISTORY,
    WEIGHTS_FILE,
    Run,
    append_history,
    expected_weights,
    out_folder_state,
    read_meta,
    remove_run_files,
    save_run,
    snapshot_path,
)

#: Epochs snapshotted by default: 0 (before training), then 1-2-5 per decade up to 1,000 (11 snapshots).
DEFAULT_SNAPSHOTS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
#: The names :meth:`Tracker.epoch` takes for nnsee's history keys.
ALIASES = {"train_acc": "train_accuracy", "val_acc": "val_accuracy"}
#: Most distinct history keys a run takes (each one a list in run.json).
MAX_KEYS = 64
_NUMBER_TYPES = (int, float)


def track(model: nn.Module, *, out: str | os.PathLike[str], class_names: Sequence[str] | None = None,
          input_shape: Sequence[int] = (3, 224, 224), normalize: str | Standardizer = "imagenet",
          code: str | None = None, code_args: Mapping[str, Any] | None = None, output: int | str | None = None,
          data: str | None = None, snapshots: Iterable[int] = DEFAULT_SNAPSHOTS, replace: bool = False,
          resume: bool | int = False, resize: str = "square") -> Tracker:
    """Start tracking ``model`` into the run folder ``out`` (new or empty; an nnsee run only with ``replace=True``,
    which removes only nnsee's files); return the :class:`Tracker` whose ``epoch(...)`` the loop calls once an epoch.

    ``class_names``, ``input_shape``, ``normalize``, ``code``, ``code_args``, ``output``, ``data`` and ``resize`` are
    :func:`nnsee.adopt`'s: give ``code`` (``"package.module:factory"`` or ``"file.py:factory"``) so that ``nnsee
    report RUN`` can rebuild the model, and ``data`` (a data SPEC) for the report's data views. ``model`` itself is
    never changed (no mode switch, no hook): nnsee keeps an eval-mode float32 copy on the CPU.

    ``resume=True`` continues the tracked run in ``out`` after its last recorded epoch (a loop restarted from its
    own checkpoint); ``resume=E`` continues after epoch E, dropping the later epochs' history and snapshots (a
    checkpoint older than the run). The run keeps what it was started with (class names, input shape,
    normalization, code, data): those arguments are not used then.
    """
    if not isinstance(model, nn.Module):
        raise RunError(f"nnsee.track takes the torch nn.Module being trained, got a {type(model).__name__}")
    chosen = _snapshot_epochs(snapshots)
    out = Path(out)
    state = out_folder_state(out)  # a folder of the user's files is refused inside, with its reason
    if resume is not False:
        if state != "run":
            raise RunError(f"{out} holds no run to resume; start one with nnsee.track(..., out=...) without resume=")
        return _reopen(model, out, chosen, resume)
    if state == "run":
        if not replace:
            raise RunError(f"{out} already holds an nnsee run; pass replace=True to write over it (only the files "
                           "nnsee wrote are removed), resume=True to continue it, or choose another out=")
        remove_run_files(out)
    from nnsee.adoption import adopt

    run = adopt(_cpu_copy(model), class_names=class_names, input_shape=input_shape, normalize=normalize, out=out,
                code=code, code_args=code_args, output=output, data=data, copy_model=False, resize=resize)
    tracker = Tracker(model, run, chosen)
    if 0 in chosen:
        tracker.write_snapshot(0, tracker.weights(0))
    return tracker


def _cpu_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` on the CPU, its parameters and buffers copied straight there (handed to
    ``deepcopy`` in its memo): a model on a GPU is never duplicated on the GPU, tied weights stay tied, and the
    gradients are not copied."""
    memo: dict[int, Any] = {}
    for t in itertools.chain(model.parameters(), model.buffers()):
        if id(t) not in memo:
            data = t.detach().to("cpu", copy=True)
            memo[id(t)] = nn.Parameter(data, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else data
    try:
        return copy.deepcopy(model, memo).to("cpu").eval()
    except Exception as exc:  # a module holding something that cannot be copied
        raise RunError(f"nnsee.track could not copy the model ({type(exc).__name__}: {exc}); it keeps a CPU copy "
                       "to check the model once and rebuild the run's views") from None


def _reopen(model: nn.Module, out: Path, chosen: frozenset[int], resume: bool | int) -> Tracker:
    """A tracker continuing the run in ``out`` after ``resume`` (True: its last epoch)."""
    from nnsee.models.adopted import attach_output, is_adopted, prepare

    _drop_torn_line(out / HISTORY_LOG)
    meta = read_meta(out)
    if not is_adopted(meta.get("model")):
        raise RunError(f"{out} holds a run nnsee trained, not one tracked from your loop: continue it with nnsee "
                       "resume, or track into another folder")
    work = attach_output(prepare(_cpu_copy(model)), meta["model"].get("output"))
    shapes, _ = expected_weights(work)
    recorded = {k: tuple(v) for k, v in (meta.get("weight_shapes") or {}).items()}
    if shapes != recorded:
        changed = [k for k, _ in sorted(set(shapes.items()) ^ set(recorded.items()))]
        raise RunError(f"the model's weights differ from those of the run in {out} ({first_few(changed)}); resume "
                       "the model that run was tracking, or track this one into another folder")
    epochs = list((meta.get("history") or {}).get("epoch", []))
    last = epochs[-1] if epochs else 0
    if resume is not True:
        after = _whole(resume)
        if after is None:
            raise RunError(f"resume takes True or the epoch to continue after, got {resume!r}"[:200])
        if not 0 <= after <= last:
            raise RunError(f"resume={after}: {out} records epochs up to {last}; give an epoch from 0 to {last}")
        if after < last:
            _truncate(out, meta, after, work)
            meta = read_meta(out)
        last = after
    tracker = Tracker(model, Run(path=out, model=work, meta=meta), chosen)
    tracker.last_epoch = last
    return tracker


def _drop_torn_line(log: Path) -> None:
    """Cut a last line that lacks its newline (a write cut by a kill), so the next line starts on its own."""
    try:
        data = log.read_bytes() if log.is_file() and not log.is_symlink() else b""
    except OSError:
        return
    if data and not data.endswith(b"\n"):
        os.truncate(log, data.rfind(b"\n") + 1)


def _truncate(out: Path, meta: dict[str, Any], after: int, model: nn.Module) -> None:
    """Drop the epochs after ``after`` from the run: the history (run.json rewritten once, the log removed) and the
    snapshots; the weights become ``model``'s (the checkpoint the loop resumes from: epoch ``after``)."""
    from nnsee.train.run import list_snapshots

    history = meta.get("history") or {}
    keep = sum(1 for e in history.get("epoch", []) if e <= after)
    record = {k: v for k, v in meta.items() if k not in ("nnsee_format_version", "nnsee_version", "save_id")}
    record["history"] = {k: list(v)[:keep] for k, v in history.items()}
    record["epoch"] = after
    save_run(out, model, record)
    with contextlib.suppress(FileNotFoundError):
        (out / HISTORY_LOG).unlink()
    for epoch, file in list_snapshots(out).items():
        if epoch > after:
            file.unlink()


def _whole(value: Any) -> int | None:
    """``value`` as an int (a Python or numpy integer; never a bool), or None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _snapshot_epochs(snapshots: Iterable[int]) -> frozenset[int]:
    try:
        given = list(snapshots)
    except TypeError:
        raise RunError(f"snapshots must be a list of epoch numbers, e.g. [0, 1, 2, 5, 10], got {snapshots!r}"[:200]
                       ) from None
    epochs = [_whole(e) for e in given]
    if not all(e is not None and 0 <= e <= MAX_HISTORY for e in epochs):
        raise RunError(f"snapshots must be epoch numbers from 0 to {MAX_HISTORY:,}, got {first_few(given)}")
    return frozenset(epochs)  # type: ignore[arg-type]


class Tracker:
    """A run folder being written from the user's loop: :meth:`epoch` once an epoch, :meth:`close` at the end
    (or use it as a context manager). ``run`` is the adopted run (its model a CPU copy)."""

    def __init__(self, model: nn.Module, run: Run, snapshots: frozenset[int]) -> None:
        self.model = model
        self.run = run
        self.path = run.path
        self.snapshots = snapshots
        self.expect, self.dtypes = expected_weights(run.model)
        self.last_epoch = 0
        self.keys: set[str] = set()
        self.closed = False
        self.warned_nonfinite = False
        self._since = time.perf_counter()
        self._weights_meta = {"class_names": json.dumps(run.class_names), "save_id": run.meta["save_id"],
                              "model": json.dumps(run.meta["model"])}

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.closed:
            self.close()

    def epoch(self, epoch: int, *, train_loss: Any = None, val_loss: Any = None, train_acc: Any = None,
              val_acc: Any = None, **more: Any) -> None:
        """Record epoch ``epoch`` (above the last; 0 is the model at ``track``): the numbers given (floats, ints,
        0-d tensors or numpy scalars; None = not measured) and the model's weights now (see the module docstring
        for what is written)."""
        if self.closed:
            raise TrainingError(f"this tracker of {self.path} is closed; start another with nnsee.track(...)")
        epoch = self._check_epoch(epoch)
        values = {"train_loss": train_loss, "val_loss": val_loss, "train_acc": train_acc, "val_acc": val_acc, **more}
        row: dict[str, Any] = {"epoch": epoch}
        for name, value in values.items():
            key = ALIASES.get(name, name)
            number = self._number(epoch, name, value)
            if number is None:
                continue  # not measured: the merged history holds None there
            if key in row:
                raise TrainingError(f"epoch {epoch}: {key} is given twice (as {name} and as {key}); give it once")
            row[key] = number
        now = time.perf_counter()
        row.setdefault("seconds", now - self._since)
        new = set(row) - self.keys
        if len(self.keys | new) > MAX_KEYS:
            raise TrainingError(f"epoch {epoch}: a run keeps at most {MAX_KEYS} history values; these would be more: "
                                f"{first_few(sorted(new))}")
        weights = self.weights(epoch)
        if epoch in self.snapshots:
            self.write_snapshot(epoch, weights)
        save_weights(self.path / WEIGHTS_FILE, weights, {**self._weights_meta, "epoch": json.dumps(epoch)})
        append_history(self.path, row)
        self.keys |= new
        self.last_epoch = epoch
        self._since = now

    def weights(self, epoch: int) -> dict[str, torch.Tensor]:
        """The model's state dict now, on the CPU, checked: the names and shapes of epoch 0, every value finite."""
        state = self.model.state_dict()
        shapes = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
        if shapes != self.expect:
            changed = [k for k in self.expect if k in shapes and shapes[k] != self.expect[k]]
            detail = "; ".join(
                ([f"changed shape: {first_few([f'{k} {self.expect[k]} -> {shapes[k]}' for k in changed])}"]
                 if changed else [])
                + ([f"new: {first_few([k for k in shapes if k not in self.expect])}"]
                   if set(shapes) - set(self.expect) else [])
                + ([f"gone: {first_few([k for k in self.expect if k not in shapes])}"]
                   if set(self.expect) - set(shapes) else []))
            raise TrainingError(f"epoch {epoch}: the model's weights differ from those it had when tracking started "
                                f"({detail}); a run holds one architecture: track the changed model into another "
                                "folder")
        bad = [k for k, v in state.items() if v.is_floating_point() and not all_finite(v)]
        if bad:
            raise TrainingError(f"epoch {epoch}: the model's weights hold NaN or Inf values (in {first_few(bad)}): the "
                                f"training diverged; {self.path} keeps epoch {self.last_epoch} (lower the learning "
                                "rate)")
        return {k: v.detach().to("cpu") for k, v in state.items()}

    def write_snapshot(self, epoch: int, weights: Mapping[str, torch.Tensor]) -> None:
        """``snapshots/epoch-EEEE.safetensors``: ``weights`` (a checked CPU state dict) at ``epoch``."""
        file = snapshot_path(self.path, epoch)
        try:
            file.parent.mkdir(exist_ok=True)
        except OSError as exc:
            raise RunError(f"could not create {file.parent}: {exc.strerror or exc}") from exc
        save_weights(file, weights, {"class_names": self.run.class_names, "epoch": str(epoch)})

    def close(self, metrics: Mapping[str, Any] | None = None) -> Run:
        """Write ``run.json`` with the whole history (status ``tracked``; ``metrics`` as nnsee's training stores
        them, if given) beside the last epoch's weights, remove the log, and return the run (its model: the CPU
        copy holding those weights)."""
        meta = read_meta(self.path)
        weights, _ = load_weights(self.path / WEIGHTS_FILE, expect_shapes=self.expect,
                                  expect_dtypes=self.dtypes)
        model = self.run.model
        model.load_state_dict(weights)
        record = {k: v for k, v in meta.items() if k not in ("nnsee_format_version", "nnsee_version", "save_id")}
        record["status"] = "tracked"
        if metrics is not None:
            record["metrics"] = dict(metrics)
        save_run(self.path, model, record)
        with contextlib.suppress(FileNotFoundError):
            (self.path / HISTORY_LOG).unlink()
        self.closed = True
        self.run = Run(path=self.path, model=model, meta=read_meta(self.path))
        return self.run

    def _check_epoch(self, epoch: Any) -> int:
        whole = _whole(epoch)
        if whole is None:
            raise TrainingError(f"the epoch must be a whole number, got {epoch!r}"[:200])
        epoch = whole
        if epoch <= self.last_epoch:
            raise TrainingError(f"epoch {epoch} after epoch {self.last_epoch}: epochs must increase (epoch 0 is the "
                                "model when tracking started); call tracker.epoch once an epoch, counting from 1")
        if epoch > MAX_HISTORY:
            raise TrainingError(f"epoch {epoch}: a run records epochs up to {MAX_HISTORY:,}")
        return epoch

    def _number(self, epoch: int, name: str, value: Any) -> float | None:
        if not name.isidentifier() or len(name) > 64:
            raise TrainingError(f"epoch {epoch}: {name[:64]!r} is not a name for a history value (letters, digits, _)")
        if value is None:
            return None
        if isinstance(value, torch.Tensor) or hasattr(value, "item"):  # a tensor, a numpy scalar or array
            size = value.numel() if isinstance(value, torch.Tensor) else getattr(value, "size", 1)
            if size != 1:
                raise TrainingError(f"epoch {epoch}: {name} holds {size} values; give one number")
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, _NUMBER_TYPES):
            raise TrainingError(f"epoch {epoch}: {name} is a {type(value).__name__} ({str(value)[:40]!r}); give a "
                                "number (a float, or a 0-d tensor), or None")
        value = float(value)
        if not math.isfinite(value):
            if not self.warned_nonfinite:
                warnings.warn(f"epoch {epoch}: {name} is {value} (not finite); recorded as missing (null in "
                              "run.json, a gap in the learning curves), and so are later non-finite values",
                              RuntimeWarning, stacklevel=3)
                self.warned_nonfinite = True
            return math.nan
        return value
