"""Attribution benchmarks, each side by side with its reference in one interleaved run (contenders alternate per
round, median of the undisturbed rounds after a warm-up):

* occlusion (Captum semantics): :mod:`benchmarks.occlusion` (maps against Captum in float64, full passes against the
  forward floor, the region recomputation against full passes and Captum at its default and best settings);
* saliency, guided backprop and the deconvnet vs one plain ``torch.autograd.grad`` of the summed target logits;
* integrated gradients vs Captum's ``IntegratedGradients(...).attribute(..., n_steps=50)`` at its default (all path
  points in one batch) and at its best ``internal_batch_size`` (the fastest of the same run);
* the streaming top-9 over Fashion-MNIST's training images vs a forward-only pass through the same layer, and its
  peak extra memory, measured in a fresh subprocess per contender (``VmHWM`` after resetting it).

Gradient maps are checked against Captum's: ``max |ours − Captum| / max |Captum|``. The models are nnsee's ``cnn``
with seeded random weights: only timing and agreement are measured here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import occlusion
from benchmarks.common import CpuWatch, IdleGate, Section, Target
from benchmarks.rounds import fastest, interleaved, rel_diff

AGREE = 1e-6
LAYER = "conv2"
ROOT = Path(__file__).resolve().parents[1]
#: the attribution benchmarks by name (``python -m benchmarks --only NAME``)
BENCHES = ("occlusion", "gradients", "ig", "top9")
#: Captum IG internal_batch_size values searched besides its default (all steps in one batch)
IG_BATCHES, IG_BATCHES_QUICK = (25, 16, 8, 4), (8,)


def run(quick: bool, seed: int, gate: IdleGate, log: Any, only: tuple[str, ...] = BENCHES) -> list[Section]:
    """The attribution benchmarks named in ``only`` (all by default), in the order of :data:`BENCHES`."""
    log("attribution: importing captum.attr ...")
    import captum.attr  # noqa: F401  (imported once, outside every timed region)

    benches = {"occlusion": occlusion.bench, "gradients": _gradients, "ig": _integrated_gradients, "top9": _top9}
    return [measured(benches[name], quick, seed, gate, log) for name in BENCHES if name in only]


def measured(bench: Callable[[bool, int, IdleGate, Any], Section], quick: bool, seed: int, gate: IdleGate,
             log: Any) -> Section:
    """``bench``'s section, with its wall time and the CPU other processes used meanwhile (the benchmark's own
    measuring subprocesses are not "other processes")."""
    import torch

    watch, children = CpuWatch(), _children_cpu()
    torch.manual_seed(seed)
    section = bench(quick, seed, gate, log)
    others = watch.others_cores()
    if others is not None:
        others = max(0.0, others - (_children_cpu() - children) / max(time.perf_counter() - watch.wall, 1e-9))
    section.others_cores, section.seconds = others, watch.elapsed()
    return section


def _children_cpu() -> float:
    """CPU seconds of this process's finished (waited-for) subprocesses."""
    t = os.times()
    return t.children_user + t.children_system


# ------------------------------------------------------------------------------------------ gradient methods


def _gradients(quick: bool, seed: int, gate: IdleGate, log: Any) -> Section:
    import torch
    from captum.attr import Deconvolution, GuidedBackprop, Saliency

    from nnsee.methods.attribution.deconvnet import deconvnet
    from nnsee.methods.attribution.guided_backprop import guided_backprop
    from nnsee.methods.attribution.saliency import saliency
    from nnsee.models import build_model

    skip = "--quick" if quick else ""
    rounds, inner = (2, 3) if quick else (15, 8)
    n = 64
    gen = torch.Generator().manual_seed(seed + 1)
    model = build_model("cnn", (1, 28, 28), 10).eval()
    x = torch.rand(n, 1, 28, 28, generator=gen)
    t = torch.randint(0, 10, (n,), generator=gen)

    def plain() -> Any:
        xg = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(model(xg).gather(1, t[:, None]).sum(), xg)
        return g

    def repeat(fn: Callable[[], Any]) -> Callable[[], Any]:
        def many() -> Any:
            for _ in range(inner - 1):
                fn()
            return fn()
        return many

    calls = [
        ("plain autograd", plain),
        ("saliency", lambda: saliency(model, x, t, reduce="none")),
        ("guided backprop", lambda: guided_backprop(model, x, t)),
        ("deconvnet", lambda: deconvnet(model, x, t)),
        ("Captum Saliency", lambda: Saliency(model).attribute(x, target=t, abs=True)),
        ("Captum GuidedBackprop", lambda: GuidedBackprop(model).attribute(x, target=t)),
        ("Captum Deconvolution", lambda: Deconvolution(model).attribute(x, target=t)),
    ]
    log(f"gradients: warm-up, then {rounds} interleaved rounds of {inner} calls each (batch {n})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Captum's notes on requires_grad and ReLU hooks, every call
        for _, fn in calls:
            fn()
        times, results, kept = interleaved([(name, repeat(fn)) for name, fn in calls], rounds, gate, log,
                                            "gradients")
    last = {name: r[-1] for name, r in results.items()}
    base = times["plain autograd"]
    agree = {
        "saliency": rel_diff(last["saliency"], last["Captum Saliency"]),
        "guided backprop": rel_diff(last["guided backprop"], last["Captum GuidedBackprop"]),
        "deconvnet": rel_diff(last["deconvnet"], last["Captum Deconvolution"]),
    }
    sal_vs_plain = rel_diff(last["saliency"], last["plain autograd"].abs())
    rows = []
    for name, _ in calls:
        rel = agree.get(name)
        rows.append([name, f"{1000 * times[name] / inner:.2f}", f"{times[name] / base:.2f}x",
                     f"{rel:.1e}" if rel is not None else "-"])
    section = Section(
        f"Saliency, guided backprop, deconvnet vs one plain torch.autograd.grad ({n} images 1x28x28, ms per call, "
        f"median of {kept} interleaved rounds of {inner} calls after a warm-up)",
        ["method", "ms/call", "x plain", "rel diff vs Captum"],
        rows=rows,
        notes=["plain autograd = grad of model(x).gather(1, t).sum() w.r.t. x; ours return numpy maps (N, C, H, W) "
               "(saliency with reduce='none'); nnsee cnn with seeded random weights",
               f"saliency vs |plain gradient|: max|diff|/max = {sal_vs_plain:.1e}"],
    )
    for name in ("saliency", "guided backprop", "deconvnet"):
        section.targets.append(Target(f"{name} time / plain autograd", times[name] / base, "<=", 1.1, fmt=".3f",
                                      skip=skip))
    for name, rel in agree.items():
        section.targets.append(Target(f"{name} map vs Captum: max|diff|/max|Captum|", rel, "<=", AGREE, fmt=".1e"))
    section.raw = {"seconds_per_call": {k: v / inner for k, v in times.items()}, "rel": agree}
    return section


# ------------------------------------------------------------------------------------------ integrated gradients


def _integrated_gradients(quick: bool, seed: int, gate: IdleGate, log: Any) -> Section:
    """IG against Captum's default (all path points in one batch) and its best ``internal_batch_size`` among
    IG_BATCHES (the fastest median of the same run); both speed-ups judged."""
    import torch
    from captum.attr import IntegratedGradients

    from nnsee.methods.attribution.integrated_gradients import ig_batch_size, integrated_gradients, step_points
    from nnsee.models import build_model

    skip = "--quick" if quick else ""
    rounds = 1 if quick else 5
    steps, side = 50, 64 if quick else 128
    gen = torch.Generator().manual_seed(seed + 2)
    model = build_model("cnn", (3, side, side), 10).eval()
    x = torch.rand(1, 3, side, side, generator=gen)
    target = 3
    alphas, _ = step_points("gausslegendre", steps)
    chunk = ig_batch_size(x.shape[1:])
    chunk = -(-steps // -(-steps // chunk))  # the even split integrated_gradients makes

    def plain_loop() -> Any:
        """What chunking alone gains: autograd.grad over the same path points in the same chunks (NCHW memory,
        through the whole model), nothing else."""
        total = torch.zeros_like(x)
        a = torch.as_tensor(alphas, dtype=x.dtype)
        for start in range(0, steps, chunk):
            points = (a[start:start + chunk].view(-1, 1, 1, 1) * x).requires_grad_(True)
            (g,) = torch.autograd.grad(model(points)[:, target].sum(), points)
            total += g.sum(0)
        return total

    def captum(batch: int | None) -> Callable[[], Any]:
        return lambda: IntegratedGradients(model).attribute(x, target=target, n_steps=steps,
                                                            internal_batch_size=batch)

    captum_names = {"Captum default": None,
                    **{f"Captum ibs {b}": b for b in (IG_BATCHES_QUICK if quick else IG_BATCHES)}}
    contenders = [
        *((name, captum(b)) for name, b in captum_names.items()),
        ("ours", lambda: integrated_gradients(model, x, target, steps=steps, quadrature="gausslegendre")),
        ("plain loop", plain_loop),
        *([] if quick else [("ours, chunk 8", lambda: integrated_gradients(model, x, target, steps=steps,
                                                                           batch_size=8)),
                            ("Captum ibs 8 NHWC", lambda: IntegratedGradients(model).attribute(
                                x.contiguous(memory_format=torch.channels_last), target=target, n_steps=steps,
                                internal_batch_size=8))]),
    ]
    log(f"integrated gradients: warm-up, then {rounds} interleaved rounds")
    for _, fn in contenders:
        fn()
    times, results, kept = interleaved(contenders, rounds, gate, log, "integrated gradients")
    best = fastest(times, list(captum_names))
    ours = results["ours"][-1]
    cap_attr, cap_delta = IntegratedGradients(model).attribute(x, target=target, n_steps=steps,
                                                               return_convergence_delta=True)
    rel = rel_diff(ours.attributions, results["Captum default"][-1])
    spread = rel_diff(captum(ig_batch_size(x.shape[1:]))(), results["Captum default"][-1])
    with torch.no_grad():
        scale = float(model(x)[0, target] - model(torch.zeros_like(x))[0, target])
    speedup, vs_best = times["Captum default"] / times["ours"], times[best] / times["ours"]

    def row(label: str, points: Any, name: str, delta: str) -> list[str]:
        return [label, str(points), f"{times[name]:.3f}", f"{times['Captum default'] / times[name]:.2f}x",
                f"{times[best] / times[name]:.2f}x", delta]

    section = Section(
        f"Integrated gradients, one 3x{side}x{side} input, {steps} steps gausslegendre, vs Captum's default (all "
        f"steps in one batch) and its best internal_batch_size (median of {kept} interleaved rounds after a warm-up)",
        ["contender", "path points per pass", "median s", "x Captum default", "x Captum best", "convergence delta"],
        rows=[row("Captum IntegratedGradients (default)", steps, "Captum default", f"{float(cap_delta[0]):+.2e}"),
              row(f"Captum, best internal_batch_size ({captum_names[best] or 'default'})",
                  captum_names[best] or steps, best, "-"),
              row("nnsee integrated_gradients", chunk, "ours", f"{float(ours.delta[0]):+.2e}"),
              row("  plain autograd loop, same chunks (info)", chunk, "plain loop", "-"),
              *([row("  same, batch_size=8 given (info)", 8, "ours, chunk 8",
                     f"{float(results['ours, chunk 8'][-1].delta[0]):+.2e}")] if "ours, chunk 8" in times else []),
              *([row("  Captum, internal_batch_size 8, channels-last input (info)", 8, "Captum ibs 8 NHWC", "-")]
                if "Captum ibs 8 NHWC" in times else [])],
        notes=[f"f(x) - f(baseline 0) = {scale:+.4f} (logit); Captum's delta from a separate untimed call with "
               "return_convergence_delta=True (ours always computes it, in float64)",
               "Captum by internal_batch_size: " + ", ".join(f"{captum_names[n] or 'default'}: {times[n]:.3f}s"
                                                             for n in captum_names),
               f"attributions: max|ours - Captum|/max|Captum| = {rel:.1e}; Captum with internal_batch_size="
               f"{ig_batch_size(x.shape[1:])} vs its default: {spread:.1e} (float32 noise across batch sizes)",
               "nnsee cnn (conv 16-32, kernel 5) with seeded random weights, input uniform [0, 1)",
               "plain autograd loop = the same path points and chunks through torch.autograd.grad, summed, without "
               "targets, baselines, the delta or numpy: what chunking alone gains; ours also runs the model in "
               "channels-last memory and pulls the step-weighted gradient sum back through conv1 once",
               "Captum given a channels-last input runs the model in that layout too (info row; not Captum's "
               "default use, so not judged)"],
    )
    section.targets.append(Target("integrated gradients speed-up over Captum's default (all steps in one batch)",
                                  speedup, ">=", 1.7, fmt=".3f", skip=skip))
    section.targets.append(Target(f"integrated gradients speed-up over Captum's best (internal_batch_size "
                                  f"{captum_names[best] or 'default'})", vs_best, ">=", 1.0, fmt=".3f", skip=skip))
    section.targets.append(Target("integrated gradients map vs Captum: max|diff|/max|Captum|", rel, "<=", AGREE,
                                  fmt=".1e", note=f"Captum vs itself: {spread:.1e}"))
    section.raw = {"seconds": times, "best": best, "rel": rel, "captum_self": spread,
                   "delta_ours": float(ours.delta[0]), "delta_captum": float(cap_delta[0])}
    return section


# ------------------------------------------------------------------------------------------ top-9 (dataset view)


def _images(n: int | None) -> np.ndarray:
    from nnsee.data.named import load_named

    train, _ = load_named("fashion-mnist", download=False)
    images = np.ascontiguousarray(train.images, dtype=np.float32)  # (N, 1, 28, 28), pixels / 255
    return images if n is None else images[:n]


def _prefix(model: Any, layer: str) -> Any:
    """The model's modules up to and including ``layer`` (an ``nn.Sequential``)."""
    import torch

    children = list(model.named_children())
    names = [name for name, _ in children]
    return torch.nn.Sequential(*(m for _, m in children[: names.index(layer) + 1]))


def _forward_loop(model: Any, images: np.ndarray, batch: int) -> int:
    import torch

    x = torch.from_numpy(images)
    with torch.no_grad():
        for i in range(0, len(x), batch):
            model(x[i : i + batch])
    return len(x)


def _status_mib() -> dict[str, float]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) / 1024
    return out


def memory_child(what: str, n: int | None, seed: int, threads: int) -> None:
    """Run in a fresh process: load the images, reset the peak RSS, run one pass, print its extra peak (JSON)."""
    import torch

    from nnsee.methods.dataset_views.top_images import auto_batch_size, top_images_per_channel
    from nnsee.models import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = build_model("cnn", (1, 28, 28), 10).eval()
    images = _images(n)
    batch = auto_batch_size(model, torch.from_numpy(images[:1]), LAYER)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    before = _status_mib()
    started = time.perf_counter()
    if what == "top9":
        top_images_per_channel(model, images, LAYER, k=9)
    else:
        _forward_loop(_prefix(model, LAYER), images, batch)
    seconds = time.perf_counter() - started
    after = _status_mib()
    print(json.dumps({"before": before["VmRSS"], "peak": after["VmHWM"], "extra": after["VmHWM"] - before["VmRSS"],
                      "seconds": seconds, "batch": batch}))


def _memory(what: str, n: int | None, seed: int) -> dict[str, float] | None:
    import torch

    code = (f"from benchmarks.attribution import memory_child; "
            f"memory_child({what!r}, {n!r}, {seed}, {torch.get_num_threads()})")
    try:
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as err:
        detail = getattr(err, "stderr", "") or ""
        print(f"memory measurement of {what} failed: {err} {detail[-500:]}", file=sys.stderr)
        return None


def _top9(quick: bool, seed: int, gate: IdleGate, log: Any) -> Section:
    import torch

    from nnsee.methods.dataset_views.top_images import auto_batch_size, top_images_per_channel
    from nnsee.models import build_model

    skip = "--quick" if quick else ""
    rounds = 1 if quick else 4
    n = 2000 if quick else None
    model = build_model("cnn", (1, 28, 28), 10).eval()
    images = _images(n)
    batch = auto_batch_size(model, torch.from_numpy(images[:1]), LAYER)
    prefix = _prefix(model, LAYER)
    contenders = [
        (f"forward to {LAYER}", lambda: _forward_loop(prefix, images, batch)),
        ("top-9 streaming", lambda: top_images_per_channel(model, images, LAYER, k=9)),
        ("forward, whole model", lambda: _forward_loop(model, images, batch)),
    ]
    log(f"top-9 over {len(images):,} Fashion-MNIST images at {LAYER!r} (batch {batch}): warm-up, then {rounds} "
        "interleaved rounds")
    warm = images[: 16 * batch]
    _forward_loop(model, warm, batch)
    top_images_per_channel(model, warm, LAYER, k=9)
    times, results, kept = interleaved(contenders, rounds, gate, log, "top-9")
    top = results["top-9 streaming"][-1]
    log("top-9: peak memory in fresh subprocesses (forward only, then top-9)")
    mem_forward = _memory("forward", n, seed)
    mem_top = _memory("top9", n, seed)
    base = times[f"forward to {LAYER}"]
    with torch.no_grad():
        shape = tuple(prefix(torch.from_numpy(images[:1])).shape[1:])
    keep_all = len(images) * int(np.prod(shape)) * 4 / 2**20

    def mib(m: dict[str, float] | None) -> str:
        return f"{m['extra']:.1f}" if m else "-"

    rows = [[name, f"{times[name]:.3f}", f"{times[name] / base:.2f}x",
             mib(mem_forward) if name.startswith("forward to") else mib(mem_top) if name.startswith("top") else "-"]
            for name, _ in contenders]
    section = Section(
        f"Top-9 per channel of {LAYER!r} over {len(images):,} Fashion-MNIST training images in one streaming pass vs "
        f"a forward-only pass through the same layer (batch {batch}; median of {kept} interleaved rounds)",
        ["contender", "median s", f"x forward to {LAYER}", "peak extra MiB"],
        rows=rows,
        notes=[f"pixels / 255, not standardized (the same for all); nnsee cnn with seeded random weights; "
               f"{top.values.shape[0]} channels x k={top.k}, map {shape[1]}x{shape[2]}; batch size chosen by "
               "top_images_per_channel's auto_batch_size, the forward loops use the same",
               "peak extra = VmHWM after the pass - VmRSS before it, in a fresh process each (peak reset through "
               "/proc/self/clear_refs after loading the images); the forward-only figure is the floor of any pass",
               f"keeping every {LAYER} activation instead would take {keep_all:,.0f} MiB"],
    )
    section.targets.append(Target(f"top-9 time / forward-only pass to {LAYER}", times["top-9 streaming"] / base, "<=",
                                  1.1, fmt=".3f", skip=skip))
    section.targets.append(Target("top-9 peak extra memory (MiB)", mem_top["extra"] if mem_top else None, "<=", 128.0,
                                  fmt=".1f", skip=skip,
                                  note=f"forward-only pass: {mib(mem_forward)} MiB"))
    section.raw = {"seconds": times, "memory_forward": mem_forward, "memory_top9": mem_top, "batch": batch,
                   "n_images": len(images)}
    return section
