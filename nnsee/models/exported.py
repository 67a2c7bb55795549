"""Adopted models from a ``torch.export`` archive (``.pt2``): no user code, layers named by ``torch.export.unflatten``.

Loading (:func:`load_archive`): the file's size and its zip directory are checked first (at most
:data:`MAX_ARCHIVE_BYTES`, stored or unpacked), then ``torch.export.load`` reads it with every ``torch.load`` inside
forced to ``weights_only=True`` (torch itself would unpickle an archive's pickled tensors and constants with
``weights_only=False``, which runs code; the process's added safe globals are off meanwhile). The program must take one
image tensor ``(N, C, H, W)`` of the run's ``--input-shape`` and must not update buffers when run (an export of a
model in train mode: BatchNorm's batch statistics).

The module (:func:`module_of`): ``torch.export.unflatten`` gives one graph module per original submodule, under its
dotted name (``layer3.1.conv2``). A leaf whose graph is exactly one standard operation on its own parameters
(``aten.conv2d``, ``linear``, eval ``batch_norm``, ``max_pool2d``, ``avg_pool2d``, ``adaptive_avg_pool2d``,
``flatten``) is
replaced by the ``torch.nn`` module that calls that same operation with the same arguments and the same parameter
tensors, so conv layers are ``nn.Conv2d`` to every view (Grad-CAM, filters, receptive fields) and the numbers equal
the model built from code. ReLUs stay graph operations: there are no ``nn.ReLU`` modules whose backward rule guided
backprop and the deconvnet could change, so those two refuse (:mod:`nnsee.models.capabilities`). The unflattened
module's input check is off and the batch size is free: :func:`check_batch_free` proves, when adopting, that a batch
of 3 gives what 3 single images give (an export whose graph fixed the batch is refused, saying how to export).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnsee.errors import RunError
from nnsee.io import open_regular

#: The archive's name in the run folder (a copy of the user's file; run.json records its sha256).
ARCHIVE_FILE = "model.pt2"
#: Largest archive read, as stored and as unpacked (2 GiB: 500M float32 values, more than a ViT-L).
MAX_ARCHIVE_BYTES = 2 << 30
#: Most files in the archive's zip directory.
MAX_MEMBERS = 200_000
DYNAMIC_BATCH = ("torch.export.export(model.eval(), (x,), dynamic_shapes=({0: torch.export.Dim('batch')},)) "
                 "then torch.export.save(program, 'model.pt2')")


def is_archive_name(path: str | os.PathLike[str]) -> bool:
    """A ``.pt2`` file name (how ``--weights`` tells an export archive from a state dict)."""
    return Path(path).suffix.lower() == ".pt2"


def sha256_of(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= 240 else text[:239] + "…"


def _check_zip(path: Path) -> None:
    """The archive's size and zip directory, before torch reads it: a zip, at most MAX_ARCHIVE_BYTES either way."""
    try:
        with open_regular(path, "the export archive") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_ARCHIVE_BYTES:
                raise RunError(f"{path} is {size:,} bytes, more than the {MAX_ARCHIVE_BYTES:,} an export archive may "
                               "take here; export the model at float32 without extra constants")
            try:
                with zipfile.ZipFile(f) as archive:
                    members = archive.infolist()
            except (zipfile.BadZipFile, EOFError, ValueError) as exc:
                raise RunError(f"{path} is not a torch.export archive ({_first_line(exc)}: not a complete zip file; "
                               "a truncated copy?); save it with torch.export.save(program, 'model.pt2')") from None
    except FileNotFoundError:
        raise RunError(f"{path} does not exist; give the export archive with --weights") from None
    except OSError as exc:
        raise RunError(f"could not read {path}: {exc.strerror or exc}") from None
    unpacked = sum(m.file_size for m in members)
    if len(members) > MAX_MEMBERS or unpacked > MAX_ARCHIVE_BYTES:
        raise RunError(f"{path} unpacks to {len(members):,} files of {unpacked:,} bytes, more than an export archive "
                       f"may hold here ({MAX_MEMBERS:,} files, {MAX_ARCHIVE_BYTES:,} bytes)")


@contextlib.contextmanager
def _weights_only_loads() -> Iterator[None]:
    """Inside: every ``torch.load`` call is ``weights_only=True`` with the process's added safe globals off."""
    original = torch.load
    added = torch.serialization.get_safe_globals()

    def safe_load(*args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        return original(*args, **kwargs)

    torch.serialization.clear_safe_globals()
    torch.load = safe_load  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.load = original  # type: ignore[assignment]
        torch.serialization.add_safe_globals(added)


def load_archive(path: str | os.PathLike[str], input_shape: Sequence[int]) -> torch.export.ExportedProgram:
    """The checked :class:`~torch.export.ExportedProgram` in ``path`` (see the module doc), or one :class:`RunError`."""
    path = Path(path)
    _check_zip(path)
    import warnings

    try:
        with _weights_only_loads(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch's own pytree deprecation notes while loading
            program = torch.export.load(str(path))
    except Exception as exc:
        if "weights_only" in str(exc) or "Unpickl" in type(exc).__name__:
            raise RunError(f"{path} holds pickled Python objects besides tensors ({_first_line(exc)[:160]}); nnsee "
                           "reads only tensors: export a model whose weights and constants are plain tensors") from None
        raise RunError(f"{path} is not a readable torch.export archive ({_first_line(exc)}); save one with "
                       "torch.export.save(torch.export.export(model.eval(), (x,)), 'model.pt2')") from None
    if not isinstance(program, torch.export.ExportedProgram):
        raise RunError(f"{path} did not load as a torch.export program; save one with torch.export.save")
    return checked_program(program, input_shape, path)


def checked_program(program: torch.export.ExportedProgram, input_shape: Sequence[int],
                    path: str | os.PathLike[str]) -> torch.export.ExportedProgram:
    """``program`` when it takes one image batch of ``input_shape`` and updates no buffers; else one RunError."""
    shape = tuple(input_shape)
    signature = program.graph_signature
    users = list(signature.user_inputs)
    if len(users) != 1:
        raise RunError(f"{path}: the exported model takes {len(users)} inputs ({', '.join(map(str, users[:5]))}); "
                       "nnsee explains models of one image tensor (N, C, H, W)")
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == users[0])
    value = node.meta.get("val")
    if not isinstance(value, torch.Tensor) or value.ndim != 4:
        raise RunError(f"{path}: the exported model's input is not an image batch (N, C, H, W) but "
                       f"{getattr(value, 'shape', type(value).__name__)}")
    have = [int(d) if isinstance(d, int) else None for d in value.shape[1:]]
    if any(h is not None and h != s for h, s in zip(have, shape, strict=True)):
        shown = "x".join("?" if h is None else str(h) for h in have)
        raise RunError(f"{path} was exported for input {shown} (C x H x W), but --input-shape is "
                       f"{'x'.join(map(str, shape))}; give --input-shape {shown} or export at the shape you want")
    training = [op_name(n) for n in program.graph.nodes if n.op == "call_function" and hasattr(n.target, "_schema")
                and any(_arguments(n).get(k) is True for k in ("training", "train"))]
    if signature.buffers_to_mutate or training:
        some = ", ".join(list(signature.buffers_to_mutate.values())[:3] or sorted(set(training))[:3])
        raise RunError(f"{path}: the exported model updates its buffers when run or uses batch statistics ({some}): it "
                       f"was exported in train mode; export the model in eval mode: {DYNAMIC_BATCH}")
    return program


# ---------------------------------------------------------------------------------------- the unflattened module

def _arguments(node: torch.fx.Node) -> dict[str, Any]:
    """The call's arguments by name, defaults filled in from the op's schema."""
    schema = node.target._schema  # type: ignore[union-attr]
    bound: dict[str, Any] = {}
    for i, arg in enumerate(schema.arguments):
        if i < len(node.args):
            bound[arg.name] = node.args[i]
        elif arg.name in node.kwargs:
            bound[arg.name] = node.kwargs[arg.name]
        else:
            bound[arg.name] = arg.default_value if arg.has_default_value() else None
    return bound


def _pair(value: Any, default: Sequence[int]) -> tuple[int, ...]:
    if value is None or (isinstance(value, (list, tuple)) and not value):
        return tuple(default)
    if isinstance(value, int):
        return (value, value)
    return tuple(int(v) for v in value) if len(value) == 2 else (int(value[0]),) * 2


def _conv(a: dict[str, Any], p: Callable[[str], Any]) -> nn.Module:
    weight, bias = p("weight"), p("bias")
    if weight is None or weight.ndim != 4:
        raise ValueError("not a 2-d convolution")
    padding = a["padding"] if isinstance(a["padding"], str) else _pair(a["padding"], (0, 0))
    groups = int(a["groups"] or 1)
    conv = nn.Conv2d(weight.shape[1] * groups, weight.shape[0], tuple(weight.shape[2:]), _pair(a["stride"], (1, 1)),
                     padding, _pair(a["dilation"], (1, 1)), groups, bias=bias is not None, device="meta")
    conv.weight, conv.bias = weight, bias
    return conv


def _linear(a: dict[str, Any], p: Callable[[str], Any]) -> nn.Module:
    weight, bias = p("weight"), p("bias")
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, device="meta")
    linear.weight, linear.bias = weight, bias
    return linear


def _batch_norm(a: dict[str, Any], p: Callable[[str], Any], ndim: int) -> nn.Module:
    mean, var = p("running_mean"), p("running_var")
    if a["training"] or mean is None or var is None or (p("weight") is None) != (p("bias") is None):
        raise ValueError("not an eval batch norm with running statistics")
    kind = {4: nn.BatchNorm2d, 3: nn.BatchNorm1d, 2: nn.BatchNorm1d}[ndim]
    bn = kind(mean.shape[0], eps=float(a["eps"]), momentum=float(a["momentum"]), affine=p("weight") is not None,
              device="meta")
    if bn.affine:
        bn.weight, bn.bias = p("weight"), p("bias")
    bn.running_mean, bn.running_var = mean, var
    return bn


def _max_pool(a: dict[str, Any], p: Callable[[str], Any]) -> nn.Module:
    kernel = _pair(a["kernel_size"], ())
    return nn.MaxPool2d(kernel, _pair(a["stride"], kernel), _pair(a["padding"], (0, 0)), _pair(a["dilation"], (1, 1)),
                        ceil_mode=bool(a["ceil_mode"]))


def _avg_pool(a: dict[str, Any], p: Callable[[str], Any]) -> nn.Module:
    kernel = _pair(a["kernel_size"], ())
    return nn.AvgPool2d(kernel, _pair(a["stride"], kernel), _pair(a["padding"], (0, 0)), bool(a["ceil_mode"]),
                        bool(a["count_include_pad"]), a["divisor_override"])


#: aten op name -> the nn module calling it (a leaf graph of exactly that one call becomes that module).
_MODULES: dict[str, Callable[..., nn.Module]] = {
    "aten.conv2d": _conv, "aten.linear": _linear, "aten.max_pool2d": _max_pool, "aten.avg_pool2d": _avg_pool,
    "aten.adaptive_avg_pool2d": lambda a, p: nn.AdaptiveAvgPool2d(tuple(a["output_size"])),
    "aten.flatten": lambda a, p: nn.Flatten(int(a["start_dim"]), int(a["end_dim"])),
}


def single_op(module: nn.Module) -> torch.fx.Node | None:
    """The one ``call_function`` node of a graph module's graph (placeholders, parameters and the output aside)."""
    graph = getattr(module, "graph", None)
    if not isinstance(graph, torch.fx.Graph):
        return None
    calls = [n for n in graph.nodes if n.op not in ("placeholder", "get_attr", "output")]
    return calls[0] if len(calls) == 1 and calls[0].op == "call_function" else None


def op_name(node: torch.fx.Node) -> str:
    """``aten.conv2d`` for ``torch.ops.aten.conv2d.default`` (the overload dropped)."""
    target = node.target
    packet = getattr(target, "overloadpacket", None)
    return f"aten.{packet.__name__}" if packet is not None else getattr(target, "__name__", str(target))


def describe_graph(module: nn.Module) -> str | None:
    """``graph: aten.relu_`` for a graph module of one operation, ``graph: 7 ops`` for a bigger one; None if not a graph
    module (for layer tables)."""
    graph = getattr(module, "graph", None)
    if not isinstance(graph, torch.fx.Graph) or isinstance(module, nn.Sequential):
        return None
    node = single_op(module)
    if node is not None:
        return f"graph: {op_name(node)}"
    calls = sum(n.op in ("call_function", "call_method") for n in graph.nodes)
    return f"graph: {calls} ops"


def _standard(module: nn.Module) -> nn.Module | None:
    """The ``torch.nn`` module equal to the leaf graph ``module``, or None when it is not one standard operation on
    the input and the module's own tensors."""
    node = single_op(module)
    if node is None or next(module.children(), None) is not None:
        return None
    outputs = [n for n in module.graph.nodes if n.op == "output"]
    inputs = [n for n in module.graph.nodes if n.op == "placeholder"]
    if len(inputs) != 1 or len(outputs) != 1 or outputs[0].args[0] is not node:
        return None
    name = op_name(node)
    if name not in _MODULES and name != "aten.batch_norm":
        return None
    a = _arguments(node)
    first = next(iter(node.target._schema.arguments)).name  # type: ignore[union-attr]
    if a[first] is not inputs[0]:
        return None
    tensors: dict[str, Any] = {}
    for key, value in a.items():
        if isinstance(value, torch.fx.Node) and value is not inputs[0]:
            if value.op != "get_attr":
                return None
            tensors[key] = getattr(module, str(value.target))
    leftover = [n for n in a.values() if isinstance(n, torch.fx.Node)]
    if len(leftover) != len(tensors) + 1:
        return None
    try:
        if name == "aten.batch_norm":
            standard = _batch_norm(a, tensors.get, getattr(inputs[0].meta.get("val"), "ndim", 4))
        else:
            standard = _MODULES[name](a, tensors.get)
        for key, value in [*standard._parameters.items(), *standard._buffers.items()]:
            if value is not None and value.is_meta:  # one the call does not use (num_batches_tracked): the module's
                setattr(standard, key, getattr(module, key))
    except (ValueError, KeyError, TypeError, IndexError, RuntimeError, AttributeError):
        return None
    return standard if set(standard.state_dict()) == set(module.state_dict()) else None


def standardize_leaves(root: nn.Module) -> int:
    """Replace every leaf graph of one standard operation (see the module doc) by its ``torch.nn`` module, in place;
    returns how many were replaced."""
    replaced = 0
    for name, module in list(root.named_modules()):
        standard = _standard(module) if name else None
        if standard is None:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = root.get_submodule(parent_name) if parent_name else root
        setattr(parent, child, standard.eval())
        replaced += 1
    return replaced


def module_of(program: torch.export.ExportedProgram) -> nn.Module:
    """The program unflattened to named layers, standard leaves as ``torch.nn`` modules, any batch size, eval mode."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch's own pytree deprecation notes while unflattening
        module = torch.export.unflatten(program)
    module.check_input_constraints = False
    keys = set(module.state_dict())
    standardize_leaves(module)
    if set(module.state_dict()) != keys:  # never: the same tensors under the same names
        raise RunError("unflattening the export archive changed its weights' names; report this to nnsee")
    return module.eval()


def check_batch_free(module: nn.Module, input_shape: Sequence[int], path: str | os.PathLike[str]) -> None:
    """A batch of 3 seeded images gives the 3 outputs of the images one at a time (rows equal to 1e-4 of the largest);
    an archive whose graph fixed its batch size is refused, saying how to export with a free batch dimension."""
    from torch.utils._pytree import tree_leaves

    x = torch.randn((3, *input_shape), generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            together = [t for t in tree_leaves(module(x)) if isinstance(t, torch.Tensor)]
            alone = [[t for t in tree_leaves(module(x[i:i + 1])) if isinstance(t, torch.Tensor)] for i in range(3)]
        ok = bool(together) and all(
            t.shape[:1] == (3,) and t.shape[1:] == parts[0].shape[1:]
            and torch.allclose(t, torch.cat(parts), rtol=1e-4, atol=1e-4 * float(t.abs().max().clamp(min=1)))
            for t, *parts in zip(together, *alone, strict=True))
    except Exception:  # a graph with the batch size written in (a view to (2, 512)) fails on other batches
        ok = False
    if not ok:
        raise RunError(f"{path}: the exported model does not run on batches of other sizes (its graph fixed the batch "
                       f"it was exported with); export it with a free batch dimension: {DYNAMIC_BATCH}")


# ------------------------------------------------------------------------------------------------- in a run folder

def keep_archive(source: str | os.PathLike[str] | torch.export.ExportedProgram, out: Path) -> dict[str, Any]:
    """Write the archive into the run folder ``out`` as :data:`ARCHIVE_FILE` (a copy of the file, or
    ``torch.export.save`` of a program) and return run.json's record of it: file, sha256, bytes, source."""
    import shutil

    target, partial = out / ARCHIVE_FILE, out / f".tmp-{ARCHIVE_FILE}"
    out.mkdir(parents=True, exist_ok=True)
    try:
        if isinstance(source, torch.export.ExportedProgram):
            torch.export.save(source, str(partial))
            where = None
        else:
            shutil.copyfile(source, partial)
            where = str(Path(source).resolve())
        os.replace(partial, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise RunError(f"could not write {target}: {exc.strerror or exc}") from None
    return {"file": ARCHIVE_FILE, "sha256": sha256_of(target), "bytes": target.stat().st_size, "source": where}


def module_for_run(path: Path, record: dict[str, Any], input_shape: Sequence[int]) -> nn.Module:
    """The model of a run adopted from an archive: its copy checked against the recorded sha256, loaded, unflattened."""
    archive = path / ARCHIVE_FILE
    if not archive.is_file():
        raise RunError(f"{archive} is missing: the run was adopted from a torch.export archive kept there; adopt the "
                       "model again (nnsee adopt --weights model.pt2 ...)")
    if sha256_of(archive) != record.get("sha256"):
        raise RunError(f"{archive} is not the archive this run was adopted from (its sha256 differs from run.json's); "
                       "adopt the model again")
    return module_of(load_archive(archive, input_shape))
