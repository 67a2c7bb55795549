"""Adopted models: a network from the user's own code and weights, rebuilt from a run.json's model spec.

The spec (``run.json`` → ``model``) is ``{"kind": "adopted", "code": "package.module:factory" or
"/abs/path/file.py:factory" (or None: adopted from Python without code, or from an export archive), "code_args": {...},
"output": None | index | key, "input_shape": [C, H, W], "n_classes": K, "resize": "square" | "torchvision" (the rule
that brings an image file to H x W, :data:`~nnsee.data.image_decode.RESIZE_RULES`; absent: square), "export": None |
{"file": "model.pt2", "sha256": ..., "bytes": ..., "source": ...}}``. The run never stores code: loading it imports
``code`` and calls ``factory(**code_args)``, which runs the user's code with their permissions; every import is said
on stderr. A run adopted from a ``torch.export`` archive keeps a copy of the archive instead
(:mod:`nnsee.models.exported`): no code.

Rules: the factory must return an ``nn.Module``; weights are a state dict (safetensors, or ``.pt``/``.pth`` read only
by ``torch.load(weights_only=True)``, never unpickling code); a model whose output is a tuple, list or dict gives its
logits through ``output`` (a forward hook returns ``output[index or key]``, so layer names stay the user's own); the
logits must be ``(N, K)``; a model in train mode is explained in eval mode and half precision in float32 (both said).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import os
import pickle
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnsee.data.image_decode import RESIZE_RULES, check_resize
from nnsee.errors import RunError, first_few
from nnsee.io import open_regular
from nnsee.models.hooks import is_training, lasting_output_hook

KIND = "adopted"
#: Keys of the loaded checkpoint dict that may hold the state dict (Lightning, common training loops).
NESTED_KEYS = ("state_dict", "model_state_dict", "model", "weights", "net")
#: Most bytes a weights file may take per value of the model: 8 (float64) times 4 copies (a checkpoint with an
#: optimizer's state beside the weights), plus a 16 MiB header.
BYTES_PER_VALUE = 32
_HEADER = 16 << 20
_HALF = (torch.float16, torch.bfloat16)


def say(message: str) -> None:
    """One line for the user on stderr (what nnsee imports, converts or switches): stdout stays the command's."""
    print(f"nnsee: {message}", file=sys.stderr, flush=True)


def is_adopted(spec: Any) -> bool:
    return isinstance(spec, Mapping) and spec.get("kind") == KIND


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:299] + "…"


# ------------------------------------------------------------------------------------------------ the code

def split_code(code: str) -> tuple[str, str]:
    """``("package.module" or "/abs/file.py", "factory")`` from ``--code``; a file path is made absolute."""
    where, sep, name = str(code).rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise RunError(f"--code takes package.module:factory or path/to/file.py:factory (a callable returning an "
                       f"nn.Module), got {str(code)[:120]!r}")
    if where.endswith(".py"):
        return str(Path(where).expanduser().resolve()), name
    return where, name


def import_factory(code: str) -> Callable[..., Any]:
    """The callable named by ``code`` (:func:`split_code`), its module imported (said on stderr)."""
    where, name = split_code(code)
    try:
        if where.endswith(".py"):
            if not Path(where).is_file():
                raise RunError(f"--code {code!r}: there is no file {where}")
            say(f"importing {where} (the model's code; it runs with your permissions)")
            module_name = f"_nnsee_adopted_{Path(where).stem}"
            spec = importlib.util.spec_from_file_location(module_name, where)
            if spec is None or spec.loader is None:
                raise RunError(f"--code {code!r}: {where} cannot be imported as Python")
            if str(Path(where).parent) not in sys.path:  # its sibling modules import as they do beside it
                sys.path.insert(0, str(Path(where).parent))
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:  # a package in the current folder, as `python -m` finds it
                sys.path.insert(0, os.getcwd())
            say(f"importing {where} (the model's code; it runs with your permissions)")
            module = importlib.import_module(where)
    except RunError:
        raise
    except BaseException as exc:  # the user's module can raise anything while it is imported
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise RunError(f"could not import the model's code {where} ({_first_line(exc)}); check --code "
                       "(package.module:factory, importable from the current folder or PYTHONPATH, or "
                       "path/to/file.py:factory)") from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise RunError(f"{where} has no callable {name!r}; --code names a function or class that returns the "
                       "nn.Module")
    return factory


def build(code: str, code_args: Mapping[str, Any] | None = None) -> nn.Module:
    """``factory(**code_args)`` of ``code``: an ``nn.Module``, or a one-line :class:`RunError`."""
    if code_args is not None and not isinstance(code_args, Mapping):
        raise RunError(f"--code-args must be a JSON object of keyword arguments, got {str(code_args)[:80]}")
    factory = import_factory(code)
    try:
        model = factory(**dict(code_args or {}))
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise RunError(f"the model factory {code} raised {_first_line(exc)}; check it and --code-args "
                       f"{json.dumps(dict(code_args or {}))[:120]}") from None
    if not isinstance(model, nn.Module):
        raise RunError(f"the model factory {code} returned a {type(model).__name__}, not a torch nn.Module")
    return model


def parse_code_args(text: str | None) -> dict[str, Any]:
    """``--code-args``: a JSON object of keyword arguments (``{}`` when not given)."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise RunError(f"--code-args is not JSON ({exc}); give an object such as '{{\"n_classes\": 10}}'") from None
    if not isinstance(value, dict):
        raise RunError(f"--code-args must be a JSON object of keyword arguments, got {text[:80]!r}")
    return value


# ------------------------------------------------------------------------------------------- the model's state

def prepare(model: nn.Module) -> nn.Module:
    """``model`` in float32 (from half precision) and eval mode, each change said on stderr."""
    half = sorted({str(t.dtype).removeprefix("torch.") for t in [*model.parameters(), *model.buffers()]
                   if t.dtype in _HALF})
    if half:
        say(f"the model holds {', '.join(half)} weights; nnsee explains it in float32 (converted)")
        model.float()
    if is_training(model):
        say("the model was in train mode; nnsee explains it in eval mode (BatchNorm's running statistics, no "
            "dropout)")
    return model.eval()


class SelectOutput:
    """A forward hook returning ``output[key]`` (an index of a tuple/list, a key of a dict): the logits."""

    def __init__(self, key: int | str) -> None:
        self.key = key

    def __call__(self, module: nn.Module, args: Any, output: Any) -> Any:
        return select(output, self.key)


def select(output: Any, key: int | str | None) -> Any:
    """``output[key]`` by the rules of :class:`SelectOutput` (``output`` itself when ``key`` is None)."""
    if key is None:
        return output
    if isinstance(output, Mapping):
        if key in output:
            return output[key]
        if str(key) in output:
            return output[str(key)]
        raise RunError(f"--output {key!r}: the model's output has keys {first_few(list(output))}")
    if isinstance(output, Sequence) and not isinstance(output, (str, torch.Tensor)):
        if isinstance(key, int) and -len(output) <= key < len(output):
            return output[key]
        raise RunError(f"--output {key!r}: the model returns a {type(output).__name__} of {len(output)}; give an "
                       f"index 0..{len(output) - 1}")
    raise RunError(f"--output {key!r} was given, but the model returns a {_describe(output)}, not a tuple or dict")


def attach_output(model: nn.Module, key: int | str | None) -> nn.Module:
    """Make ``model(x)`` return the logits: a :class:`SelectOutput` forward hook when ``key`` is set (once)."""
    return lasting_output_hook(model, SelectOutput(key)) if key is not None else model


def parse_output(text: str | None) -> int | str | None:
    """``--output``: an index in digits 0-9 as an int, any other text as a key."""
    if text is None or text == "":
        return None
    return int(text) if text.isascii() and text.isdigit() else text


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)}"
    if isinstance(value, Mapping):
        inner = ", ".join(f"{k!r}: {_describe(v)}" for k, v in list(value.items())[:5])
        return f"{type(value).__name__} {{{inner}{', ...' if len(value) > 5 else ''}}}"
    if isinstance(value, Sequence) and not isinstance(value, str):
        inner = ", ".join(_describe(v) for v in list(value)[:5])
        return f"{type(value).__name__} of {len(value)} ({inner}{', ...' if len(value) > 5 else ''})"
    return type(value).__name__


def output_width(model: nn.Module, input_shape: Sequence[int], key: int | str | None) -> int:
    """K of the ``(N, K)`` logits ``model`` gives for a batch of 2 zero images of ``input_shape`` (``key`` selects
    them from a tuple or dict); anything else is a one-line :class:`RunError` saying what the model returned."""
    x = torch.zeros((2, *input_shape), dtype=torch.float32, device=_device(model))
    try:
        with torch.no_grad():
            raw = model(x)
    except Exception as exc:
        raise RunError(f"the model failed on a batch of 2 images of shape {tuple(input_shape)} ({_first_line(exc)}); "
                       "check --input-shape") from None
    for hook in model._forward_hooks.values():  # attached already: the raw output is the selected one
        if isinstance(hook, SelectOutput):
            key = None
    logits = select(raw, key)
    if not (isinstance(logits, torch.Tensor) and logits.ndim == 2 and logits.shape[0] == 2):
        hint = (" pass --output INDEX_OR_KEY to say which element holds the logits" if key is None and
                isinstance(raw, (Mapping, tuple, list)) else " make the factory return a model whose forward gives "
                "(N, classes) logits")
        raise RunError(f"the model returned a {_describe(raw)} for 2 images, not logits of shape (N, classes):{hint}")
    return int(logits.shape[1])


def _device(model: nn.Module) -> torch.device:
    first = next(iter(model.parameters()), None)
    return first.device if first is not None else torch.device("cpu")


# ------------------------------------------------------------------------------------------------- the weights

def read_state_dict(path: str | os.PathLike[str], model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` for ``model``, its keys and shapes checked against the model's before it is used:
    safetensors, or a ``.pt``/``.pth`` state dict (``torch.load(weights_only=True)``, the process's added safe
    globals off). A checkpoint dict holding it under ``state_dict`` (etc.) and keys under one extra prefix
    (``module.``, ``model.``) are accepted, and said."""
    path = Path(path)
    refuse_export_archive(path)
    expect = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    budget = 8 + _HEADER + BYTES_PER_VALUE * sum(math.prod(s) for s in expect.values())
    try:
        with open_regular(path, "the weights file") as f:
            size = os.fstat(f.fileno()).st_size
            if size > budget:  # from its size alone, before anything is read
                raise RunError(f"{path} (the weights file) is {size:,} bytes, more than this model's weights can take "
                               f"({budget:,}: {BYTES_PER_VALUE} bytes a value and a 16 MiB header); give the state "
                               "dict of the model --code builds")
            head = f.read(9)
            f.seek(0)
            if head[:2] == b"PK" or head[:1] == b"\x80":
                state = _torch_load(path, f)
            elif head[8:9] == b"{":
                state = _safetensors(path, expect)
            else:
                raise RunError(f"{path} is neither safetensors nor a torch.save file; give the model's state dict "
                               "(safetensors, or torch.save(model.state_dict(), 'weights.pt'))")
    except FileNotFoundError:
        raise RunError(f"{path} does not exist; give the weights file with --weights") from None
    except OSError as exc:
        raise RunError(f"could not read {path}: {exc.strerror or exc}") from None
    state = _matching(path, _unwrap(path, state), expect)
    return state


def refuse_export_archive(path: str | os.PathLike[str]) -> None:
    """A ``torch.export`` archive (``.pt2``) holds the model itself, not a state dict for ``--code``'s model: one line
    saying to give it without ``--code``."""
    if Path(path).suffix.lower() == ".pt2":
        raise RunError(f"{path} is a torch.export archive, which holds the model itself: give it with --weights and no "
                       "--code (or give --code with the model's state dict, torch.save(model.state_dict(), "
                       "'weights.pt'))")


def _torch_load(path: Path, f: Any) -> Any:
    added = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        return torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # a class, a function: code
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        why = next((line for line in lines[1:] if "global" in line.lower()), _first_line(exc))
        raise RunError(f"{path} holds pickled Python objects, not only tensors ({why[:200]}): a whole model saved "
                       "with torch.save(model) cannot be loaded without running its code; save the weights instead "
                       "with torch.save(model.state_dict(), 'weights.pt') and pass that file") from None
    except Exception as exc:  # a damaged zip or pickle stream
        raise RunError(f"{path} is not a readable torch.save file ({_first_line(exc)[:200]}); save it again with "
                       "torch.save(model.state_dict(), 'weights.pt')") from None
    finally:
        torch.serialization.add_safe_globals(added)


def _safetensors(path: Path, expect: Mapping[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as st:
            shapes = {k: tuple(st.get_slice(k).get_shape()) for k in st.keys()}  # noqa: SIM118 (not a dict)
            _matching(path, shapes, expect)  # from the header, before any tensor is read
            return {k: st.get_tensor(k) for k in st.keys()}  # noqa: SIM118
    except RunError:
        raise
    except Exception as exc:  # safetensors' own errors: a damaged header, offsets, dtypes
        raise RunError(f"{path} is not a valid safetensors file ({_first_line(exc)})") from None


def _unwrap(path: Path, state: Any) -> dict[str, Any]:
    """The flat state dict in what was loaded (a nested ``state_dict`` entry said on stderr)."""
    if isinstance(state, Mapping) and state and all(isinstance(v, torch.Tensor) for v in state.values()):
        return dict(state)
    if isinstance(state, Mapping):
        for key in NESTED_KEYS:
            inner = state.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                say(f"{path.name}: using the state dict under its {key!r} entry")
                return dict(inner)
        raise RunError(f"{path} holds a dict ({first_few(list(map(str, state)))}) that is not a state dict of "
                       "tensors; save torch.save(model.state_dict(), 'weights.pt')")
    raise RunError(f"{path} holds a {type(state).__name__}, not a state dict; save "
                   "torch.save(model.state_dict(), 'weights.pt')")


def _matching(path: Path, state: Mapping[str, Any], expect: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
    """``state`` with the model's keys (one extra prefix dropped when that makes them equal, said), every shape
    equal to the model's; else one line listing missing and unexpected keys, or the tensor whose shape differs."""
    state = dict(state)
    if set(state) != set(expect):
        prefixes = {k.split(".", 1)[0] + "." for k in state if "." in k}
        for prefix in prefixes if len(prefixes) == 1 else ():
            stripped = {k.removeprefix(prefix): v for k, v in state.items()}
            if set(stripped) == set(expect):
                say(f"{path.name}: its keys start with {prefix!r}; matched without it")
                state = stripped
    missing = [k for k in expect if k not in state]
    unexpected = [k for k in state if k not in expect]
    if missing or unexpected:
        parts = [f"missing keys ({len(missing)}): {first_few(missing)}" if missing else "",
                 f"unexpected keys ({len(unexpected)}): {first_few(unexpected)}" if unexpected else ""]
        raise RunError(f"the weights in {path} do not match the model: {'; '.join(p for p in parts if p)}; they "
                       "must be the state dict of the model --code builds (check --code and --code-args)")
    for key, want in expect.items():
        have = tuple(state[key].shape) if isinstance(state[key], torch.Tensor) else tuple(state[key])
        if have != tuple(want):
            raise RunError(f"the weights in {path} do not match the model: {key!r} has shape {have}, the model's is "
                           f"{tuple(want)} (check --code-args)")
    return state


def load_weights_into(model: nn.Module, path: str | os.PathLike[str]) -> nn.Module:
    """``model`` with the checked state dict of ``path`` loaded (floats cast to the model's dtypes)."""
    state = read_state_dict(path, model)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise RunError(f"the weights in {path} do not fit the model: {' '.join(str(exc).split())[:300]}") from None
    return model


# ------------------------------------------------------------------------------------------- from a run.json

def check_spec(where: str, spec: Mapping[str, Any]) -> None:
    """Refuse an adopted spec whose fields have the wrong types, naming the field."""
    problems = [(k, ok) for k, ok in (
        ("code", spec.get("code") is None or isinstance(spec.get("code"), str)),
        ("code_args", isinstance(spec.get("code_args", {}), dict)),
        ("output", spec.get("output") is None or type(spec.get("output")) in (int, str)),
        ("export", spec.get("export") is None or (isinstance(spec["export"], dict) and spec.get("code") is None
                                                  and isinstance(spec["export"].get("sha256"), str))),
    ) if not ok]
    if problems:
        raise RunError(f"{where}: the adopted model's field {problems[0][0]!r} is malformed; adopt the model again")
    check_resize(spec.get("resize", RESIZE_RULES[0]), f"{where}: the adopted model's 'resize'", RunError)


def resize_rule(meta: Mapping[str, Any]) -> str:
    """The rule that brings an image file to a run's input size (``meta`` is its run.json): the adopted model's
    ``resize``, or ``square`` (nnsee's centre square) for every other run and for runs adopted before the field
    existed. A value that is not one of :data:`~nnsee.data.image_decode.RESIZE_RULES` is a one-line RunError."""
    spec = meta.get("model")
    if not is_adopted(spec):
        return RESIZE_RULES[0]
    return check_resize(spec.get("resize", RESIZE_RULES[0]), "run.json's adopted model field 'resize'", RunError)


def build_for_run(path: Path, spec: Mapping[str, Any]) -> nn.Module:
    """The adopted model of the run at ``path``, built by its recorded code (the import said), in float32; weights
    not loaded yet."""
    check_spec(str(path / "run.json"), spec)
    if spec.get("export") is not None:  # a torch.export archive kept in the run: no code to import
        from nnsee.models import exported

        return exported.module_for_run(path, spec["export"], spec.get("input_shape") or ())
    if spec.get("code") is None:
        raise RunError(f"{path} was adopted from Python without code=, so nnsee cannot rebuild its model: pass it, "
                       f"load_run({str(path)!r}, model=YourNet(...)), or adopt again with "
                       "code='package.module:factory'")
    model = build(spec["code"], spec.get("code_args") or {})
    half = any(t.dtype in _HALF for t in [*model.parameters(), *model.buffers()])
    if half:
        say("the model's code builds half-precision weights; nnsee explains it in float32 (converted)")
        model.float()
    return model
