"""The run folder: everything a trained model needs to be evaluated, explained, reported on or resumed.

```
RUN/run.json            specs, standardization, class names, input shape, history, metrics, versions
RUN/model.safetensors   the weights
RUN/state.safetensors   optimizer + RNG + epoch for resume: tensors as safetensors, the rest as JSON (no pickle)
RUN/snapshots/          epoch-0005.safetensors: weights at chosen epochs
RUN/history.jsonl       epochs appended by nnsee.track since run.json was written (one JSON row a line)
```

Run format 1 differs only in the resume state: ``RUN/state.pt``, read with ``torch.load(weights_only=True)``;
resuming such a run saves it as format 2 (``state.pt`` is removed once the new ``run.json`` is written).

What :func:`load_run` trusts is the pair ``run.json`` + ``model.safetensors``. :func:`save_run` writes the weights,
then the state, then ``run.json`` last, each atomically; every file also records the save's ``save_id`` and
epoch. Re-saving a run with the same architecture, classes and input shape, a crash between files leaves a
``run.json`` whose weights still fit it (one save apart at worst: ``load_run`` warns). Saving a different
architecture into the folder first removes ``run.json``, so an interrupted save leaves "no run here", never a
``run.json`` that contradicts its weights.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import stat
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from nnsee.errors import NnseeError, RunError
from nnsee.io import atomic_write_text, clean_stale_tmp, fsync_dir, is_tmp_name, open_regular, remove_files
from nnsee.models.adopted import attach_output, build_for_run, is_adopted
from nnsee.train.checkpoint import StateDict, load_state, load_weights, save_state, save_weights

if TYPE_CHECKING:
    from nnsee.data.standardize import Standardizer

RUN_FORMAT_VERSION = 2
MIN_RUN_FORMAT_VERSION = 1
RUN_JSON = "run.json"
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "state.safetensors"
LEGACY_STATE_FILE = "state.pt"  # run format 1
SNAPSHOT_DIR = "snapshots"
HISTORY_LOG = "history.jsonl"
# specs, class names, history, two confusion matrices: about 4 MB at 1,000 classes, 16 MB at MAX_CLASSES = 2,000 (and
# 32 MB if every count had 2 digits)
MAX_RUN_JSON_BYTES = 40 << 20
_SNAPSHOT_RE = re.compile(r"epoch-(\d+)\.safetensors")
# The keys that tie run.json to its weights: a change of any of them is a different model.
_IDENTITY_KEYS = ("model", "class_names", "input_shape", "weight_shapes")


def _jsonable(value: Any, where: str) -> Any:
    """``value`` as plain JSON: tuples become lists, NaN/Inf become null, numpy/tensor values become lists."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):  # numpy scalars/arrays, tensors
        return _jsonable(value.tolist(), where)
    raise RunError(f"cannot store {where} in {RUN_JSON}: a {type(value).__name__} is not JSON data")


def _read_json(file: Path) -> dict[str, Any]:
    """``run.json`` as a dict: a regular file of at most :data:`MAX_RUN_JSON_BYTES` (checked before it is read)."""
    try:
        with open_regular(file, "the run's metadata", max_bytes=MAX_RUN_JSON_BYTES) as f:
            text = f.read(MAX_RUN_JSON_BYTES + 1).decode("utf-8")
    except FileNotFoundError:
        raise RunError(
            f"{file} does not exist: {file.parent} is not an nnsee run folder (or its save was "
            "interrupted); train again with --out pointing there"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunError(f"could not read {file}: {exc}") from exc
    if _nesting(text) > MAX_JSON_DEPTH:
        raise RunError(f"{file} nests lists or objects more than {MAX_JSON_DEPTH} deep, too deeply to be an nnsee "
                       "run.json; the run folder is damaged")
    try:
        meta = json.loads(text)
    except ValueError as exc:
        raise RunError(f"{file} is not valid JSON ({exc}); the run folder is damaged") from exc
    except RecursionError:
        raise RunError(f"{file} nests lists or objects too deeply to be an nnsee run.json; the run folder is "
                       "damaged") from None
    if not isinstance(meta, dict):
        raise RunError(f"{file} is not a JSON object; it is not an nnsee run")
    return meta


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and version-check ``RUN/run.json`` without loading any weights."""
    file = Path(path) / RUN_JSON
    meta = _read_json(file)
    version = meta.get("nnsee_format_version")
    if version is None:
        raise RunError(f"{file} has no 'nnsee_format_version': it is not an nnsee run")
    if not isinstance(version, int) or isinstance(version, bool):
        raise RunError(f"{file} has an unreadable nnsee_format_version {version!r}; it is not an nnsee run")
    if version > RUN_FORMAT_VERSION:
        written = meta.get("nnsee_version", "?")
        raise RunError(
            f"{file} was written by a newer nnsee ({written}, run format {version}; this nnsee reads "
            f"formats {MIN_RUN_FORMAT_VERSION}-{RUN_FORMAT_VERSION}); upgrade nnsee"
        )
    if version < MIN_RUN_FORMAT_VERSION:
        raise RunError(
            f"{file} uses the old run format {version}, which this nnsee no longer reads (formats "
            f"{MIN_RUN_FORMAT_VERSION}-{RUN_FORMAT_VERSION}); train the model again"
        )
    merge_history_log(Path(path), meta)
    check_meta(file, meta)
    return meta


# ------------------------------------------------------------------------------------------ run.json schema

MAX_JSON_DEPTH = 32  # nnsee writes 5 (run.json -> metrics -> test -> confusion_matrix -> row -> count)
MAX_HISTORY = 1_000_000  # epochs in a history list
_CONFIG_TYPES: dict[str, tuple[type, ...]] = {
    "optimizer": (str,), "lr": (int, float, type(None)), "epochs": (int,), "batch_size": (int,),
    "l2": (int, float), "momentum": (int, float), "seed": (int,), "patience": (int,), "snapshots": (list,),
    "standardize": (str,), "lbfgs_iterations": (int,), "device": (str,),
}


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = {c: None for c in range(256) if chr(c) not in "[]{}"}


def _nesting(text: str) -> int:
    """How deeply lists and objects nest in the JSON ``text``: its strings dropped, then its brackets counted (a
    scan of the few brackets left, not of every value)."""
    deepest = level = 0
    for c in _JSON_STRING.sub("", text).translate(_NOT_BRACKETS):
        level += 1 if c in "[{" else -1
        deepest = max(deepest, level)
    return deepest


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_standardization(value: dict[str, Any], input_shape: Any) -> str | None:
    """Why the ``standardization`` record cannot be used with images of ``input_shape``, or None."""
    from nnsee.train.config import STANDARDIZE_MODES

    if value.get("mode") in STANDARDIZE_MODES:
        return _check_pixel_stats(value, input_shape)
    from nnsee.data.standardize import NORMALIZE

    if value.get("mode") == NORMALIZE:  # an adopted model's per-channel statistics
        channels = input_shape[0] if isinstance(input_shape, list) and input_shape else None
        for key in ("mean", "std"):
            stats = value.get(key)
            if not (isinstance(stats, list) and len(stats) == channels and all(_is_number(v) for v in stats)
                    and (key == "mean" or all(v > 0 for v in stats))):
                return f"needs '{key}': one number per channel ({channels}){', each > 0' if key == 'std' else ''}"
        return None
    return f"has mode {value.get('mode')!r}, not one of {', '.join((*STANDARDIZE_MODES, NORMALIZE))}"


def _check_pixel_stats(value: dict[str, Any], input_shape: Any) -> str | None:
    """Why a training standardization record (image, pixel, none) cannot be used with ``input_shape``, or None."""
    if value["mode"] != "pixel":
        return None
    for key in ("mean", "std"):
        stats = value.get(key)
        if not isinstance(stats, dict) or stats.get("shape") != input_shape:
            return f"needs '{key}' of the input shape {input_shape} for pixel mode"
        size = math.prod(input_shape)
        values, packed = stats.get("values"), stats.get("float32_le_base64")
        if not ((isinstance(values, list) and len(values) == size and all(_is_number(v) for v in values))
                or (isinstance(packed, str) and len(packed) == 4 * math.ceil(4 * size / 3))):
            return f"'{key}' does not hold {size:,} numbers"
    return None


def _field_problem(meta: dict[str, Any]) -> tuple[str, str] | None:
    """The first field of ``meta`` (a run.json) whose type, length or nesting is wrong, and what is wrong."""
    from nnsee.data.npz import MAX_CLASSES

    names = meta.get("class_names")
    if not (isinstance(names, list) and 1 <= len(names) <= MAX_CLASSES and all(isinstance(n, str) for n in names)):
        return "class_names", f"must be a list of 1 to {MAX_CLASSES:,} strings"
    shape = meta.get("input_shape")
    if shape is not None and not (isinstance(shape, list) and len(shape) == 3
                                  and all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 65536
                                          for d in shape)):
        return "input_shape", "must be three positive integers (channels, height, width)"
    for key in ("model", "data", "standardization", "config", "history", "metrics", "weight_shapes"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            return key, f"must be a JSON object, not {type(meta[key]).__name__}"
    for key, kind in (("save_id", str), ("nnsee_version", str), ("status", str)):
        if meta.get(key) is not None and not isinstance(meta[key], kind):
            return key, f"must be a string, not {type(meta[key]).__name__}"
    epoch = meta.get("epoch")
    if epoch is not None and not (isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0):
        return "epoch", "must be an integer of 0 or more"
    if isinstance(meta.get("standardization"), dict):
        why = _check_standardization(meta["standardization"], shape)
        if why:
            return "standardization", why
    for key, values in (meta.get("history") or {}).items():
        if not (isinstance(values, list) and len(values) <= MAX_HISTORY
                and all(v is None or _is_number(v) for v in values)):
            return f"history.{key}", f"must be a list of at most {MAX_HISTORY:,} numbers"
    for key, value in (meta.get("config") or {}).items():
        if key in _CONFIG_TYPES and (not isinstance(value, _CONFIG_TYPES[key]) or isinstance(value, bool)
                                     or (key == "snapshots" and not all(type(v) is int for v in value))):
            return f"config.{key}", f"cannot be {value!r}"[:120]
    for key, value in (meta.get("weight_shapes") or {}).items():
        if not (isinstance(value, list) and all(type(d) is int and d >= 0 for d in value)):
            return f"weight_shapes.{key}", "must be a list of sizes"
    for split, scores in (meta.get("metrics") or {}).items():
        if not isinstance(scores, dict):
            return f"metrics.{split}", "must be a JSON object"
        matrix = scores.get("confusion_matrix")
        if matrix is not None and matrix != [] and not (
                isinstance(matrix, list) and len(matrix) == len(names)
                and all(isinstance(row, list) and len(row) == len(names) and set(map(type, row)) <= {int}
                        for row in matrix)):
            return f"metrics.{split}.confusion_matrix", f"must be {len(names)} rows of {len(names)} counts"
    return None


def check_meta(file: Path, meta: dict[str, Any]) -> None:
    """Refuse a run.json whose fields have the wrong types, lengths or nesting, in one line naming the field, before
    anything is built from it (the model spec itself is checked by :func:`nnsee.models.registry.spec_shapes`)."""
    problem = _field_problem(meta)
    if problem is not None:
        key, why = problem
        raise RunError(f"{file}: the field {key!r} {why}; the run folder is damaged, train again")


def is_run_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder with a ``run.json`` written by nnsee (of any format version)."""
    try:
        return "nnsee_format_version" in _read_json(Path(path) / RUN_JSON)
    except (RunError, OSError):
        return False


#: The files of a run folder (model.pt2: the torch.export archive an adopted run keeps, nnsee/models/exported.py).
_RUN_FILES = (RUN_JSON, WEIGHTS_FILE, STATE_FILE, LEGACY_STATE_FILE, HISTORY_LOG, "model.pt2")


def _own_files(path: Path) -> tuple[list[Path], list[Path]]:
    """The files nnsee wrote in the run folder ``path`` (run files, snapshots, its temporary files), and the other
    entries (the user's). A name of nnsee's held by something that is not a file or a link counts as the user's."""
    ours: list[Path] = []
    others: list[Path] = []
    for entry in sorted(path.iterdir()):
        if entry.name == SNAPSHOT_DIR and entry.is_dir() and not entry.is_symlink():
            for inner in sorted(entry.iterdir()):
                mine = _SNAPSHOT_RE.fullmatch(inner.name) or is_tmp_name(inner.name)
                (ours if mine and _file_or_link(inner) else others).append(inner)
        elif (entry.name in _RUN_FILES or is_tmp_name(entry.name)) and _file_or_link(entry):
            ours.append(entry)
        else:
            others.append(entry)
    return ours, others


def _file_or_link(path: Path) -> bool:
    return path.is_symlink() or (path.is_file() and not path.is_dir())


def out_folder_state(path: str | os.PathLike[str]) -> str:
    """What training into ``path`` would replace: ``"new"`` (missing or empty) or ``"run"`` (an nnsee run, or only
    files nnsee writes, e.g. a save interrupted before its ``run.json``). Anything else is the user's folder: refused
    with a :class:`RunError`, whatever the flags. Nothing is changed."""
    path = Path(path)
    if not path.exists():
        return "new"
    if not path.is_dir():
        raise RunError(f"{path} exists and is not a folder: choose another --out")
    try:
        ours, others = _own_files(path)
    except OSError as exc:
        raise RunError(f"could not look into {path}: {exc.strerror or exc}; choose another --out") from exc
    if not ours and not others:
        return "new"
    snapshots = path / SNAPSHOT_DIR
    if snapshots in others:  # a link or a file in its place: the new run's snapshots would go elsewhere
        raise RunError(f"{snapshots} is not the folder nnsee writes snapshots in (a link or a file): move it away or "
                       "choose another --out")
    if is_run_folder(path) or not others:
        return "run"
    raise RunError(f"{path} is not an nnsee run folder and is not empty: choose another --out")


def remove_run_files(path: str | os.PathLike[str]) -> list[Path]:
    """Delete the run in ``path``: only what nnsee wrote there (``run.json``, the weights, the resume state, the
    snapshots, its temporary files); a file of the user's beside them is kept. Return what was removed."""
    path = Path(path)
    if not path.is_dir():
        return []
    removed = remove_files(_own_files(path)[0], "a file of the old run,")
    with contextlib.suppress(OSError):
        (path / SNAPSHOT_DIR).rmdir()  # only if empty: a file of the user's there keeps it
    fsync_dir(path)
    return removed


@dataclass
class Run:
    """A loaded run: its folder, its model (on ``map_location``, in eval mode) and ``run.json`` as ``meta``."""

    path: Path
    model: nn.Module
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.get("class_names") or [])

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        shape = self.meta.get("input_shape")
        return tuple(int(d) for d in shape) if shape is not None else None

    @property
    def history(self) -> dict[str, Any]:
        return self.meta.get("history") or {}

    @property
    def metrics(self) -> dict[str, Any]:
        return self.meta.get("metrics") or {}

    @property
    def epoch(self) -> int | None:
        return self.meta.get("epoch")

    @property
    def data_spec(self) -> dict[str, Any] | None:
        return self.meta.get("data")

    @property
    def config(self) -> dict[str, Any]:
        return self.meta.get("config") or {}

    @cached_property
    def standardizer(self) -> Standardizer | None:
        """The training data's standardization (None if the run stored none)."""
        stats = self.meta.get("standardization")
        if stats is None:
            return None
        from nnsee.data.standardize import Standardizer

        try:
            return Standardizer.from_dict(stats)
        except NnseeError:
            raise
        except Exception as exc:
            raise RunError(f"{self.path / RUN_JSON}: unreadable 'standardization' ({exc})") from exc

    def standardize(self, images: np.ndarray) -> np.ndarray:
        """``images`` ((N, C, H, W) or one (C, H, W)) as the model saw its training data: the run's standardizer
        applied, a float32 copy; without a standardizer, the images themselves as float32 (identity)."""
        if self.standardizer is None:
            return np.asarray(images, dtype=np.float32)
        return self.standardizer.transform(images)

    @property
    def snapshot_epochs(self) -> list[int]:
        """The epochs whose weights ``RUN/snapshots/`` holds, in increasing order."""
        return list(list_snapshots(self.path))

    def snapshot_state(self, epoch: int) -> dict[str, torch.Tensor]:
        """The weights saved at ``epoch`` (a state dict for ``self.model``), their shapes and dtypes checked against
        the model from the file's header, before they are read."""
        expect, dtypes = expected_weights(self.model)
        return load_snapshot(self.path, epoch, expect_shapes=expect, expect_dtypes=dtypes)

    def state(self) -> dict[str, Any]:
        """The resume state: ``state.safetensors``, or a format-1 run's ``state.pt`` (``weights_only=True``)."""
        file = self.path / STATE_FILE
        if not file.exists() and (self.path / LEGACY_STATE_FILE).exists():
            file = self.path / LEGACY_STATE_FILE
        if not file.exists():
            raise RunError(f"this run has no resume state ({file} is missing); it cannot be resumed, train again")
        expect, dtypes = expected_weights(self.model)
        state = load_state(file, expect_shapes=expect, expect_dtypes=dtypes)
        saved = self.meta.get("save_id")
        if saved is not None and state.get("save_id") != saved:
            warnings.warn(
                f"{file} (epoch {state.get('epoch')}) comes from a different save than {self.path / RUN_JSON} "
                f"(epoch {self.epoch}); a save was interrupted, resuming from the state's epoch",
                RuntimeWarning,
                stacklevel=2,
            )
        return state


def _identity(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: meta.get(k) for k in _IDENTITY_KEYS}


def save_run(
    path: str | os.PathLike[str],
    model: nn.Module,
    meta: dict[str, Any],
    state: dict[str, Any] | None = None,
) -> Path:
    """Write (or update) the run folder ``path``: ``model.safetensors``, then ``state.safetensors``, then ``run.json``.

    ``meta`` holds ``class_names`` (required) and, by convention, ``model`` (spec; defaults to the model's own,
    None for a custom module), ``data``, ``standardization``, ``input_shape`` (defaults to the spec's),
    ``config``, ``history``, ``metrics`` and ``epoch``; it must be JSON data (NaN/Inf are stored as null).
    Without ``state``, an older state file is removed; a format-1 ``state.pt`` always is, once ``run.json`` is
    written. Stale ``.tmp-*`` files are cleaned first.
    """
    path = Path(path)
    names = meta.get("class_names")
    if not isinstance(names, (list, tuple)) or not all(isinstance(c, str) for c in names):
        raise RunError(f"cannot save the run {path}: meta needs 'class_names', a list of strings")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"could not create the run folder {path}: {exc.strerror or exc}") from exc
    clean_stale_tmp(path)

    from nnsee import __version__
    from nnsee.models.registry import model_spec

    save_id = secrets.token_hex(8)
    record = dict(meta)
    if "model" not in record:
        record["model"] = model_spec(model)
    if record.get("input_shape") is None and isinstance(record["model"], dict):
        record["input_shape"] = record["model"].get("input_shape")
    record["weight_shapes"] = {k: list(v.shape) for k, v in model.state_dict().items()}
    record = _jsonable(record, "meta")
    record = {
        "nnsee_format_version": RUN_FORMAT_VERSION,
        "nnsee_version": __version__,
        "save_id": save_id,
        **{k: v for k, v in record.items() if k not in ("nnsee_format_version", "nnsee_version", "save_id")},
    }
    # one line per top-level field, compact: readable, and a confusion matrix of 1,000 classes takes about 2 MB
    # (indented, one number a line, it took 13 MB; with ", " between numbers 3 MB)
    lines = {key: f"  {json.dumps(key)}: {json.dumps(value, allow_nan=False, separators=(',', ':'))}"
             for key, value in record.items()}
    text = "{\n" + ",\n".join(lines.values()) + "\n}\n"
    if len(text) > MAX_RUN_JSON_BYTES:  # never write a run.json that read_meta would refuse
        largest = max(lines, key=lambda k: len(lines[k]))
        raise RunError(f"cannot save the run {path}: its run.json would be {len(text):,} bytes ({largest!r} alone "
                       f"{len(lines[largest]):,}), more than the {MAX_RUN_JSON_BYTES:,} nnsee reads back; use fewer "
                       "classes, smaller images (--size) or --standardize image")
    if _nesting(text) > MAX_JSON_DEPTH:
        raise RunError(f"cannot save the run {path}: its meta nests lists or objects more than {MAX_JSON_DEPTH} deep, "
                       "more than run.json is read with")

    run_json = path / RUN_JSON
    if run_json.exists():
        try:
            same = _identity(_read_json(run_json)) == _identity(record)
        except RunError:
            same = False
        if not same:  # a different model: never let the old run.json describe the new weights
            try:
                run_json.unlink()
            except OSError as exc:
                raise RunError(f"could not replace {run_json}: {exc.strerror or exc}") from exc
            fsync_dir(path)

    weights_meta = {
        "class_names": json.dumps(record["class_names"]),
        "save_id": save_id,
        "epoch": json.dumps(record.get("epoch")),
        "model": json.dumps(record["model"]) if record["model"] is not None else "custom",
    }
    save_weights(path / WEIGHTS_FILE, model, weights_meta)
    if state is not None:
        save_state(path / STATE_FILE, {**state, "save_id": save_id})
    atomic_write_text(run_json, text)
    for stale in (LEGACY_STATE_FILE,) if state is not None else (STATE_FILE, LEGACY_STATE_FILE):
        with contextlib.suppress(FileNotFoundError):
            (path / stale).unlink()
    return path


def expected_weights(model: nn.Module) -> tuple[dict[str, tuple[int, ...]], dict[str, torch.dtype]]:
    """The shapes and dtypes of ``model``'s state dict: what its weights files must hold."""
    sd = model.state_dict()
    return {k: tuple(v.shape) for k, v in sd.items()}, {k: v.dtype for k, v in sd.items()}


def spec_weights(run_json: Path, spec: Any) -> dict[str, tuple[int, ...]]:
    """The weight shapes of the model ``spec`` in ``run_json``, by arithmetic, its values checked (one line naming
    the file otherwise); nothing is built."""
    from nnsee.models.registry import spec_shapes

    if not isinstance(spec, dict):
        raise RunError(f"{run_json}: 'model' is not a model spec")
    try:
        return spec_shapes(spec)
    except NnseeError as exc:
        raise RunError(f"{run_json}: cannot rebuild the model of its 'model' field: {exc}") from None


def load_run(
    path: str | os.PathLike[str],
    model: nn.Module | None = None,
    map_location: str | torch.device = "cpu",
    *,
    device: str | torch.device | None = None,
) -> Run:
    """Load the run folder ``path``: rebuild its model from the spec (or fill ``model``), load and check weights.

    Pass ``model`` for a run of a custom module. An adopted run (:mod:`nnsee.models.adopted`) is built by importing
    its recorded code (said on stderr), then its weights are checked against that model. The model ends on
    ``device`` (``auto``, ``cpu``, ``cuda[:N]``, ``mps``: :func:`~nnsee.train.config.resolve_device`, checked before
    anything is read; default ``map_location``, the CPU), in eval mode. The device run.json records (where it was
    trained) is never used here: a run trained on ``cuda:3`` loads on a machine without CUDA. Every size is
    checked before it is allocated: run.json's fields (:func:`check_meta`), the spec's options and weight count
    (:func:`nnsee.models.registry.check_model`, by arithmetic), then the weights file's header against those shapes;
    only then is the model built and the weights read.
    """
    from nnsee.train.config import resolve_device

    place = resolve_device(device) if device is not None else map_location
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"no run folder at {path}; train one with: nnsee train ... --out {path}")
    meta = read_meta(path)
    run_json = path / RUN_JSON
    dtypes: dict[str, torch.dtype] = {}
    spec = meta.get("model")
    adopted = is_adopted(spec)
    if model is None and adopted:  # the user's code, imported (said on stderr)
        model = build_for_run(path, spec)
    if model is None:
        if spec is None:
            raise RunError(
                f"{path} holds a custom model that nnsee cannot rebuild; pass the module: "
                f"load_run({str(path)!r}, model=MyNet(...))"
            )
        expect = spec_weights(run_json, spec)
    else:
        expect, dtypes = expected_weights(model)
    weights, wmeta = load_weights(path / WEIGHTS_FILE, expect_shapes=expect, expect_dtypes=dtypes)
    weight_classes = json.loads(wmeta["class_names"])
    if weight_classes != meta.get("class_names"):
        raise RunError(
            f"{path / WEIGHTS_FILE} was saved for classes {_short(weight_classes)}, but {run_json} lists "
            f"{_short(meta.get('class_names'))}; the run folder is inconsistent, train again"
        )
    if wmeta.get("save_id") != meta.get("save_id"):
        warnings.warn(
            f"{path / WEIGHTS_FILE} comes from a different save than {run_json} (a save was interrupted);"
            " the weights fit, but the history may be one save behind",
            RuntimeWarning,
            stacklevel=2,
        )
    if model is None:
        from nnsee.models.registry import build_from_spec

        model = build_from_spec(meta["model"])  # checked above: the shapes the weights have just been checked against
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise RunError(f"the weights in {path / WEIGHTS_FILE} do not fit the model: {_one_line(exc)}") from exc
    if adopted:
        attach_output(model, spec.get("output"))
    model.to(place)
    model.eval()
    return Run(path=path, model=model, meta=meta)


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


# ---------------------------------------------------------------------------------------------- snapshots


def snapshot_path(path: str | os.PathLike[str], epoch: int) -> Path:
    """``RUN/snapshots/epoch-0005.safetensors`` for ``epoch=5``."""
    return Path(path) / SNAPSHOT_DIR / f"epoch-{int(epoch):04d}.safetensors"


def save_snapshot(
    path: str | os.PathLike[str],
    epoch: int,
    model: nn.Module,
    *,
    class_names: list[str] | None = None,
) -> Path:
    """Write the model's weights at ``epoch`` to ``RUN/snapshots/``.

    ``class_names`` defaults to those in ``RUN/run.json``; pass them when the run has not been saved yet.
    """
    path = Path(path)
    if class_names is None:
        try:
            class_names = _read_json(path / RUN_JSON)["class_names"]
        except (RunError, KeyError):
            raise RunError(
                f"cannot save the snapshot of epoch {epoch}: {path / RUN_JSON} does not say the class "
                "names yet; pass class_names="
            ) from None
    file = snapshot_path(path, epoch)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"could not create {file.parent}: {exc.strerror or exc}") from exc
    save_weights(file, model, {"class_names": list(class_names), "epoch": str(int(epoch))})
    return file


def list_snapshots(path: str | os.PathLike[str]) -> dict[int, Path]:
    """The run's snapshots by epoch, in epoch order."""
    folder = Path(path) / SNAPSHOT_DIR
    if not folder.is_dir():
        return {}
    found = {}
    for file in folder.iterdir():  # every entry of the name: one that is not a regular file is refused when read
        m = _SNAPSHOT_RE.fullmatch(file.name)
        if m:
            found[int(m.group(1))] = file
    return dict(sorted(found.items()))


def load_snapshot(
    path: str | os.PathLike[str],
    epoch: int,
    *,
    expect_shapes: dict[str, Any] | None = None,
    expect_dtypes: dict[str, torch.dtype] | None = None,
) -> StateDict:
    """The weights saved at ``epoch``, checked from the file's header against ``expect_shapes`` and
    ``expect_dtypes`` (default: the shapes of the run.json's model spec, else its ``weight_shapes``, all floating
    point) before they are read."""
    path = Path(path)
    snaps = list_snapshots(path)
    if int(epoch) not in snaps:
        have = ", ".join(map(str, snaps)) or "none"
        raise RunError(
            f"{path} has no snapshot of epoch {epoch} (snapshots: {have}); ask for it with --snapshots when training"
        )
    if expect_shapes is None and (path / RUN_JSON).exists():  # without run.json: snapshots saved before the run
        meta = read_meta(path)
        if meta.get("model") is not None and not is_adopted(meta["model"]):
            expect_shapes = spec_weights(path / RUN_JSON, meta["model"])
        else:
            expect_shapes = meta.get("weight_shapes")
    weights, _ = load_weights(snaps[int(epoch)], expect_shapes=expect_shapes, expect_dtypes=expect_dtypes)
    return weights


# ------------------------------------------------------------------------------------------------ history log


def append_history(path: str | os.PathLike[str], row: dict[str, Any]) -> None:
    """Append one epoch's ``row`` (``{"epoch": e, key: number or None, ...}``) to ``RUN/history.jsonl``: one line,
    one ``write``, then fsync. Cost O(row): a run's history is never rewritten per epoch (rewriting ``run.json``
    every epoch costs O(epochs) a call, O(epochs²) a run). Only a regular file is appended to (never through a
    link, never a FIFO), and never past :data:`MAX_RUN_JSON_BYTES`, what :func:`merge_history_log` reads."""
    line = (json.dumps(_jsonable(row, "history"), allow_nan=False, separators=(",", ":")) + "\n").encode()
    file = Path(path) / HISTORY_LOG
    flags = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
             | getattr(os, "O_CLOEXEC", 0))
    try:
        fd = os.open(file, flags, 0o644)
    except OSError as exc:
        raise RunError(f"could not append to {file}: {exc.strerror or exc} (nnsee appends only to a regular file "
                       "of its own there: move it away)") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise RunError(f"{file} is not a regular file, so nnsee cannot append the history to it; move it away")
        if info.st_size + len(line) > MAX_RUN_JSON_BYTES:  # what merge_history_log reads back
            raise RunError(f"{file} would grow past {MAX_RUN_JSON_BYTES:,} bytes, the most nnsee reads back, so epoch "
                           f"{row.get('epoch')} is not recorded; record fewer values, or once an epoch, not a step")
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError as exc:
        raise RunError(f"could not append to {file}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def merge_history_log(path: Path, meta: dict[str, Any]) -> None:
    """Extend ``meta["history"]`` (and ``meta["epoch"]``) by the rows of ``RUN/history.jsonl`` whose epoch is past
    the history's last. A last line without its newline (a write cut by a kill) is left out; keys a row lacks are
    None there, and a key new in a row is None for the epochs before it. Read at most :data:`MAX_RUN_JSON_BYTES`."""
    file = path / HISTORY_LOG
    try:
        with open_regular(file, "the history log", max_bytes=MAX_RUN_JSON_BYTES) as f:
            text = f.read(MAX_RUN_JSON_BYTES + 1).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return
    history = meta.get("history")
    if history is not None and not isinstance(history, dict):
        return  # check_meta names the field
    history = {k: list(v) for k, v in (history or {}).items() if isinstance(v, list)}
    epochs = history.setdefault("epoch", [])
    for key in history:
        history[key] += [None] * (len(epochs) - len(history[key]))
    last = epochs[-1] if epochs and _is_number(epochs[-1]) else -1
    for number, line in enumerate(text.split("\n")[:-1], 1):  # the part after the last newline is incomplete
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            raise RunError(f"{file}: line {number} is not a JSON row; the run folder is damaged (remove the line, "
                           "or the file to drop the epochs it adds)") from None
        epoch = row.get("epoch") if isinstance(row, dict) else None
        if not (isinstance(epoch, int) and not isinstance(epoch, bool)):
            raise RunError(f"{file}: line {number} has no integer 'epoch'; the run folder is damaged")
        if epoch <= last:
            continue  # run.json has it already (written after this line)
        for key in row:
            history.setdefault(str(key), [None] * len(epochs) if key != "epoch" else epochs)
        for key, values in history.items():
            if key != "epoch":
                values.append(row.get(key))
        epochs.append(epoch)
        last = epoch
        if len(epochs) > MAX_HISTORY:
            break  # check_meta refuses the history
    meta["history"] = history
    if epochs and (meta.get("epoch") is None or (_is_number(meta["epoch"]) and last > meta["epoch"])):
        meta["epoch"] = last
