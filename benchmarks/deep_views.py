"""Dataset views at the forward floor on deep nets (issue 13, part 3), on the ResNet-18 shape at 3x224x224.

Must show: the top-9 of one stage (:data:`STAGE`) over 1,000 photos within 1.15x of the forward passes to that
stage, with at most 256 MiB of extra memory. Also shown (info): the top-9 of all five stages in one pass against
the forward passes to the deepest, the forward throughput by batch size, and the deconvnet projections of the
report's top-9 (8 maps a stage) against a plain autograd loop to the same layer over the same images.

The photos: :func:`benchmarks.deep_models.photo_batch` makes a pool of random square crops of four scikit-image
photos at the side, ImageNet-standardized; photo ``i`` is pool image ``i % P`` flipped left-right when bit 0 of
``i // P`` is set and upside down when bit 1 is (1,000 = 250 crops x 4 flips, all distinct). They are streamed in
batches, each made when the pass asks for it, so the 602 MB a 1,000-photo array would take never exists; every
contender reads the same stream at the same batch size (the top-9's own choice, ``auto_batch_size``).

Extra memory = the peak resident size during the pass (VmHWM, reset through ``/proc/self/clear_refs`` just before
it) minus the resident size before it, in a fresh process per contender; before it the model, the photo pool and
one warm-up call on 2 photos (oneDNN's kernels, the meta-device probe's registrations) are in place and the freed
heap is handed back (``malloc_trim``). So it counts what the pass itself allocates: the streamed batches, the
activations, the running top-k.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.attribution import _status_mib
from benchmarks.common import IdleGate, Section, Target
from benchmarks.rounds import interleaved

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("conv1", "layer1", "layer2", "layer3", "layer4")
#: the judged stage: the first residual stage, 64 maps of 56x56 (the largest per-image activation after the stem)
STAGE = "layer1"
TIME_BOUND, MEMORY_BOUND_MIB = 1.15, 256.0
#: the report's setting: projections of the first 8 maps of each stage (9 images each)
MAPS = 8


def plan(quick: bool) -> dict[str, Any]:
    """Sizes: 1,000 photos at 224 px from a pool of 250 crops, projections at every stage (``--quick``: 32 photos
    at 96 px from 8 crops, projections at two stages: the same code)."""
    if quick:
        return {"n": 32, "pool": 8, "side": 96, "rounds": 1, "info_rounds": 1, "maps": 1, "check": 16,
                "projected": ("layer1", "layer4")}
    return {"n": 1000, "pool": 250, "side": 224, "rounds": 3, "info_rounds": 2, "maps": MAPS, "check": 64,
            "projected": STAGES}


class PhotoStream:
    """A callable giving ``n`` photos in batches of ``batch`` (see the module doc), each batch made on demand."""

    def __init__(self, pool: Any, n: int, batch: int) -> None:
        self.pool, self.n, self.batch = pool, n, batch

    def photos(self, index: Any) -> Any:
        import torch

        index = torch.as_tensor(index)
        out = self.pool[index % len(self.pool)]
        variant = (index // len(self.pool)) % 4
        for bit, dim in ((1, -1), (2, -2)):
            flip = (variant & bit).bool()
            if bool(flip.any()):
                out[flip] = out[flip].flip(dim)
        return out

    def __call__(self) -> Any:
        import torch

        for start in range(0, self.n, self.batch):
            yield self.photos(torch.arange(start, min(self.n, start + self.batch)))


def prefix(model: Any, stage: str) -> Any:
    """The ResNet's modules up to and including ``stage``, as an ``nn.Sequential`` (its forward is this chain)."""
    import torch

    head = [model.conv1] if stage == "conv1" else [model.conv1, model.bn1, model.relu, model.maxpool]
    blocks = [] if stage == "conv1" else [getattr(model, f"layer{i}") for i in range(1, int(stage[-1]) + 1)]
    return torch.nn.Sequential(*head, *blocks)


def forward_passes(model: Any, stream: PhotoStream, stage: str) -> int:
    """The floor: every batch through the modules up to ``stage``, no gradients."""
    import torch

    net = prefix(model, stage)
    with torch.no_grad():
        for x in stream():
            net(x)
    return stream.n


def _setup(p: dict[str, Any], seed: int) -> tuple[Any, Any, int]:
    """(model, photo pool, batch size): the ResNet-18 shape, the pool, the top-9's own batch size at the side."""
    from benchmarks.deep_models import photo_batch, resnet18
    from nnsee.methods.dataset_views.top_images import auto_batch_size

    model = resnet18(num_classes=1000, seed=seed)
    pool = photo_batch(p["pool"], p["side"], seed)
    return model, pool, auto_batch_size(model, pool[:1], STAGE)


def _trim() -> None:
    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)


def _contender(what: str, model: Any, stream: PhotoStream) -> Any:
    from nnsee.methods.dataset_views.top_images import top_images_per_channel, top_images_per_layer

    if what == "forward":
        return forward_passes(model, stream, STAGE)
    if what == "top9":
        return top_images_per_channel(model, stream, STAGE, k=9)
    return top_images_per_layer(model, stream, list(STAGES), k=9)


def memory_child(what: str, quick: bool, seed: int, threads: int) -> None:
    """In a fresh process: set up, warm up on 2 photos, hand back the freed heap, reset the peak, run one pass over
    every photo and print its extra peak (JSON, MiB)."""
    import gc

    import torch

    torch.set_num_threads(threads)
    p = plan(quick)
    model, pool, batch = _setup(p, seed)
    _contender(what, model, PhotoStream(pool, 2, batch))
    gc.collect()
    _trim()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    before = _status_mib()
    started = time.perf_counter()
    _contender(what, model, PhotoStream(pool, p["n"], batch))
    seconds = time.perf_counter() - started
    after = _status_mib()
    print(json.dumps({"before": before["VmRSS"], "peak": after["VmHWM"], "extra": after["VmHWM"] - before["VmRSS"],
                      "seconds": seconds, "batch": batch}))


def _memory(what: str, quick: bool, seed: int, log: Any) -> dict[str, float] | None:
    import torch

    code = (f"from benchmarks.deep_views import memory_child; "
            f"memory_child({what!r}, {quick!r}, {seed}, {torch.get_num_threads()})")
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=900,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as err:
        log(f"  memory of {what} could not be measured: {err} {(getattr(err, 'stderr', '') or '')[-500:]}")
        return None


def _brute_force_error(model: Any, stream: PhotoStream, n: int) -> tuple[bool, float]:
    """The top-9 of :data:`STAGE` over the first ``n`` photos against every activation kept (the prefix's output,
    argsort over images, lower index first on ties): (indices equal, max relative value error)."""
    import torch

    from nnsee.methods.dataset_views.top_images import top_images_per_channel

    small = PhotoStream(stream.pool, n, stream.batch)
    with torch.no_grad():
        acts = torch.cat([prefix(model, STAGE)(x) for x in small()]).double().numpy()
    best = acts.reshape(*acts.shape[:2], -1).max(-1)  # (N, F)
    order = np.argsort(-best, axis=0, kind="stable")[:9].T
    got = top_images_per_channel(model, small, STAGE, k=9)
    want = np.take_along_axis(best.T, order, 1)
    return bool(np.array_equal(got.image_index, order)), float(np.abs(got.values - want).max() / np.abs(want).max())


def _projections(model: Any, stream: PhotoStream, tops: dict[str, Any], p: dict[str, Any], gate: IdleGate,
                 log: Any) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds of the projections of the first ``maps`` maps' top-9 per stage, and of a plain autograd loop to the
    same layer over the same images at the memory-bound batch size (one activation per image, the gradient to the
    input), after one untimed call of each (oneDNN's kernels for every batch shape)."""
    from dataclasses import replace

    import torch

    from nnsee.methods.dataset_views.projections import projection_batch_size, top9_projections

    ours, plain = {}, {}
    maps = p["maps"]
    for stage in p["projected"]:
        topk = tops[stage]
        first = replace(topk, values=topk.values[:maps], image_index=topk.image_index[:maps],
                        position=topk.position[:maps])
        images = stream.photos(first.image_index.reshape(-1)).numpy()  # the shown maps' photos, in order
        first = replace(first, image_index=np.arange(maps * 9).reshape(maps, 9))
        batch = projection_batch_size(model, torch.from_numpy(images[:1]), stage)
        channels, pos = np.repeat(np.arange(maps), 9), first.position.reshape(-1, 2)
        net = prefix(model, stage)

        def loop(images: Any = images, batch: int = batch, net: Any = net, channels: Any = channels,
                 pos: Any = pos) -> None:
            for s in range(0, len(images), batch):
                x = torch.from_numpy(images[s : s + batch]).requires_grad_(True)
                a = net(x.clone())
                r = torch.arange(len(x))
                picked = a[r, torch.as_tensor(channels[s : s + batch]), torch.as_tensor(pos[s : s + batch, 0]),
                           torch.as_tensor(pos[s : s + batch, 1])]
                torch.autograd.grad(picked.sum(), x)

        calls = [(f"projections {stage}", lambda first=first, images=images: top9_projections(model, images, first)),
                 (f"plain autograd {stage}", loop)]
        for _, fn in calls:
            fn()
        times, _, _ = interleaved(calls, p["info_rounds"], gate, log, f"projections {stage}")
        ours[stage], plain[stage] = times[calls[0][0]], times[calls[1][0]]
    return ours, plain


def bench(quick: bool, seed: int, gate: IdleGate, log: Any) -> Section:
    """The must-show and its info rows (see the module doc)."""
    import torch

    from nnsee.methods.dataset_views.top_images import top_images_per_channel, top_images_per_layer

    skip = "--quick" if quick else ""
    p = plan(quick)
    torch.manual_seed(seed)
    model, pool, batch = _setup(p, seed)
    stream = PhotoStream(pool, p["n"], batch)
    log(f"deep views: ResNet-18 shape, {p['n']} photos at {p['side']} px in batches of {batch}: warm-up")
    warm = PhotoStream(pool, 2 * batch, batch)
    forward_passes(model, warm, "layer4")
    top_images_per_layer(model, warm, list(STAGES), k=9)
    single = [(f"forward to {STAGE}", lambda: forward_passes(model, stream, STAGE)),
              (f"top-9 at {STAGE}", lambda: top_images_per_channel(model, stream, STAGE, k=9))]
    times, results, kept = interleaved(single, p["rounds"], gate, log, f"top-9 at {STAGE}")
    every = [("forward to layer4", lambda: forward_passes(model, stream, "layer4")),
             ("top-9 at all 5 stages, one pass", lambda: top_images_per_layer(model, stream, list(STAGES), k=9))]
    times_all, results_all, kept_all = interleaved(every, p["info_rounds"], gate, log, "top-9 at every stage")
    tops = results_all["top-9 at all 5 stages, one pass"][-1]
    one = results[f"top-9 at {STAGE}"][-1]
    same = bool(np.array_equal(tops[STAGE].image_index, one.image_index))
    same_err = float(np.abs(tops[STAGE].values - one.values).max() / np.abs(one.values).max())
    brute_same, brute_err = _brute_force_error(model, stream, p["check"])
    log("deep views: projections of the top-9 (the report's maps), interleaved with a plain autograd loop")
    proj, plain = _projections(model, stream, tops, p, gate, log)
    log("deep views: peak memory in fresh subprocesses (forward, top-9, top-9 at every stage)")
    mem = {what: _memory(what, quick, seed, log) for what in ("forward", "top9", "all")}

    def mib(what: str) -> str:
        return f"{mem[what]['extra']:.1f}" if mem[what] else "-"

    base, base_all = times[f"forward to {STAGE}"], times_all["forward to layer4"]
    rows = [[f"forward to {STAGE}", f"{base:.2f}", "1.00x", mib("forward")],
            [f"top-9 at {STAGE}", f"{times[f'top-9 at {STAGE}']:.2f}", f"{times[f'top-9 at {STAGE}'] / base:.3f}x",
             mib("top9")],
            ["forward to layer4", f"{base_all:.2f}", "1.00x", "-"],
            ["top-9 at all 5 stages, one pass", f"{times_all['top-9 at all 5 stages, one pass']:.2f}",
             f"{times_all['top-9 at all 5 stages, one pass'] / base_all:.3f}x", mib("all")]]
    rows += [[f"projections {s} ({p['maps']}x9)", f"{proj[s]:.2f}", f"{proj[s] / plain[s]:.2f}x plain autograd", "-"]
             for s in p["projected"]]
    section = Section(
        f"Dataset views on the ResNet-18 shape: {p['n']:,} photos at 3x{p['side']}x{p['side']}, batches of {batch} "
        f"(median of {kept} and {kept_all} interleaved rounds)",
        ["contender", "median s", "x its floor", "peak extra MiB"], rows=rows,
        notes=[f"photos: {p['pool']} random crops of 4 scikit-image photos x 4 flips, ImageNet-standardized, streamed "
               "in batches made on demand; weights seeded (benchmarks/deep_models.resnet18, 11.7M)",
               "extra memory = VmHWM during the pass - VmRSS before it, fresh process per contender, after a warm-up "
               "on 2 photos and malloc_trim (the model and the photo pool are resident before)",
               f"top-9 at {STAGE} from the one pass of every stage = its own pass: indices {same}, values "
               f"{same_err:.1e}; against every activation kept (first {p['check']} photos): indices {brute_same}, "
               f"values {brute_err:.1e}",
               "projections: the report's top9_projections (deconvnet rule, each batch's gradient pass stopped at "
               "the stage; receptive-field crops included) vs a plain autograd loop through the same modules to "
               f"the same activations at the memory-bound batch size ({p['maps']} maps x 9 images a stage), each "
               "after one untimed call"])
    section.targets.append(Target(f"top-9 at {STAGE} / forward passes to {STAGE}", times[f"top-9 at {STAGE}"] / base,
                                  "<=", TIME_BOUND, fmt=".3f", skip=skip))
    section.targets.append(Target(f"top-9 at {STAGE}: peak extra memory (MiB)",
                                  mem["top9"]["extra"] if mem["top9"] else None, "<=", MEMORY_BOUND_MIB, fmt=".1f",
                                  skip=skip, note=f"forward passes alone: {mib('forward')} MiB"))
    section.targets.append(Target("top-9 vs every activation kept: max relative value error",
                                  brute_err if brute_same and same else float("inf"), "<=", 1e-5, fmt=".1e",
                                  note="and equal image indices, also from the one pass of every stage"))
    section.raw = {"seconds": times, "seconds_all": times_all, "projections": proj, "plain_autograd": plain,
                   "memory": mem, "batch": batch, "plan": p}
    return section


if __name__ == "__main__":  # python -m benchmarks.deep_views [--quick] [--threads N]
    from benchmarks.common import exit_status

    def _log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if "--threads" in sys.argv:
        import torch

        torch.set_num_threads(int(sys.argv[sys.argv.index("--threads") + 1]))
    result = bench("--quick" in sys.argv, 0, IdleGate(0.0 if "--quick" in sys.argv else 60.0, log=_log), _log)
    print(result.render())
    sys.exit(exit_status(result.targets))
