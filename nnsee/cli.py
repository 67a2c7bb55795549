"""The ``nnsee`` command line: parse, call the library, print. ``--json`` prints one JSON object on stdout."""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np

from nnsee.errors import NnseeError


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    click.echo(f"warning: {message}", err=True)


def _friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn nnsee's own errors into one line on stderr and exit status 1 (no traceback)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        warnings.showwarning = _show_warning
        try:
            return command(*args, **kwargs)
        except NnseeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper


class RegistryChoice(click.Choice):
    """A ``click.Choice`` whose choices are read, when needed, from the registry or constant that defines them
    (``"module:NAME"``, a dict's keys or a tuple; or a callable), so no list of names is copied here and importing
    the CLI stays cheap."""

    def __init__(self, source: str | Callable[[], Any]) -> None:
        self.source = source
        self.case_sensitive = True

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        """Read each time (a registry may grow after the CLI is imported); the import is paid once."""
        if callable(self.source):
            return tuple(self.source())
        module, _, name = self.source.partition(":")
        return tuple(getattr(importlib.import_module(module), name))

    @choices.setter
    def choices(self, value: Any) -> None:
        raise AttributeError("a RegistryChoice reads its choices from its source")


def _view_names() -> tuple[str, ...]:
    from nnsee.methods.one_image import view_names

    return view_names()


#: --seed everywhere: the range nnsee.train.config.SEED_MAX allows (kept equal by tests/cli/test_hostile_options.py).
SEED = click.IntRange(0, 2**32 - 1)
#: Every epoch count: the range nnsee.train.config.MAX_EPOCHS allows.
EPOCHS = click.IntRange(0, 1_000_000)


def _int_list(ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> list[int]:
    """Comma-separated whole numbers in ASCII digits (``parse_index``: not ``'²'``, ``'٣'``, ``'-1'`` or ``'1e3'``)."""
    from nnsee.methods.attribution.target import parse_index

    if value in (None, ""):
        return []
    numbers = [parse_index(v) for v in value.split(",") if v.strip()]
    if any(n is None for n in numbers):
        raise click.BadParameter(f"expected comma-separated whole numbers like 1,2,5,10 (digits 0-9), got {value!r}",
                                 ctx=ctx, param=param)
    return numbers  # type: ignore[return-value]


def _option_int_list(value: str, option: str) -> list[int]:
    """:func:`_int_list` for an option read in the command's body (its error names ``option``)."""
    try:
        return _int_list(None, None, value)
    except click.BadParameter as e:
        e.param_hint = option
        raise


def _names_list(value: str, option: str) -> list[str]:
    """``a,b.c``: comma-separated names, spaces around them dropped; none at all is refused."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise click.BadParameter(f"expected comma-separated layer names such as layer2,layer4.1.conv1, got {value!r}",
                                 param_hint=option)
    return names


def _spec(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A data SPEC as given, but never empty (an empty path would mean the current folder)."""
    if value is not None and not value.strip():
        raise click.BadParameter("the data SPEC is empty: give a named set, a folder or a file", ctx=ctx, param=param)
    return value


def _max_memory(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """``--max-memory``: a size such as 256M or 2G, in bytes (None: the default budget)."""
    if value is None:
        return None
    from nnsee.data.budget import parse_size
    from nnsee.errors import DataError

    try:
        return parse_size(value)
    except DataError as e:
        raise click.BadParameter(str(e).removeprefix("--max-memory "), ctx=ctx, param=param) from None


def data_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that, with a SPEC, decide which images are loaded and how they are split."""
    options = [
        click.option("--size", type=click.IntRange(4, 1024), default=None,
                     help="Resize folder images to SIZE x SIZE (centre crop keeps the aspect)."),
        click.option("--grayscale/--rgb", default=None, help="Folder images as 1 channel or 3 (default: grayscale)."),
        click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Where fashion-mnist / mnist IDX files are (else $NNSEE_DATA, then Debian's datasets)."),
        click.option("--val-fraction", type=click.FloatRange(0, 0.9), default=0.1, show_default=True),
        click.option("--test-fraction", type=click.FloatRange(0, 0.9), default=0.1, show_default=True,
                     help="Ignored for sets with an official test split."),
        click.option("--no-download", is_flag=True, help="Never download a named data set."),
        click.option("--stream/--no-stream", default=None,
                     help="Read images from disk batch by batch (--stream) or decode them all first (--no-stream); "
                     "default: stream when the set would not fit in --max-memory."),
        click.option("--max-memory", type=str, callback=_max_memory, default=None, metavar="SIZE",
                     help="Memory budget for decoded images, e.g. 256M or 2G (default: half the available memory)."),
        click.option("--workers", type=click.IntRange(0, 256), default=0, show_default=True,
                     help="Worker processes that decode streamed batches (0: in this process)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def device_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--device auto|cpu|cuda[:N]|mps`` (default ``auto``: CUDA when present, else the CPU), resolved by
    :func:`nnsee.train.config.resolve_device` before the command does anything, so the command receives the device
    it runs on (``cuda:0``, ``cpu`` ...) and a device this machine lacks is one line and exit status 1."""

    @functools.wraps(command)
    @_friendly_errors
    def resolved(*args: Any, device: str, **kwargs: Any) -> Any:
        from nnsee.train.config import resolve_device

        return command(*args, device=resolve_device(device), **kwargs)

    return click.option("--device", default="auto", show_default=True, metavar="auto|cpu|cuda[:N]|mps",
                        help="Where the model computes: auto is the first CUDA GPU when CUDA is available, else the "
                        "CPU; mps only when named.")(resolved)


def _load(spec: str, seed: int, size: int | None, grayscale: bool | None, data_dir: Path | None,
          val_fraction: float, test_fraction: float, no_download: bool, resize: str = "square",
          stream: bool | None = None, max_memory: int | None = None, workers: int = 0) -> Any:
    """The splits of ``spec`` from the data options (``workers`` is the command's: it decodes batches later)."""
    from nnsee.data import load_data

    return load_data(spec, size=size, grayscale=grayscale, data_dir=data_dir, seed=seed,
                     val_fraction=val_fraction, test_fraction=test_fraction, download=not no_download, resize=resize,
                     stream=stream, max_memory=max_memory)


def run_split(run: Any, spec: str | None, split: str, data_opts: dict[str, Any]) -> Any:
    """``split`` of ``spec`` (default: the run's own data, re-split as recorded) for the loaded ``run``: a SPEC of
    the user's is read at the run's image size and channels unless ``--size``/``--grayscale`` say otherwise, with the
    run's resize rule; the set must have the run's classes and image shape (else one line saying what to pass).
    ``--stream``/``--max-memory`` apply either way."""
    from nnsee.data import load_splits
    from nnsee.errors import DataError

    if spec is None:
        splits = load_splits(run.data_spec, stream=data_opts.get("stream"), max_memory=data_opts.get("max_memory"))
    else:
        from nnsee.models.adopted import resize_rule

        if data_opts["size"] is None and data_opts["grayscale"] is None:
            shape = run.input_shape
            data_opts = {**data_opts, "size": shape[-1], "grayscale": shape[0] == 1}
        splits = _load(spec, int(run.config.get("seed", 0)), resize=resize_rule(run.meta), **data_opts)
    data = getattr(splits, split)
    if list(data.class_names) != list(run.class_names):
        raise DataError(f"{run.path} was trained on classes {run.class_names}, the data has {data.class_names}")
    if tuple(data.shape) != tuple(run.input_shape):
        raise DataError(f"{run.path} expects images of shape {tuple(run.input_shape)}, the data has "
                        f"{tuple(data.shape)}: pass --size {run.input_shape[-1]} and "
                        f"{'--grayscale' if run.input_shape[0] == 1 else '--rgb'}")
    return data


def _host(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A host to bind: not empty (uvicorn would listen on every interface) and without spaces."""
    if not value.strip() or any(c.isspace() for c in value):
        raise click.BadParameter(f"expected an address or name such as 127.0.0.1, ::1 or (every interface, on "
                                 f"purpose) 0.0.0.0; got {value!r}", ctx=ctx, param=param)
    return value


def _link(path: Path) -> str:
    """A clickable ``file://`` URI for ``path`` (absolute, percent-encoded: spaces, ``#``, non-ASCII)."""
    return path.resolve().as_uri()


def _print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, allow_nan=False, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nnsee")
def main() -> None:
    """nnsee: train an image classifier, then see what it learned."""


@main.group()
def data() -> None:
    """Look at a data set before training on it."""


#: Classes listed by ``nnsee data info`` as text (--json lists all).
MAX_CLASS_ROWS = 100


@data.command("info")
@click.argument("spec", callback=_spec)
@data_options
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_friendly_errors
def data_info(spec: str, as_json: bool, seed: int, **options: Any) -> None:
    """Describe SPEC: digits, fashion-mnist, mnist, a folder of class folders, an .npz, or a folder of IDX files."""
    from nnsee.data import describe

    info = describe(_load(spec, seed, **options))
    if as_json:
        _print_json(info)
        return
    click.echo(f"{info['source']}: {info['n']} images of shape {tuple(info['shape'])}, {len(info['classes'])} classes")
    click.echo("splits: " + ", ".join(f"{k} {v}" for k, v in info["splits"].items()))
    if info["pixel_range"] is None:  # a streamed set is not decoded to describe it
        click.echo("pixel values: not read (streamed from disk batch by batch)")
    else:
        low, high = info["pixel_range"]
        click.echo(f"pixel values {low:g}..{high:g}")
    rows = info["class_counts"][:MAX_CLASS_ROWS]
    width = max(len(repr(row["class"])) for row in rows)
    click.echo(f"  {'class':<{width}}  {'train':>7} {'val':>7} {'test':>7}")
    for row in rows:
        click.echo(f"  {row['class']!r:<{width}}  {row['train']:>7} {row['val']:>7} {row['test']:>7}")
    if len(info["class_counts"]) > len(rows):
        click.echo(f"  ... and {len(info['class_counts']) - len(rows)} more classes (--json lists every class)")
    if info["skipped"]:
        click.echo(f"skipped {info['skipped']} unusable files, e.g.:")
        for example in info["skipped_examples"]:
            click.echo(f"  {example}")


@main.command()
@click.option("--data", "spec", required=True, callback=_spec,
              help="digits, fashion-mnist, mnist, a folder, an .npz, IDX folder.")
@click.option("--model", "model_name", type=RegistryChoice("nnsee.models.registry:MODELS"), default="softmax",
              show_default=True)
@click.option("--hidden", default="300", show_default=True,
              help="Hidden layer sizes, e.g. 300 or 300,100 (mlp); one dense layer after the convs (cnn).")
@click.option("--activation", type=RegistryChoice("nnsee.models.mlp:ACTIVATIONS"), default="tanh", show_default=True)
@click.option("--channels", default="16,32", show_default=True, help="cnn: filters per conv-relu-pool block.")
@click.option("--kernel", type=int, default=5, show_default=True, help="cnn: odd filter size.")
@click.option("--l2", type=float, default=0.0, show_default=True,
              help="λ in (λ/2)·Σ‖W‖² (weights, not biases); 0 to 10.")
@click.option("--optimizer", type=RegistryChoice("nnsee.train.config:OPTIMIZERS"), default="adam", show_default=True)
@click.option("--epochs", type=EPOCHS, default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(1, 2**31 - 1), default=128, show_default=True)
@click.option("--lr", type=float, default=None, help="A finite number > 0. Default: sgd 0.05, adam 0.001, lbfgs 1.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--standardize", type=RegistryChoice("nnsee.data.standardize:MODES"), default="image", show_default=True)
@click.option("--snapshots", callback=_int_list, default="", help="Epochs whose weights to keep, e.g. 0,1,2,5,10.")
@click.option("--patience", type=EPOCHS, default=0, show_default=True, help="Early stopping patience (0: off).")
@device_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="The run folder.")
@click.option("--force", is_flag=True, help="Replace the run in OUT (only its own files, once the new run is set up).")
@click.option("--json", "as_json", is_flag=True, help="Print the final scores as one JSON object.")
@data_options
@_friendly_errors
def train(spec: str, model_name: str, hidden: str, activation: str, channels: str, kernel: int, l2: float,
          optimizer: str, epochs: int,
          batch_size: int, lr: float | None, seed: int, standardize: str, snapshots: list[int], patience: int,
          device: str, out: Path, force: bool, as_json: bool, **data_opts: Any) -> None:
    """Train a model and write its run folder OUT (under torchrun: DistributedDataParallel, rank 0 writes)."""
    import torch

    from nnsee.models import build_model
    from nnsee.train import TrainConfig, fit
    from nnsee.train.run import out_folder_state

    # Nothing is deleted here: a folder that is not a run is refused whatever the flags, and the old run is removed
    # (only its own files) by fit, right before the new run's first write, once the data and options have loaded.
    replace = out_folder_state(out) == "run"
    if replace and not force:
        raise click.UsageError(f"{out} already holds a run; continue it with `nnsee resume {out}`, "
                               "choose another --out, or pass --force to overwrite it")
    workers = data_opts.get("workers") or 0
    config = TrainConfig(optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size, l2=l2, seed=seed,
                         patience=patience, snapshots=snapshots, standardize=standardize, device=device,
                         workers=workers)
    given = {"hidden": _option_int_list(hidden, "--hidden"), "activation": activation,
             "channels": _option_int_list(channels, "--channels"), "kernel": kernel}
    ctx = click.get_current_context()
    given = {k: v for k, v in given.items() if ctx.get_parameter_source(k) is not click.core.ParameterSource.DEFAULT}
    options = _model_options(model_name, given)
    with _ranks(device) as dist:
        splits = _load(spec, seed, **data_opts)
        torch.manual_seed(seed)
        model = build_model(model_name, splits.shape, splits.train.n_classes, **options)
        result = fit(model, splits, config, out, replace=replace, dist=dist)
        _report_fit(result, as_json, dist)


@contextlib.contextmanager
def _ranks(device: str) -> Any:
    """The torchrun process group around a command (``None`` without torchrun). Only rank 0 prints: the other ranks
    drop warnings, and an nnsee error on them exits with status 1 without a line (rank 0 says it)."""
    from nnsee.distributed import setup, teardown

    dist = setup(device)
    if dist is not None and not dist.is_main:
        warnings.simplefilter("ignore")
    try:
        yield dist
    except NnseeError:
        if dist is None or dist.is_main:
            raise
        sys.exit(1)
    finally:
        teardown(dist)


def _model_options(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """The model options the user gave that the registered model ``name`` takes (read from its signature; a list of
    one number becomes the number where the model's default is a number); the others are ignored with a warning."""
    import inspect

    from nnsee.models.registry import MODELS

    params = inspect.signature(MODELS[name]).parameters
    options: dict[str, Any] = {}
    for key, value in given.items():
        if key not in params:
            warnings.warn(f"--{key} does not apply to --model {name}; ignored", stacklevel=2)
            continue
        default = params[key].default
        if isinstance(value, list) and isinstance(default, int) and not isinstance(default, bool):
            if len(value) != 1:
                raise click.BadParameter(f"--model {name} takes one number for --{key}, got {value}")
            value = value[0]
        options[key] = value
    return options


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--epochs", type=click.IntRange(1, EPOCHS.max), default=None,
              help="Train this many more epochs (default: up to the run's planned number).")
@click.option("--allow-changed-data", is_flag=True,
              help="Resume even though the data set changed since the run started (files added or removed): the "
                   "splits are rebuilt, so some images may move between training, validation and test.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--workers", type=click.IntRange(0, 256), default=None,
              help="Processes decoding a streamed set's batches (default: the run's --workers).")
@device_option
@_friendly_errors
def resume(run: Path, epochs: int | None, allow_changed_data: bool, as_json: bool, workers: int | None,
           device: str) -> None:
    """Continue training RUN bitwise as if it had never stopped (on the same kind of device; under torchrun, as
    `train` does there)."""
    from nnsee.train import resume as resume_run

    # the device run.json records is where the run was trained, not where it must continue
    with _ranks(device) as dist:
        _report_fit(resume_run(run, epochs, allow_changed_data=allow_changed_data, device=device, dist=dist,
                               workers=workers), as_json, dist)


def _report_fit(result: Any, as_json: bool, dist: Any = None) -> None:
    if dist is not None and not dist.is_main:  # rank 0 reports; the others only share its exit status
        if result.status == "interrupted":
            sys.exit(130)
        return
    test = result.metrics.get("test", {})
    val = result.metrics.get("val", {})
    if as_json:
        _print_json({"status": result.status, "epoch": result.epoch, "out": str(result.out),
                     "val_accuracy": val.get("accuracy"), "test_accuracy": test.get("accuracy")})
    else:
        line = f"{result.status} after {result.epoch} epochs"
        if val.get("accuracy") is not None:
            line += f"; validation accuracy {val['accuracy']:.4f}"
        if test.get("accuracy") is not None:
            line += f"; test accuracy {test['accuracy']:.4f} on {test['n']} images"
        click.echo(line)
        if result.out is not None:
            click.echo(f"run saved in {result.out}")
    if result.status == "interrupted":
        sys.exit(130)


def _input_shape(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    """``3x224x224``: channels x height x width, whole numbers in digits 0-9."""
    parts = value.lower().split("x")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
        raise click.BadParameter(f"expected CxHxW such as 3x224x224, got {value!r}", ctx=ctx, param=param)
    return tuple(int(p) for p in parts)


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The run folder to write (new or empty).")
@click.option("--code", default=None,
              help="package.module:factory or path/to/file.py:factory, a callable returning the nn.Module (imported: "
              "it runs with your permissions, now and whenever the run is loaded). Not with a .pt2 archive.")
@click.option("--code-args", default=None, help="The factory's keyword arguments as a JSON object.")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The state dict: .safetensors, or .pt/.pth from torch.save(model.state_dict(), ...) (read with "
              "weights_only=True); or a torch.export archive (.pt2, from torch.export.save), which needs no --code.")
@click.option("--input-shape", required=True, callback=_input_shape, help="CxHxW the model takes, e.g. 3x224x224.")
@click.option("--normalize", required=True,
              help="imagenet, MEAN1,MEAN2,MEAN3/STD1,STD2,STD3 or none: pixels in 0..1, then (x - mean) / std per "
              "channel.")
@click.option("--classes", "classes_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Class names, one a line or a JSON list, in the order of the model's outputs.")
@click.option("--data", "spec", default=None, callback=_spec,
              help="A data SPEC whose classes are the model's (for the report's data views and evaluate).")
@click.option("--output", default=None, help="For a model returning a tuple or dict: the index or key of the logits.")
@click.option("--resize", type=RegistryChoice("nnsee.data.image_decode:RESIZE_RULES"), default="square",
              show_default=True, help="How an image file becomes HxW: square (nnsee's: the centred square, Lanczos) "
              "or torchvision (shorter side to round(H*256/224), bilinear, then the centre crop: Resize(256) + "
              "CenterCrop(224) at 224).")
@device_option
@_friendly_errors
def adopt(out: Path, code: str | None, code_args: str | None, weights: Path, input_shape: tuple[int, ...],
          normalize: str, classes_file: Path | None, spec: str | None, output: str | None, resize: str,
          device: str) -> None:
    """Adopt a model trained elsewhere (your code + its weights, or a torch.export .pt2) into the run folder OUT."""
    from nnsee.adoption import adopt_archive, adopt_code, read_class_names
    from nnsee.models.adopted import parse_code_args, parse_output

    if classes_file is None and spec is None:
        raise click.UsageError("give the class names with --classes FILE or --data SPEC (or both, agreeing)")
    names = read_class_names(classes_file) if classes_file is not None else None
    common = dict(class_names=names, input_shape=input_shape, normalize=normalize, out=out,
                  output=parse_output(output), data=spec, device=device, resize=resize)
    if code is None:  # a torch.export archive (anything else is refused, saying it needs --code)
        if code_args is not None:
            raise click.UsageError("--code-args goes with --code; a .pt2 archive takes no code")
        run = adopt_archive(weights, **common)
    else:
        run = adopt_code(code, weights=weights, code_args=parse_code_args(code_args), **common)
    shape = "x".join(map(str, run.input_shape))
    click.echo(f"adopted {code or weights} into {run.path}: {len(run.class_names)} classes, input {shape}, "
               f"{run.standardizer.describe()}, resize {resize}")


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data", "spec", default=None, callback=_spec,
              help="Evaluate on this SPEC instead of the run's own test split.")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@data_options
@device_option
@_friendly_errors
def evaluate(run: Path, spec: str | None, split: str, as_json: bool, device: str, **data_opts: Any) -> None:
    """Accuracy, per-class accuracy and confusion matrix of RUN on a data split."""
    from nnsee.train import evaluate as evaluate_model
    from nnsee.train import load_run

    loaded = load_run(run, device=device)
    dataset = run_split(loaded, spec, split, data_opts)
    scores = evaluate_model(loaded.model, dataset, loaded.standardizer)
    scores["split"] = split
    if as_json:
        _print_json(scores)
        return
    click.echo(f"{split}: accuracy {scores['accuracy']:.4f} on {scores['n']} images")
    width = max(len(repr(n)) for n in loaded.class_names)
    for name, accuracy in scores["per_class_accuracy"].items():
        shown = "n/a" if accuracy is None else f"{accuracy:.4f}"
        click.echo(f"  {name!r:<{width}}  {shown}")
    click.echo("confusion matrix (rows: true class, columns: predicted):")
    for row in scores["confusion_matrix"]:
        click.echo("  " + " ".join(f"{v:5d}" for v in row))


def stream_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--stream/--no-stream`` and ``--max-memory`` exactly as :func:`data_options` defines and parses them, for a
    command that loads a run's own data (no SPEC, so none of the other data options)."""
    chosen = [p for p in data_options(lambda: None).__click_params__ if p.name in ("stream", "max_memory")]
    command.__click_params__ = [*getattr(command, "__click_params__", []), *chosen]  # as click.option does
    return command


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the report (default: RUN/report).")
@click.option("--max-units", type=click.IntRange(1, 4096), default=256, show_default=True,
              help="Hidden-unit cards per page.")
@click.option("--sort-units", type=RegistryChoice("nnsee.methods.hidden_units:SORT_KEYS"), default="outgoing-norm",
              show_default=True, help="Order of the unit cards: outgoing weight norm, ablation effect, or index.")
@click.option("--data", "data_path", type=click.Path(exists=True, path_type=Path), default=None,
              help="Where the run's data set lives now, if it was moved after training (the same images, checked by "
              "their counts).")
@click.option("--layers", default=None, metavar="NAMES",
              help="Comma-separated dotted layer names (see `nnsee layers RUN`) for the layer views, e.g. "
              "layer2,layer4 (default: the report's own choice).")
@click.option("--analysis", type=click.Path(exists=True, file_okay=False, path_type=Path), multiple=True,
              help="An `nnsee analyze` folder of this run: of its test split, the accuracy and confusion matrix are "
              "shown from it; of its training split, the top-9 images per feature map (when it holds the shown "
              "layers). Give it once per split; nothing is recomputed that an analysis holds.")
@click.option("--layer-images", callback=_int_list, default="", metavar="INDICES",
              help="Test images (comma-separated indices, e.g. 3,17) for the layer-by-layer section (default: the "
              "first correctly classified test image and the first mistake).")
@stream_options
@device_option
@_friendly_errors
def report(run: Path, out: Path | None, max_units: int, sort_units: str, data_path: Path | None, layers: str | None,
           analysis: tuple[Path, ...], layer_images: list[int], device: str, stream: bool | None,
           max_memory: int | None) -> None:
    """Write the static HTML report of RUN: templates, unit cards, why-this-score, evolution."""
    from nnsee.report import build_report

    chosen = _names_list(layers, "--layers") if layers is not None else None
    index = build_report(run, out, data=data_path, max_units=max_units, sort_units=sort_units, device=device,
                         layers=chosen, analysis=list(analysis) or None, stream=stream, max_memory=max_memory,
                         layer_images=layer_images or None)
    click.echo(f"report written: {index}\nopen it in a browser: {_link(index)}")


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--method", type=RegistryChoice(_view_names), default="contributions", show_default=True,
              help="contributions: score_k = W_k · x + b_k pixel by pixel (softmax and MLP runs); the others are "
                   "the registered attribution methods, for any model (see `nnsee methods`).")
@click.option("--target", default=None, help="Class (name or index) to explain; default: the predicted class.")
@click.option("--output", type=RegistryChoice("nnsee.methods.attribution.target:OUTPUTS"), default="logit",
              show_default=True,
              help="Explain the raw score or the softmax probability.")
@click.option("--option", "method_options", multiple=True, metavar="NAME=VALUE",
              help="A method option, e.g. samples=50 or kind=vargrad (repeatable; `nnsee methods` lists them).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the PNGs (default: RUN/explain).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (per image and class; with the map's deletion and insertion curves).")
@device_option
@_friendly_errors
def explain(run: Path, images: tuple[Path, ...], method: str, target: str | None, output: str,
            method_options: tuple[str, ...], out: Path | None, as_json: bool, device: str) -> None:
    """Why RUN gave each IMAGE its scores: a PNG per image, and with --json the numbers."""
    from nnsee.report.explain import explain_files
    from nnsee.train import load_run

    loaded = load_run(run, device=device)
    options = {}
    for item in method_options:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE such as samples=50, got {item!r}", param_hint="--option")
        options[name.strip()] = value.strip()
    results = explain_files(loaded, list(images), out if out is not None else run / "explain", method, target, output,
                            options, curves=as_json)
    if as_json:
        _print_json({"run": str(run), "method": method, "images": results})
        return
    for r in results:
        if r.get("blank"):
            click.echo(f"{r['image']}: blank (no contrast: every pixel {r['pixel_value']:.3g}), nothing to explain; "
                       "no map written")
        elif "classes" in r:
            best = r["classes"][r["predicted"]]
            click.echo(f"{r['image']}: {r['predicted']} (p={best['probability']:.3f}; logit {best['logit']:.3f} = "
                       f"{best['contribution_sum']:.3f} + bias {best['bias']:.3f}) -> {r['png']}")
        else:
            click.echo(f"{r['image']}: {r['predicted']} (p={r['probability']:.3f}); {method} of {r['target']} "
                       f"-> {r['png']}")


@main.command("methods")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def methods_command(as_json: bool) -> None:
    """The attribution methods (`nnsee explain --method`): what each computes, needs and takes."""
    from nnsee.methods.attribution.method import describe
    from nnsee.methods.attribution.registry import METHODS

    described = describe(METHODS)
    if as_json:
        _print_json({"methods": described})
        return
    for m in described:
        complete = "; complete: sums to f(x) − f(x′)" if m["complete"] else ""
        needs = f"; needs {', '.join(m['needs'])}" if set(m["needs"]) - {"gradients"} else ""
        click.echo(f"{m['name']}: {m['summary']}{needs}{complete}")
        for o in m["options"]:
            click.echo(f"    {o['name']} (default {o['default']}): {o['help']}")


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--target", required=True, help="A class (name or index), or LAYER:CHANNEL such as conv2:5.")
@click.option("--steps", type=click.IntRange(1, 10000), default=200, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The PNG to write (default: RUN/maximize/TARGET.png).")
@device_option
@_friendly_errors
def maximize(run: Path, target: str, steps: int, out: Path | None, device: str) -> None:
    """Activation maximization: the input that a class (or one feature map) responds to most."""
    from nnsee.methods.activation_max import activation_maximization, as_photo
    from nnsee.methods.attribution.target import parse_index
    from nnsee.render import image_tile, save_png, weight_tile
    from nnsee.report.explain import resolve_target
    from nnsee.train import load_run

    loaded = load_run(run, device=device)
    if ":" in target:
        layer, _, channel = target.rpartition(":")
        index = parse_index(channel)
        if index is None or not layer:
            raise click.BadParameter(f"expected LAYER:CHANNEL with the channel in digits 0-9, such as conv2:5; "
                                     f"got {target!r}", param_hint="--target")
        goal: Any = (layer, index)
    else:
        goal = resolve_target(target, list(loaded.class_names))
    image = activation_maximization(loaded.model, goal, loaded.input_shape, steps=steps)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in target)
    where = out if out is not None else run / "maximize" / f"{safe}.png"
    upscale = max(1, round(168 / loaded.input_shape[-1]))
    if image.shape[0] == 3:  # a colour model: the image its input would be, in pixels
        photo, clipped = as_photo(image, loaded.standardizer)
        path = save_png(image_tile(photo, upscale), where)
        click.echo(f"{path} (colour image in pixels: the run's standardization undone, {clipped:.1%} of values "
                   "clipped to 0..1)")
        return
    scale = float(np.abs(image).max())
    path = save_png(weight_tile(image, scale, upscale), where)
    click.echo(f"{path} (standardized input space, red +, blue -, scale ±{scale:.3g})")


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo"), show_default=True)
@click.option("--fashion/--no-fashion", default=None,
              help="Include Fashion-MNIST (default: when its files are installed).")
@_friendly_errors
def demo(out: Path, fashion: bool | None) -> None:
    """The main job: built-in digits -> softmax, MLP and CNN -> reports, two studies, a landing page and a tour."""
    from nnsee.demo import run_demo

    run_demo(out, fashion=fashion, say=click.echo)
    click.echo(f"done. Open the reports in a browser: {_link(out / 'index.html')} (guided tour: "
               f"{_link(out / 'tour.html')})")


@main.group()
def study() -> None:
    """Experiments that train several runs and compare them."""


@study.command("overfit")
@click.option("--data", "spec", required=True, callback=_spec, help="A data SPEC, as for train.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--per-class", default="40,200", show_default=True, help="Training images per class, e.g. 40,200.")
@click.option("--l2", "l2_values", default=None, help="L2 values to compare, e.g. 0,0.03,0.3.")
@click.option("--hidden", type=click.IntRange(1, 65536), default=300, show_default=True)
@click.option("--epochs", type=click.IntRange(1, EPOCHS.max), default=None, help="L-BFGS epochs per run.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the study's summary as one JSON object.")
@data_options
@device_option
@_friendly_errors
def study_overfit(spec: str, out: Path, per_class: str, l2_values: str | None, hidden: int, epochs: int | None,
                  seed: int, as_json: bool, device: str, **data_opts: Any) -> None:
    """Train the same network on few and more examples, with and without L2, and compare (writes OUT/index.html)."""
    from nnsee.report.build import check_report_folder
    from nnsee.report.study import build_study_report
    from nnsee.studies.overfit import overfit_study

    check_report_folder(out)  # before any run trains

    options: dict[str, Any] = {"per_class": _option_int_list(per_class, "--per-class"), "hidden": hidden, "seed": seed}
    if l2_values:
        from nnsee.train.config import TrainConfig

        try:
            options["l2_values"] = [float(v) for v in l2_values.split(",")]
        except ValueError:
            raise click.BadParameter(f"expected numbers like 0,0.03,0.3, got {l2_values!r}") from None
        for l2 in options["l2_values"]:
            TrainConfig(optimizer="lbfgs", l2=l2)  # each λ checked where every setting is, before any run trains
    if epochs:
        options["epochs"] = epochs
    splits = _load(spec, seed, **data_opts)
    result = overfit_study(splits, out=out / "runs", device=device, **options)
    index = build_study_report(result, out)
    if as_json:
        _print_json({"report": str(index), "runs": result.summary()})
        return
    for row in result.summary():
        click.echo(f"{row['name']:18s} train {row['train_accuracy']:.3f}  val {row['val_accuracy']:.3f}  "
                   f"high-frequency share {row['noisiness_high_frequency_share_mean']:.3f}")
    click.echo(f"study report: {_link(index)}")


@study.command("standardization")
@click.option("--data", "spec", required=True, callback=_spec, help="A data SPEC, as for train.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--epochs", type=click.IntRange(1, EPOCHS.max), default=15, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
@data_options
@device_option
@_friendly_errors
def study_standardization(spec: str, out: Path, epochs: int, seed: int, device: str, **data_opts: Any) -> None:
    """Softmax regression trained under each standardization: the inputs and the templates side by side."""
    from nnsee.report.build import check_report_folder
    from nnsee.report.standardization_study import build_standardization_report
    from nnsee.studies.standardization import standardization_study

    check_report_folder(out)  # before any run trains

    result = standardization_study(_load(spec, seed, **data_opts), epochs=epochs, seed=seed, device=device)
    for r in result.results:
        click.echo(f"{r.mode:6s} validation {r.val_accuracy:.3f}  test {r.test_accuracy:.3f}")
    click.echo(f"study report: {_link(build_standardization_report(result, out))}")


@study.command("roar")
@click.option("--data", "spec", required=True, callback=_spec, help="A data SPEC, as for train (in memory).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--model", "model_name", type=click.Choice(["mlp", "cnn"]), default="mlp", show_default=True)
@click.option("--hidden", default="100", show_default=True, help="mlp: units per hidden layer, e.g. 100 or 128,64.")
@click.option("--channels", default="8,16", show_default=True, help="cnn: filters per conv-relu-pool block.")
@click.option("--epochs", type=click.IntRange(1, EPOCHS.max), default=5, show_default=True,
              help="Epochs of every training (the first and each retraining).")
@click.option("--fractions", default="10,30,50,70", show_default=True,
              help="Percentages of each image's pixels removed, e.g. 10,30,50,70.")
@click.option("--methods", default="saliency,gradient-x-input,integrated-gradients,occlusion", show_default=True,
              help="Registered methods compared (a random order is always added).")
@click.option("--per-class", type=click.IntRange(1, 10**6), default=50, show_default=True,
              help="Training images per class (a seeded stratified subset: every retraining is on them).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the study's summary as one JSON object.")
@data_options
@device_option
@_friendly_errors
def study_roar(spec: str, out: Path, model_name: str, hidden: str, channels: str, epochs: int, fractions: str,
               methods: str, per_class: int, seed: int, as_json: bool, device: str, **data_opts: Any) -> None:
    """Remove and retrain (ROAR): each method's top pixels removed from every image, the model retrained, tested."""
    from nnsee.report.build import check_report_folder
    from nnsee.report.roar_study import build_roar_report
    from nnsee.studies.roar import roar_study

    check_report_folder(out, ["index.html", "study.json"])  # before any run trains
    percents = _option_int_list(fractions, "--fractions")
    options: dict[str, Any] = ({"hidden": _option_int_list(hidden, "--hidden")} if model_name == "mlp" else
                               {"channels": _option_int_list(channels, "--channels")})
    say = (lambda _: None) if as_json else click.echo
    result = roar_study(_load(spec, seed, **data_opts), methods=[m.strip() for m in methods.split(",") if m.strip()],
                        fractions=[p / 100 for p in percents], model=model_name, model_options=options,
                        epochs=epochs, seed=seed, device=device, per_class=per_class, say=say)
    index = build_roar_report(result, out)
    if as_json:
        _print_json({"report": str(index), **result.summary()})
        return
    click.echo(f"{result.seconds:.1f} s; study report: {_link(index)}")


@main.command()
@click.argument("runs", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--watch", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="A run folder to follow while nnsee train (or resume) writes it, on the page /watch: learning "
              "curves, class templates and hidden units after every epoch (it need not exist yet).")
@click.option("--host", default="127.0.0.1", show_default=True, callback=_host,
              help="Interface to bind (loopback unless you mean it).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True,
              help="Port to listen on (the Host check needs it, so not 0).")
@click.option("--limit-concurrency", type=click.IntRange(min=1), default=32, show_default=True,
              help="Uploads handled at once; one more waits up to 5 s, then gets 503. Open connections are capped "
              "at 8 times this; a request's headers must arrive within 5 s.")
@device_option
@_friendly_errors
def serve(runs: tuple[Path, ...], watch: Path | None, host: str, port: int, limit_concurrency: int,
          device: str) -> None:
    """The live page: draw or upload an image and watch the units and maps of RUN... (FastAPI + uvicorn); with
    --watch RUN, follow a run while it trains."""
    from nnsee.serve import create_app
    from nnsee.serve.server import LOOPBACK, allowed_hosts, run_server

    if host not in LOOPBACK:
        click.echo("=" * 72 + f"\nWARNING: binding {host}, not loopback: anyone who can reach this machine on port "
                   f"{port} can use this page, see every served run's class names and weights, and make it compute "
                   "(no authentication).\n" + "=" * 72, err=True)
    if not runs and watch is None:
        raise click.UsageError("name at least one RUN folder to serve, or one to follow with --watch RUN")
    app = create_app(list(runs), allowed_hosts=allowed_hosts(host, port), device=device, watch=watch)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"nnsee serving {len(runs)} run(s) on http://{shown}:{port}/, computing on {device} (Ctrl-C stops)")
    if watch is not None:
        click.echo(f"watching {watch} on http://{shown}:{port}/watch")
    run_server(app, host, port, limit_concurrency)


@main.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--probe", is_flag=True, help="Also measure the fields a chain does not define (after a residual add: "
              "the union over every branch; about 0.4 s a layer of a ResNet-18 at 224 px).")
@_friendly_errors
def layers(run: Path, as_json: bool, probe: bool) -> None:
    """Every named layer of RUN: dotted name (what every layer option takes), type, output shape for the run's input,
    receptive field and stride (where a chain of layers defines them, or with --probe through the branches), weights."""
    from nnsee.models.layer_table import as_json as rows_json
    from nnsee.models.layer_table import format_table, layer_table
    from nnsee.train import load_run

    loaded = load_run(run)
    rows = layer_table(loaded.model, loaded.input_shape)
    if probe:
        from nnsee.methods.dataset_views.layer_fields import probed_rows

        rows = probed_rows(loaded.model, rows, loaded.input_shape)
    if as_json:
        _print_json({"run": str(run), "input_shape": list(loaded.input_shape), "layers": rows_json(rows)})
        return
    click.echo(f"{run}: input {'x'.join(map(str, loaded.input_shape))}, {len(rows)} named layers")
    for line in format_table(rows):
        click.echo(line)


if __name__ == "__main__":  # python -m nnsee.cli: run the module proper, where every command is registered
    importlib.import_module("nnsee.cli").main()
else:  # nnsee.analysis.command imports this module for its options: registered once both are defined
    main.add_command(importlib.import_module("nnsee.analysis.command").analyze_command)
