"""``nnsee.adopt`` (:func:`adopt`): put a model trained elsewhere into a run folder, so every view of nnsee works on it.

The run holds ``run.json`` (the model spec of :mod:`nnsee.models.adopted`: import path, arguments, output selector;
the input shape, the normalization, the class names, the data spec if any) and ``model.safetensors`` (the weights,
in float32). It never holds code: loading the run imports the recorded code again.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnsee.data.image_decode import RESIZE_RULES, check_resize
from nnsee.data.standardize import Standardizer, parse_normalize
from nnsee.errors import DataError, RunError, first_few
from nnsee.models import adopted
from nnsee.train.run import Run, out_folder_state, read_meta, save_run

#: Longest class name accepted (characters).
MAX_NAME = 1000


def adopt(model: nn.Module | str | os.PathLike[str] | torch.export.ExportedProgram, *,
          class_names: Sequence[str] | None = None, input_shape: Sequence[int] = (3, 224, 224),
          normalize: str | Standardizer = "imagenet", out: str | os.PathLike[str], code: str | None = None,
          code_args: Mapping[str, Any] | None = None, output: int | str | None = None, data: str | None = None,
          copy_model: bool = True, device: str | torch.device | None = None, resize: str = "square") -> Run:
    """Write the run folder ``out`` (new or empty) for ``model`` and return its :class:`~nnsee.train.Run`.

    ``model`` is an ``nn.Module``, or a ``torch.export`` program or the path of its ``.pt2`` archive: then no
    ``code`` is taken, the archive is kept in the run (``model.pt2``, its sha256 in run.json) and the model is its
    unflattened graph (:mod:`nnsee.models.exported`).

    ``input_shape`` is (C, H, W) with H = W; ``normalize`` is ``"imagenet"``, ``"M1,M2,M3/S1,S2,S3"``, ``"none"``
    or a :class:`Standardizer` (pixels in 0..1, then ``(x - mean_c) / std_c``); ``output`` picks the logits from a
    tuple/dict output; ``class_names`` must number the model's outputs (default: ``data``'s classes, a data SPEC
    loaded at H px, grey or RGB as C says, which the report and ``evaluate`` then use).

    ``resize`` is how an image file (``data``'s folder, ``nnsee explain``'s files, the live page's uploads, ``evaluate
    --data``) becomes H x W: ``"square"`` (nnsee's: the centred square, Lanczos) or ``"torchvision"`` (the shorter
    side to ``round(H * 256 / 224)``, bilinear, then the centre crop: ``Resize(256)`` + ``CenterCrop(224)`` at 224).

    ``code`` (``"package.module:factory"`` or ``"path/file.py:factory"``, called with ``code_args``) is how a later
    process rebuilds the model: without it the returned run works in this process only, and ``load_run(out)``
    refuses, asking for ``load_run(out, model=...)``. The model is deep-copied first (``copy_model=False`` uses it
    in place): the copy is put in eval mode and float32 (said on stderr), and gets the output hook.

    ``device`` (``auto``, ``cpu``, ``cuda[:N]``, ``mps``; checked before anything is read) is where the returned
    run's model ends; the checks and the saved weights are computed on the CPU, and run.json records no device.
    """
    from nnsee.train.config import resolve_device

    place = resolve_device(device) if device is not None else None
    out = Path(out)
    if out_folder_state(out) != "new":
        raise RunError(f"{out} already holds a run: adopt into a new or empty folder (--out)")
    from nnsee.models.registry import check_input_shape

    check_resize(resize, "resize (--resize)", RunError)
    shape = check_input_shape(input_shape)
    if shape[1] != shape[2]:
        raise RunError(f"the input shape {shape[0]}x{shape[1]}x{shape[2]} is not square; nnsee reads square images "
                       "(H = W): give the side the model is used at")
    standardizer = parse_normalize(normalize, shape[0]) if isinstance(normalize, str) else normalize
    if not isinstance(standardizer, Standardizer):
        raise DataError(f"normalize must be a string or a Standardizer, got {type(normalize).__name__}")
    splits = _data(data, shape, resize) if data is not None else None
    names = _class_names(class_names, splits)
    archive = model if isinstance(model, (str, os.PathLike, torch.export.ExportedProgram)) else None
    if archive is not None:
        if code is not None:
            raise RunError("code= is not used with a torch.export archive, which holds the model itself (--code "
                           "takes a factory whose state dict --weights gives); drop it")
        model, copy_model = _exported(archive, shape), False
    if code is not None:
        adopted.split_code(code)
    if copy_model:
        try:
            model = copy.deepcopy(model)
        except Exception as exc:  # a module holding something that cannot be copied
            raise RunError(f"could not copy the model ({type(exc).__name__}: {exc}); pass copy_model=False to let "
                           "nnsee use it in place (eval mode, float32, an output hook)") from None
    model = adopted.attach_output(adopted.prepare(model), output)
    width = adopted.output_width(model, shape, None)
    if width != len(names):
        raise DataError(f"the model gives {width} outputs, but {len(names)} class names were given "
                        f"({first_few(names)}); give one name per output, in the model's order")
    spec = {"kind": adopted.KIND, "code": code, "code_args": dict(code_args or {}), "output": output,
            "input_shape": list(shape), "n_classes": width}
    if resize != RESIZE_RULES[0]:  # square, the default, is not written: run.json stays as it was before the field
        spec["resize"] = resize
    meta: dict[str, Any] = {"class_names": names, "model": spec, "input_shape": list(shape),
                            "standardization": standardizer.to_dict(), "status": "adopted",
                            "data": splits.spec if splits is not None else None}
    if archive is not None:
        from nnsee.models import exported

        spec["export"] = exported.keep_archive(archive, out)
    try:
        save_run(out, model, meta)
    except BaseException:
        if archive is not None:
            (out / exported.ARCHIVE_FILE).unlink(missing_ok=True)
        raise
    return Run(path=out, model=model.to(place) if place is not None else model, meta=read_meta(out))


def _exported(archive: str | os.PathLike[str] | torch.export.ExportedProgram, shape: tuple[int, int, int]
              ) -> nn.Module:
    """The unflattened module of an export archive (a path) or program, checked for ``shape`` and a free batch."""
    from nnsee.models import exported

    if isinstance(archive, torch.export.ExportedProgram):
        module = exported.module_of(exported.checked_program(archive, shape, "the exported program"))
        exported.check_batch_free(module, shape, "the exported program")
        return module
    if not exported.is_archive_name(archive):
        raise RunError(f"{archive}: a model given by its path must be a torch.export archive (.pt2); give an "
                       "nn.Module, or a .pt2 file")
    module = exported.module_of(exported.load_archive(archive, shape))
    exported.check_batch_free(module, shape, archive)
    return module


def _data(spec: str, shape: tuple[int, int, int], resize: str) -> Any:
    from nnsee.data import load_data

    splits = load_data(spec, size=shape[1], grayscale=shape[0] == 1, resize=resize)
    if tuple(splits.shape) != shape:
        raise DataError(f"the data {spec} has images of shape {tuple(splits.shape)}, the model takes {shape}; give "
                        "data of the model's size and channels")
    return splits


def _class_names(given: Sequence[str] | None, splits: Any) -> list[str]:
    from nnsee.data.npz import MAX_CLASSES

    if given is None and splits is None:
        raise DataError("give the class names (--classes FILE, class_names=[...]) or a data set whose classes they "
                        "are (--data SPEC)")
    names = list(given) if given is not None else list(splits.class_names)
    if splits is not None and names != list(splits.class_names):
        raise DataError(f"the class names ({first_few(names)}) differ from the data's ({first_few(splits.class_names)})"
                        "; give one or the other")
    if not 1 <= len(names) <= MAX_CLASSES:
        raise DataError(f"give 1 to {MAX_CLASSES:,} class names, got {len(names):,}")
    bad = [n for n in names if not isinstance(n, str) or not n.strip() or len(n) > MAX_NAME]
    if bad:
        raise DataError(f"class names must be non-empty text of at most {MAX_NAME} characters: {first_few(bad)}")
    repeated = sorted({n for n in names if names.count(n) > 1}) if len(set(names)) != len(names) else []
    if repeated:
        raise DataError(f"class names must differ, these repeat: {first_few(repeated)}")
    return names


def read_class_names(path: str | os.PathLike[str]) -> list[str]:
    """``--classes FILE``: a JSON list of strings, or one name a line (blank lines and surrounding spaces dropped)."""
    import json

    from nnsee.io import open_regular

    path = Path(path)
    try:
        with open_regular(path, "the class names", max_bytes=4 << 20, error=DataError) as f:
            text = f.read((4 << 20) + 1).decode("utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path} does not exist; --classes takes a file of class names, one a line") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"could not read {path}: {exc}") from None
    if text.lstrip().startswith("["):
        try:
            names = json.loads(text)
        except ValueError as exc:
            raise DataError(f"{path} starts like a JSON list but is not JSON ({exc})") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DataError(f"{path}: a JSON list of class names must hold only strings")
        return names
    return [line.strip() for line in text.splitlines() if line.strip()]


def adopt_code(code: str, *, weights: str | os.PathLike[str], code_args: Mapping[str, Any] | None = None,
               **options: Any) -> Run:
    """``nnsee adopt``: build the model by ``code`` (import said on stderr), load ``weights`` (checked), adopt it
    (``options`` as :func:`adopt` takes them)."""
    from nnsee.train.config import resolve_device

    if options.get("device") is not None:
        resolve_device(options["device"])  # a device this machine lacks: refused before anything is read
    check_resize(options.get("resize", "square"), "resize (--resize)", RunError)  # before any code is imported
    if out_folder_state(options["out"]) != "new":
        raise RunError(f"{options['out']} already holds a run: adopt into a new or empty folder (--out)")
    adopted.refuse_export_archive(weights)  # before the user's code is imported: an archive takes no --code
    model = adopted.build(code, code_args)
    adopted.prepare(model)
    adopted.load_weights_into(model, weights)
    return adopt(model, code=code, code_args=code_args, copy_model=False, **options)


def adopt_archive(archive: str | os.PathLike[str], **options: Any) -> Run:
    """``nnsee adopt --weights model.pt2`` (no ``--code``): :func:`adopt` of the archive (``options`` as it takes
    them). A ``--weights`` state dict without ``--code`` is refused, saying what each needs."""
    from nnsee.models import exported

    if options.get("device") is not None:
        from nnsee.train.config import resolve_device

        resolve_device(options["device"])  # before anything is read
    check_resize(options.get("resize", "square"), "resize (--resize)", RunError)
    if not exported.is_archive_name(archive):
        raise RunError(f"{archive} is not a torch.export archive (.pt2): a state dict needs the model's code, --code "
                       "package.module:factory (or give a .pt2 from torch.export.save, which needs none)")
    return adopt(archive, **options)
