"""``analyze``: one pass of a data set through a model that collects everything the views and the report need.

Per batch (``nnsee.data.loader.batches``, standardized per batch): one forward pass in eval mode gives the logits
and, through hooks at each chosen layer's last call, the layers' outputs, merged at once into their top-k; each
chosen attribution method runs on the batch (target: the true label) and its maps go to the shard being written.
Every ``shard_size`` images the shard's maps are written, and the state is checkpointed (atomic files) after the
first shard and then at most every ``CHECKPOINT_SECONDS``, so a stop loses about that much work. Under torchrun
each rank takes its contiguous block of positions (its own shards and checkpoint), and rank 0 gathers the states,
merges them and writes ``summary.json`` last.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from nnsee.analysis.accumulators import Accumulators
from nnsee.analysis.folder import (
    FORMAT,
    MAPS,
    MARKER,
    SUMMARY,
    VERSION,
    check_marker,
    clean_leftovers,
    folder_problem,
    load_checkpoint,
    rank_dir,
    read_json,
    save_checkpoint,
    write_marker,
)
from nnsee.analysis.forward import probe, reading_layers
from nnsee.analysis.identity import data_fingerprint, weights_sha256
from nnsee.analysis.maps import save_npy, shard_name, write_shard
from nnsee.analysis.result import Analysis
from nnsee.data.imageset import ImageSet
from nnsee.data.loader import batches
from nnsee.errors import DataError, MethodError, NnseeError, RunError
from nnsee.io import atomic_write_text

if TYPE_CHECKING:
    from nnsee.data.standardize import Standardizer
    from nnsee.distributed import Dist

#: Bytes of maps a shard holds in memory before it is written (a shard is also the checkpoint interval).
SHARD_MAP_BYTES = 32 * 2**20
SHARD_IMAGES = 4096
#: A checkpoint (whose predictions grow with N) follows the first shard, the last, and then a shard at least this
#: many seconds after the previous checkpoint; the shards after it are recomputed (and rewritten) on resume.
CHECKPOINT_SECONDS = 10.0


def _trim_heap() -> None:
    """glibc's ``malloc_trim(0)`` after each shard: without it the freed batches fragment the heap and the peak
    creeps up with the number of shards (measured: +25 MB from 5,000 to 30,000 images; +9 MB with it)."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)


def _first_image(data: ImageSet, transform: Any) -> torch.Tensor:
    """The first readable image, standardized, as a (1, C, H, W) tensor (for layer calls and batch sizes)."""
    for batch in batches(data, 64, transform=transform, positions=np.arange(min(len(data), 4096))):
        if len(batch.index):
            return batch.images[:1]
    raise DataError(f"{data.source or 'the data'}: none of the first images could be read; nothing to analyze")


def _default_shard(batch_size: int, shape: Sequence[int], methods: Sequence[str]) -> int:
    """Images per shard: ``SHARD_IMAGES``, fewer when the maps (at most an input's size each) would pass
    ``SHARD_MAP_BYTES``; a whole number of batches."""
    size = SHARD_IMAGES if not methods else min(SHARD_IMAGES, SHARD_MAP_BYTES // max(1, 4 * math.prod(shape)))
    return max(1, size // batch_size) * batch_size


def _check_methods(model: nn.Module, methods: Sequence[str], shape: Sequence[int],
                   options: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Refuse a method that does not apply to ``model``, or options of a method not chosen or not declared; the
    options checked (as the method's own types)."""
    from nnsee.methods.attribution.registry import get_method
    from nnsee.models.capabilities import capabilities

    caps = capabilities(model, tuple(shape))
    for name in methods:
        why = get_method(name).refusal(caps)
        if why is not None:
            raise MethodError(why)
    checked: dict[str, dict[str, Any]] = {}
    for name, given in options.items():
        if name not in methods:
            raise MethodError(f"options for {name!r}, which is not among the methods ({', '.join(methods) or 'none'})")
        declared = {o.name: o for o in get_method(name).options}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise MethodError(f"{name} has no option {', '.join(unknown)}; its options: "
                              f"{', '.join(declared) or 'none'}")
        checked[name] = {key: declared[key].check(value) for key, value in sorted(given.items())}
    return checked


def _plan(out: Path, resume: bool, fingerprint: dict[str, Any], batch_size: int | None, shard_size: int | None,
          auto: Any) -> dict[str, Any]:
    """Rank 0's decisions: the folder checked (and marked), the batch and shard sizes (a resume keeps its own)."""
    problem = folder_problem(out, resume)
    if problem:
        raise RunError(problem)
    options = dict(fingerprint["options"])
    if resume:
        stored = read_json(out / MARKER, "the analysis marker").get("fingerprint", {}).get("options", {})
        options["batch_size"] = batch_size or stored.get("batch_size")
        options["shard_size"] = shard_size or stored.get("shard_size")
    options["batch_size"] = options["batch_size"] or batch_size or auto()
    options["shard_size"] = options["shard_size"] or shard_size or _default_shard(
        options["batch_size"], fingerprint["data"]["shape"], options["methods"])
    full = {**fingerprint, "options": options}
    if resume:
        check_marker(out, full)
        clean_leftovers(out)
    else:
        write_marker(out, full)
    return full


def _on_main(dist: Dist | None, work: Any) -> Any:
    """``work()`` on rank 0, its result (or its one-line error) on every rank."""
    if dist is None:
        return work()
    from nnsee.distributed import broadcast_from_main

    try:
        answer = ("ok", work()) if dist.is_main else None
    except NnseeError as exc:
        answer = ("error", str(exc))
    answer = broadcast_from_main(dist, answer)
    if answer[0] == "error":
        raise RunError(answer[1] if dist.is_main else f"rank 0 refused: {answer[1]}")
    return answer[1]


def analyze(model: nn.Module, data: ImageSet, out: str | Path, *, standardizer: Standardizer | None = None,
            layers: Sequence[str] = (), k: int = 9, methods: Sequence[str] = (), batch_size: int | None = None,
            workers: int = 0, resume: bool = False, device: str = "cpu", dist: Dist | None = None,
            identity: dict | None = None, progress: bool | None = None,
            shard_size: int | None = None, method_options: dict[str, dict[str, Any]] | None = None) -> Analysis:
    """Analyze ``data`` with ``model`` into the folder ``out`` (see the module doc and :mod:`.folder`); returns the
    :class:`Analysis`. ``identity`` adds to the run's and data's fingerprints (``{"run": {...}, "data": {...}}``:
    the CLI gives the run folder and the data spec and split). ``resume`` continues an interrupted analysis from its
    checkpoints; anything changed since it began is refused, naming it. ``shard_size``: images per shard and
    checkpoint (default about 4,096, fewer when maps are large). The model is moved to ``device`` (under torchrun:
    the rank's device); ``batch_size`` (default: :func:`~.batch_size.choose_batch_size`) stays fixed for the pass.
    ``method_options``: ``{method: {option: value}}`` (e.g. ``{"integrated-gradients": {"steps": 16}}``)."""
    from nnsee.models.hooks import eval_mode

    out = Path(out)
    layers, methods = list(dict.fromkeys(layers)), list(dict.fromkeys(methods))
    for name, value in (("k", k), ("batch_size", batch_size), ("shard_size", shard_size)):
        if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
            raise MethodError(f"{name} must be a whole number of at least 1, got {value!r}")
    if len(data) == 0:
        raise DataError(f"{data.source or 'the data'} holds no images; nothing to analyze")
    place = dist.device if dist is not None else torch.device(device)
    model.to(place)
    transform = standardizer.transform if standardizer is not None else None
    options = _check_methods(model, methods, data.shape, method_options or {})
    dtype = next(model.parameters()).dtype
    one = _first_image(data, transform).to(place, dtype)
    with eval_mode(model):
        seen = probe(model, one, layers)
    extra = identity or {}
    fingerprint = {"run": {"weights": weights_sha256(model), **extra.get("run", {})},
                   "data": {**data_fingerprint(data), **extra.get("data", {})},
                   "options": {"layers": layers, "k": int(k), "methods": methods, "method_options": options,
                               "batch_size": batch_size,
                               "shard_size": shard_size, "world_size": dist.world_size if dist else 1}}

    def auto() -> int:
        from nnsee.analysis.batch_size import choose_batch_size

        return choose_batch_size(model, one, seen, bool(methods), place)

    fingerprint = _on_main(dist, functools.partial(_plan, out, resume, fingerprint, batch_size, shard_size, auto))
    started = time.perf_counter()
    acc, probabilities = _rank_pass(model, data, out, fingerprint, seen.calls, transform, workers, dist, place, dtype,
                                    resume, progress)
    return _finish(out, data, acc, probabilities, fingerprint, dist, time.perf_counter() - started)


def _rank_pass(model: nn.Module, data: ImageSet, out: Path, fingerprint: dict[str, Any], calls: dict[str, int],
               transform: Any, workers: int, dist: Dist | None, place: torch.device, dtype: torch.dtype,
               resume: bool, progress: bool | None) -> tuple[Accumulators, np.ndarray]:
    """This rank's shards, from its checkpoint on: its accumulators and probabilities (memory-mapped)."""
    from numpy.lib.format import open_memmap
    from tqdm import tqdm

    from nnsee.distributed import rank_positions
    from nnsee.methods.attribution.registry import attribute
    from nnsee.models.hooks import eval_mode

    options = fingerprint["options"]
    layers, methods, bs, shard = options["layers"], options["methods"], options["batch_size"], options["shard_size"]
    chosen = options.get("method_options") or {}
    rank = dist.rank if dist is not None else 0
    positions = rank_positions(len(data), dist)
    folder = rank_dir(out, rank)
    folder.mkdir(parents=True, exist_ok=True)
    n_classes = len(data.class_names)
    saved = load_checkpoint(folder, fingerprint) if resume else None
    prob_file = folder / "probabilities.npy"
    if saved is not None and prob_file.exists():
        acc, next_shard = saved[0], int(saved[1]["next_shard"])
        probabilities = open_memmap(prob_file, mode="r+")
    else:
        acc, next_shard = Accumulators(len(data), n_classes, layers, options["k"], methods, fingerprint), 0
        probabilities = open_memmap(prob_file, mode="w+", dtype=np.float32, shape=(len(positions), n_classes))
    first = int(positions[0]) if len(positions) else 0
    n_shards = -(-len(positions) // shard)
    show = progress if progress is not None else sys.stderr.isatty()
    bar = tqdm(total=len(positions), initial=min(len(positions), next_shard * shard), unit="img", file=sys.stderr,
               disable=not show or (dist is not None and not dist.is_main), desc="analyze", dynamic_ncols=True)
    current: dict[str, torch.Tensor] = {}
    saved_at = time.monotonic()

    def merge(layer: str, output: torch.Tensor) -> None:
        acc.topk[layer].add(output.detach(), current["index"])

    with bar, reading_layers(model, calls, merge) as run:
        for s in range(next_shard, n_shards):
            part = positions[s * shard:(s + 1) * shard]
            maps: dict[str, list[np.ndarray]] = {m: [] for m in methods}
            kept: list[np.ndarray] = []
            for batch in batches(data, bs, transform=transform, positions=part, workers=workers,
                                 pin_memory=place.type == "cuda"):
                acc.skipped.add(batch.skipped)
                if len(batch.index):
                    x = batch.images.to(place, dtype, non_blocking=True)
                    index, labels = batch.index.numpy(), batch.labels.numpy()
                    current["index"] = batch.index.to(place)
                    with eval_mode(model):
                        logits = run(x).to(torch.float64)
                    predicted = logits.float().cpu().numpy().argmax(axis=1)
                    acc.predictions.add(index, predicted, labels)
                    acc.confusion.add(labels, predicted)
                    probabilities[index - first] = torch.softmax(logits, 1).cpu().numpy().astype(np.float32)
                    for m in methods:
                        result = attribute(m, model, x, batch.labels.to(place), **chosen.get(m, {})).maps
                        acc.means[m].add(result, labels)
                        maps[m].append(np.asarray(result, np.float32))
                    kept.append(index)
                bar.update(len(batch.index) + len(batch.skipped))
            done = np.concatenate(kept) if kept else np.zeros(0, np.int64)
            for m in methods:
                write_shard(out / MAPS / m, shard_name(rank, s), maps[m], done)
            del maps
            _trim_heap()
            if s == next_shard or s == n_shards - 1 or time.monotonic() - saved_at >= CHECKPOINT_SECONDS:
                probabilities.flush()
                save_checkpoint(folder, acc, {"next_shard": s + 1})
                saved_at = time.monotonic()
    return acc, probabilities


def _json_number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _finish(out: Path, data: ImageSet, acc: Accumulators, probabilities: np.ndarray, fingerprint: dict[str, Any],
            dist: Dist | None, seconds: float) -> Analysis:
    """Merge the ranks' states on rank 0 and write the probabilities, class means and, last, ``summary.json``."""
    world = dist.world_size if dist is not None else 1
    gathered: list[Any] | None = None
    if dist is not None:
        from nnsee.distributed import all_agree, gather_to_main

        if not all_agree(dist, True):
            raise RunError("another rank failed (see its message): nothing was merged and no summary.json was "
                           f"written; fix the cause and rerun with --resume --out {out}")
        gathered = gather_to_main(dist, (acc.state(), np.array(probabilities)))

    def write() -> dict[str, Any]:
        merged, probs = acc, probabilities
        if gathered is not None:
            merged = functools.reduce(Accumulators.merge, [Accumulators.from_state(state) for state, _ in gathered])
            probs = np.concatenate([p for _, p in gathered])
        summary = _summary(out, data, merged, fingerprint, world, seconds)
        save_npy(out / "probabilities.npy", np.asarray(probs, np.float32))
        atomic_write_text(out / SUMMARY, json.dumps(summary, allow_nan=False))
        return summary

    return Analysis(out, _on_main(dist, write))


def _shard_names(n: int, world: int, shard: int) -> list[str]:
    """Every rank's shard names, in data-set order (each rank writes each of its shards, empty or not)."""
    from nnsee.distributed import block

    sizes = [block(n, r, world) for r in range(world)]
    return [shard_name(r, s) for r, (a, b) in enumerate(sizes) for s in range(-(-(b - a) // shard))]


def _summary(out: Path, data: ImageSet, acc: Accumulators, fingerprint: dict[str, Any], world: int,
             seconds: float) -> dict[str, Any]:
    predicted = acc.predictions.predicted
    n = acc.predictions.n
    if n + acc.skipped.count != len(data):
        raise RunError(f"the merged analysis covers {n + acc.skipped.count} of {len(data)} images (analyzed or "
                       f"skipped); a part is missing or counted twice, nothing was written; rerun into a new --out")
    matrix = acc.confusion.matrix
    if int(matrix.sum()) != n:
        raise RunError(f"the confusion matrix counts {int(matrix.sum())} images but {n} were analyzed; rerun")
    layers = {}
    for name, topk in acc.topk.items():
        top = topk.result()
        layers[name] = {"k": int(top["index"].shape[1]) if top["index"].ndim == 2 else 0,
                        "top_index": top["index"].tolist(),
                        "top_value": [[_json_number(v) for v in row] for row in top["values"]],
                        "position": top["position"].tolist(), "map_shape": list(topk.map_shape)}
    methods = {}
    for name, means in acc.means.items():
        folder = out / MAPS / name
        folder.mkdir(parents=True, exist_ok=True)
        mean = means.means()
        save_npy(folder / "class_means.npy", mean if mean is not None else np.zeros((0,), np.float64))
        shards = _shard_names(len(data), world, fingerprint["options"]["shard_size"])
        methods[name] = {"shards": shards, "class_means": f"{MAPS}/{name}/class_means.npy",
                         "class_counts": means.counts.tolist(), "dtype": "float32"}
    return {"format": FORMAT, "version": VERSION, "n": n, "n_skipped": acc.skipped.count,
            "skipped": [{"index": p, "path": a, "reason": r} for p, a, r in acc.skipped.items],
            "class_names": list(data.class_names), "accuracy": float(np.trace(matrix) / n) if n else None,
            "confusion_matrix": matrix.tolist(),
            "predictions": [None if p < 0 else int(p) for p in predicted],
            "labels": np.asarray(data.labels).tolist(), "layers": layers, "methods": methods,
            "run": fingerprint["run"], "data": fingerprint["data"], "options": fingerprint["options"],
            "world_size": world, "seconds": round(seconds, 3)}
