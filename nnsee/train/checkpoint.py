"""Weights (safetensors) and resume state (``torch.save``), written atomically and read with suspicion.

Weights files carry string metadata: ``nnsee_format_version``, ``class_names`` (JSON list) and ``model`` (JSON
spec, or ``"custom"``). :func:`load_weights` checks the file's header by hand before safetensors sees it, so
every malformed file gives a :class:`RunError` that names it, and it refuses NaN/Inf weights.

Resume state is read only by ``torch.load(..., weights_only=True)``, after a scan of the pickle that refuses
any global outside a small allowlist: a second lock, so neither ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` nor a
widened ``torch.serialization.add_safe_globals`` list can let code run.
"""

from __future__ import annotations

import io
import json
import os
import pickletools
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnsee.errors import RunError
from nnsee.io import atomic_write_bytes

WEIGHTS_FORMAT_VERSION = 1
MIN_WEIGHTS_FORMAT_VERSION = 1
MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit

DTYPE_SIZES: dict[str, int] = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1,
    "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
}  # fmt: skip
_FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}

StateDict = dict[str, torch.Tensor]


# ---------------------------------------------------------------------------------------------- weights


def _tensors_of(model_or_state_dict: nn.Module | Mapping[str, torch.Tensor]) -> StateDict:
    sd = model_or_state_dict.state_dict() if isinstance(model_or_state_dict, nn.Module) else model_or_state_dict
    tensors: StateDict = {}
    seen: set[int] = set()
    for key, value in sd.items():
        if not isinstance(value, torch.Tensor):
            raise RunError(f"cannot save weight {key!r}: it is a {type(value).__name__}, not a tensor")
        t = value.detach().to("cpu").contiguous()
        if t.numel() and t.data_ptr() in seen:  # safetensors refuses shared memory (tied weights)
            t = t.clone()
        seen.add(t.data_ptr())
        tensors[key] = t
    return tensors


def _nonfinite(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    return [k for k, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def _names(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def save_weights(
    path: str | os.PathLike[str],
    model_or_state_dict: nn.Module | Mapping[str, torch.Tensor],
    metadata: Mapping[str, Any],
) -> Path:
    """Atomically write the weights to ``path`` as safetensors, with string ``metadata``.

    ``metadata`` must hold ``class_names`` (a list, or its JSON string). ``model`` defaults to the module's
    spec (JSON) or ``"custom"``; ``nnsee_format_version`` is always set. Non-string values are stored as JSON.
    Non-finite weights are refused: nothing is written.
    """
    from safetensors.torch import save

    path = Path(path)
    tensors = _tensors_of(model_or_state_dict)
    bad = _nonfinite(tensors)
    if bad:
        raise RunError(f"refusing to write {path}: non-finite (NaN/Inf) values in {_names(bad)}")
    meta = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    if "class_names" not in meta:
        raise RunError(f"cannot write {path}: the metadata needs 'class_names'")
    if "model" not in meta:
        spec = getattr(model_or_state_dict, "nnsee_spec", None)
        meta["model"] = json.dumps(dict(spec)) if spec is not None else "custom"
    meta["nnsee_format_version"] = str(WEIGHTS_FORMAT_VERSION)
    try:
        data = save(tensors, metadata=meta)
    except Exception as exc:  # safetensors' own error types
        raise RunError(f"could not serialize the weights for {path}: {exc}") from exc
    return atomic_write_bytes(path, data)


def _check_header(path: Path, raw: bytes) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Validate the safetensors layout by hand; return (tensor entries, metadata)."""
    size = len(raw)
    if size == 0:
        raise RunError(f"{path} is empty, not a safetensors file; save the run again")
    if size < 8:
        raise RunError(f"{path} is truncated ({size} bytes), not a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if n == 0 or n > size - 8 or n > MAX_HEADER_BYTES:
        hint = " (is it a pickle/torch file renamed .safetensors?)" if raw[:2] == b"PK" or raw[:1] == b"\x80" else ""
        raise RunError(
            f"{path} is not a valid safetensors file: header length {n} does not fit the file size "
            f"{size}{hint}; it is truncated or not safetensors"
        )
    try:
        header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RunError(f"{path} is not a valid safetensors file: its header is not JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise RunError(f"{path} is not a valid safetensors file: its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise RunError(f"{path} is not a valid safetensors file: '__metadata__' must map strings to strings")
    data_len = size - 8 - n
    spans = []
    for key, entry in header.items():
        where = f"{path}: tensor {key!r}"
        if not isinstance(entry, dict):
            raise RunError(f"{where} has a malformed header entry")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in DTYPE_SIZES:
            raise RunError(
                f"{where} has an unknown or unsupported dtype {dtype!r}; expected one of {', '.join(DTYPE_SIZES)}"
            )
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise RunError(f"{where} has an invalid shape {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise RunError(f"{where} has invalid data offsets {offsets!r}")
        numel = 1
        for d in shape:
            numel *= d
        if numel * DTYPE_SIZES[dtype] != offsets[1] - offsets[0]:
            raise RunError(
                f"{where}: shape {shape} of {dtype} needs {numel * DTYPE_SIZES[dtype]} bytes, "
                f"the offsets give {offsets[1] - offsets[0]} (shape overflow or corrupt header)"
            )
        spans.append((offsets[0], offsets[1], key))
    cursor = 0
    for begin, end, key in sorted(spans):
        if begin < cursor:
            raise RunError(f"{path}: tensor {key!r} overlaps the previous tensor's data (offsets {begin}-{end})")
        if begin > cursor:
            raise RunError(f"{path}: a gap of unaccounted bytes before tensor {key!r}; the file is corrupt")
        cursor = end
    if cursor != data_len:
        what = "truncated" if cursor > data_len else "followed by extra bytes"
        raise RunError(f"{path} is {what}: the header describes {cursor} bytes of data, the file holds {data_len}")
    return header, metadata


def _check_metadata(path: Path, metadata: dict[str, str]) -> None:
    version = metadata.get("nnsee_format_version")
    if version is None:
        raise RunError(f"{path} has no 'nnsee_format_version' metadata: it was not written by nnsee")
    try:
        v = int(version)
    except ValueError:
        raise RunError(f"{path} has an unreadable nnsee_format_version {version!r}") from None
    if v > WEIGHTS_FORMAT_VERSION:
        raise RunError(
            f"{path} was written by a newer nnsee (format {v}; this nnsee reads up to "
            f"{WEIGHTS_FORMAT_VERSION}); upgrade nnsee"
        )
    if v < MIN_WEIGHTS_FORMAT_VERSION:
        raise RunError(
            f"{path} uses the old format {v}, no longer supported (oldest readable: "
            f"{MIN_WEIGHTS_FORMAT_VERSION}); train the model again"
        )
    if "class_names" not in metadata:
        raise RunError(f"{path} has no 'class_names' metadata; it cannot say what its outputs mean")
    try:
        names = json.loads(metadata["class_names"])
    except ValueError:
        names = None
    if not isinstance(names, list) or not all(isinstance(c, str) for c in names):
        raise RunError(f"{path}: 'class_names' metadata is not a JSON list of strings")
    model = metadata.get("model", "custom")
    if model != "custom":
        try:
            spec = json.loads(model)
        except ValueError:
            spec = None
        if not isinstance(spec, dict):
            raise RunError(f"{path}: 'model' metadata is neither a JSON spec nor 'custom'")


def check_shapes(path: str | os.PathLike[str], actual: Mapping[str, Any], expect_shapes: Mapping[str, Any]) -> None:
    """Raise a :class:`RunError` naming each key whose shape (or presence) differs from ``expect_shapes``."""
    problems = []
    for key, want in expect_shapes.items():
        if key not in actual:
            problems.append(f"{key!r} is missing (expected shape {tuple(want)})")
        elif tuple(actual[key]) != tuple(want):
            problems.append(f"{key!r} has shape {tuple(actual[key])}, the architecture expects {tuple(want)}")
    problems += [f"{key!r} is not part of the architecture" for key in actual if key not in expect_shapes]
    if problems:
        raise RunError(
            f"the weights in {path} do not fit the architecture: "
            + "; ".join(problems[:8])
            + (f" (and {len(problems) - 8} more)" if len(problems) > 8 else "")
        )


def load_weights(
    path: str | os.PathLike[str],
    *,
    expect_shapes: Mapping[str, Any] | None = None,
) -> tuple[StateDict, dict[str, str]]:
    """Read a weights file written by :func:`save_weights`; return ``(state_dict, metadata)`` on the CPU.

    Refuses (with a :class:`RunError` naming ``path``) a malformed file, one without nnsee metadata or from a
    newer nnsee, NaN/Inf weights, and, given ``expect_shapes`` (key -> shape), any tensor that does not fit.
    """
    from safetensors.torch import load

    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RunError(f"{path} does not exist; the run has no weights there") from None
    except OSError as exc:
        raise RunError(f"could not read {path}: {exc.strerror or exc}") from exc
    header, metadata = _check_header(path, raw)
    _check_metadata(path, metadata)
    if expect_shapes is not None:
        check_shapes(path, {k: e["shape"] for k, e in header.items()}, expect_shapes)
    try:
        tensors = load(raw)
    except Exception as exc:  # safetensors raises its own SafetensorError, or others on odd input
        raise RunError(f"{path} is not a valid safetensors file: {exc}") from exc
    bad = _nonfinite(tensors)
    if bad:
        raise RunError(
            f"refusing {path}: non-finite (NaN/Inf) values in {_names(bad)}; the training diverged "
            "before this was saved, use an earlier snapshot or train again"
        )
    return tensors, metadata


# ------------------------------------------------------------------------------------------ resume state

_SAFE_GLOBALS = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch", "device"),
    ("torch", "Size"),
}
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING"}
_PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}
_GET_OPS = {"GET", "BINGET", "LONG_BINGET"}


def _global_allowed(module: str, name: str) -> bool:
    if (module, name) in _SAFE_GLOBALS:
        return True
    if module == "torch":
        obj = getattr(torch, name, None)
        return isinstance(obj, torch.dtype) or (name.endswith("Storage") and isinstance(obj, type))
    return False


def unsafe_globals(pickle_bytes: bytes) -> list[str]:
    """Names a pickle imports that a plain state (tensors, dicts, numbers, strings) never needs.

    Conservative: a global whose name cannot be read statically is reported as ``<unknown>``.
    """
    bad: list[str] = []
    recent: list[object] = []  # values pushed lately: strings, memo gets; None for anything else
    memo: dict[int, object] = {}
    for op, arg, _pos in pickletools.genops(pickle_bytes):
        name = op.name
        if name in _STRING_OPS:
            recent.append(arg if isinstance(arg, str) else None)
        elif name in _PUT_OPS:
            memo[int(arg)] = recent[-1] if recent else None
        elif name == "MEMOIZE":
            memo[len(memo)] = recent[-1] if recent else None
        elif name in _GET_OPS:
            recent.append(memo.get(int(arg)))
        elif name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            if not _global_allowed(module, attr):
                bad.append(f"{module}.{attr}")
            recent.append(None)
        elif name == "STACK_GLOBAL":
            module, attr = (recent[-2], recent[-1]) if len(recent) >= 2 else (None, None)
            if not (isinstance(module, str) and isinstance(attr, str)):
                bad.append("<unknown>")
            elif not _global_allowed(module, attr):
                bad.append(f"{module}.{attr}")
            recent.append(None)
        elif name in ("EXT1", "EXT2", "EXT4"):
            bad.append(f"<extension {arg}>")
            recent.append(None)
        else:
            recent.append(None)
        del recent[:-4]
    return bad


def _pickle_of(path: Path, raw: bytes) -> bytes:
    """The ``data.pkl`` record of a zip-format torch file (the only format nnsee writes)."""
    if raw[:4] != b"PK\x03\x04":
        raise ValueError("it is not a zip-format torch file")
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        names = zf.namelist()
        if len(names) != len(set(names)):
            raise ValueError("it has duplicate zip entries")
        pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pkls) != 1:
            raise ValueError("it does not hold exactly one data.pkl")
        return zf.read(pkls[0])


def _refused(path: Path, why: str) -> RunError:
    return RunError(
        f"refused {path}: it is not a plain nnsee state file (possibly malicious): {why}. "
        "Only load resume state you wrote yourself; delete it and train again"
    )


def save_state(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """Atomically ``torch.save`` the resume ``state`` to ``path``.

    Refuses (before writing) a state that :func:`load_state` would refuse, e.g. one holding numpy arrays or
    other objects: store tensors (``torch.get_rng_state()``, ``Generator.get_state()``) and plain Python.
    """
    path = Path(path)
    buf = io.BytesIO()
    try:
        torch.save(dict(state), buf)
    except Exception as exc:
        raise RunError(f"could not serialize the resume state for {path}: {exc}") from exc
    raw = buf.getvalue()
    bad = unsafe_globals(_pickle_of(path, raw))
    if bad:
        raise RunError(
            f"cannot write {path}: the state holds objects that cannot be loaded safely "
            f"({', '.join(sorted(set(bad)))}); store tensors and plain Python values instead"
        )
    return atomic_write_bytes(path, raw)


def load_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a state written by :func:`save_state`, on the CPU, only via ``torch.load(weights_only=True)``.

    The pickle is scanned first and refused if it imports anything but tensor-rebuilding names, whatever the
    environment (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``) or the process's safe-globals list says.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RunError(f"{path} does not exist; this run has no resume state") from None
    except OSError as exc:
        raise RunError(f"could not read {path}: {exc.strerror or exc}") from exc
    try:
        bad = unsafe_globals(_pickle_of(path, raw))
    except Exception as exc:  # zipfile.BadZipFile, pickletools' ValueError on a broken opcode stream, ...
        raise _refused(path, str(exc) or type(exc).__name__) from exc
    if bad:
        raise _refused(path, f"it imports {', '.join(sorted(set(bad)))}")
    try:
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError, RuntimeError from torch's reader
        raise _refused(path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    if not isinstance(state, dict):
        raise _refused(path, f"it holds a {type(state).__name__}, not a dict")
    return state
