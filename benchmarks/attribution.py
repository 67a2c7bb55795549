"""Attribution benchmarks, each side by side with its reference in one interleaved run (contenders alternate per
round, median of the undisturbed rounds after a warm-up):

* occlusion (Captum semantics) vs Captum's default ``Occlusion(...).attribute(...)`` (``perturbations_per_eval=1``),
  and vs the forward-throughput floor (occluded copies ÷ the model's best measured images per second);
* saliency, guided backprop and the deconvnet vs one plain ``torch.autograd.grad`` of the summed target logits;
* integrated gradients vs Captum's default ``IntegratedGradients(...).attribute(..., n_steps=50)``;
* the streaming top-9 over Fashion-MNIST's training images vs a forward-only pass through the same layer, and its
  peak extra memory, measured in a fresh subprocess per contender (``VmHWM`` after resetting it).

Every map is checked against the reference's: ``max |ours − ref| / max |ref|``. Where that exceeds 1e-6, the
reference's own float32 spread (Captum against itself at another batch size) shows the size of float32 noise.
The models are nnsee's ``cnn`` with seeded random weights: only timing and agreement are measured here.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import CpuWatch, IdleGate, Section, Target, clean_rounds, median, rotated, timed

FORWARD_BATCHES = (1, 4, 8, 16, 32, 64, 128, 256)
AGREE = 1e-6
LAYER = "conv2"
ROOT = Path(__file__).resolve().parents[1]


def run(quick: bool, seed: int, gate: IdleGate, log: Any) -> list[Section]:
    import torch

    log("attribution: importing captum.attr ...")
    import captum.attr  # noqa: F401  (imported once, outside every timed region)

    sections = []
    for bench in (_occlusion, _gradients, _integrated_gradients, _top9):
        watch, children = CpuWatch(), _children_cpu()
        torch.manual_seed(seed)
        section = bench(quick, seed, gate, log)
        others = watch.others_cores()
        if others is not None:  # our own measuring subprocesses are not "other processes"
            others = max(0.0, others - (_children_cpu() - children) / max(time.perf_counter() - watch.wall, 1e-9))
        section.others_cores = others
        sections.append(section)
    return sections


def _children_cpu() -> float:
    """CPU seconds of this process's finished (waited-for) subprocesses."""
    t = os.times()
    return t.children_user + t.children_system


# ----------------------------------------------------------------------------------------------------- helpers


def _interleaved(contenders: Sequence[tuple[str, Callable[[], Any]]], rounds: int, gate: IdleGate, log: Any,
                 label: str) -> tuple[dict[str, float], dict[str, list[Any]], int]:
    """Rounds that each run every contender once (the order rotating), after the idle gate.

    Returns (median seconds per contender over the undisturbed rounds, every round's results, rounds kept).
    """
    times: dict[str, list[float]] = {name: [] for name, _ in contenders}
    results: dict[str, list[Any]] = {name: [] for name, _ in contenders}
    others = []
    for r in range(rounds):
        gate.wait()
        watch = CpuWatch()
        for name, fn in rotated(contenders, r):
            seconds, result = timed(fn)
            times[name].append(seconds)
            results[name].append(result)
        others.append(watch.others_cores())
        log(f"  {label} round {r + 1}/{rounds}: "
            + ", ".join(f"{name} {times[name][-1]:.3f}s" for name, _ in contenders))
    keep = clean_rounds(others) or list(range(rounds))
    medians = {name: median([v[i] for i in keep]) for name, v in times.items()}
    kept = {name: [v[i] for i in keep] for name, v in results.items()}
    return medians, kept, len(keep)


def _rel(ours: Any, ref: Any) -> float:
    """``max |ours − ref| / max |ref|``."""
    a = np.asarray(ours.detach() if hasattr(ours, "detach") else ours, dtype=np.float64)
    b = np.asarray(ref.detach() if hasattr(ref, "detach") else ref, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {a.shape} vs {b.shape}")
    scale = float(np.abs(b).max())
    return float(np.abs(a - b).max()) / (scale if scale > 0 else 1.0)


def _fmt_rel(value: float) -> str:
    return f"{value:.1e}"


def _throughput(model: Any, shape: Sequence[int], batches: Sequence[int], min_images: int, min_seconds: float,
                warmed: set[int]) -> dict[int, float]:
    """Forward images per second (no grad) at each batch size: timed forwards until ``min_images`` images or
    ``min_seconds`` passed (at least one), after one untimed forward at a batch size not yet in ``warmed``."""
    import torch

    rates = {}
    with torch.no_grad():
        for b in batches:
            x = torch.randn(b, *shape)
            if b not in warmed:
                model(x)
                warmed.add(b)
            done, start = 0, time.perf_counter()
            while True:
                model(x)
                done += b
                elapsed = time.perf_counter() - start
                if done >= min_images or elapsed >= min_seconds:
                    break
            rates[b] = done / elapsed
    return rates


def _best_rate(sweeps: list[dict[int, float]]) -> tuple[int, float, dict[int, float]]:
    """(best batch size, its median images/s, the median images/s per batch size) over the kept rounds."""
    per = {b: median([s[b] for s in sweeps]) for b in sweeps[0]}
    best = max(per, key=per.__getitem__)
    return best, per[best], per


def _sweep_note(title: str, per: dict[int, float], best: int) -> str:
    return (f"forward throughput of {title} (images/s by batch size, median of rounds): "
            + ", ".join(f"{b}: {r:,.0f}" for b, r in per.items()) + f"; best {per[best]:,.0f} at {best}")


# ----------------------------------------------------------------------------------------------------- occlusion


def _occlusion(quick: bool, seed: int, gate: IdleGate, log: Any) -> Section:
    import torch
    from captum.attr import Occlusion

    from nnsee.methods.attribution.occlusion import occlusion, occlusion_batch_size, occlusion_grid
    from nnsee.models import build_model

    skip = "--quick" if quick else ""
    rounds = 1 if quick else 3
    gen = torch.Generator().manual_seed(seed)
    small = build_model("cnn", (1, 28, 28), 10).eval()
    big = build_model("cnn", (3, 128, 128), 10).eval()
    n_batch = 8 if quick else 32
    x1 = torch.rand(1, 1, 28, 28, generator=gen)
    xb = torch.rand(n_batch, 1, 28, 28, generator=gen)
    tb = torch.randint(0, 10, (n_batch,), generator=gen)
    xl = torch.rand(1, 3, 128, 128, generator=gen)
    big_stride = 8 if quick else 4

    def captum(model: Any, x: Any, t: Any, window: tuple[int, int, int], stride: tuple[int, int, int],
               per_eval: int = 1) -> Any:
        return Occlusion(model).attribute(x, sliding_window_shapes=window, strides=stride, target=t,
                                          perturbations_per_eval=per_eval)

    cases = [  # name, model, x, target, our window/stride, Captum's window/stride, images shape
        ("1x28x28, 1 image", small, x1, 3, (4, 4), 1, (1, 4, 4), (1, 1, 1)),
        (f"1x28x28, batch {n_batch}", small, xb, tb, (4, 4), 1, (1, 4, 4), (1, 1, 1)),
        (f"3x128x128, 1 image (window 8, stride {big_stride})", big, xl, 3, (8, 8), big_stride, (3, 8, 8),
         (3, big_stride, big_stride)),
    ]

    def ours_fn(case: tuple, recompute: str = "auto") -> Callable[[], Any]:
        _, model, x, t, w, s, _, _ = case
        return lambda: occlusion(model, x, t, window=w, stride=s, recompute=recompute)

    def captum_fn(case: tuple) -> Callable[[], Any]:
        _, model, x, t, _, _, cw, cs = case
        return lambda: captum(model, x, t, cw, cs)

    sweep_small = (FORWARD_BATCHES, 512 if quick else 4096, 0.2 if quick else 0.4, set())
    sweep_big = (FORWARD_BATCHES[:6] if quick else FORWARD_BATCHES, 16 if quick else 128, 0.3 if quick else 0.6,
                 set())

    log("occlusion: warm-up")
    occlusion(small, x1, 3, window=(4, 4), stride=1)
    occlusion(small, x1, 3, window=(4, 4), stride=1, recompute="full")
    captum(small, x1, 3, (1, 4, 4), (1, 1, 1))
    occlusion(big, xl, 3, window=(32, 32), stride=32)
    occlusion(big, xl, 3, window=(32, 32), stride=32, recompute="full")
    captum(big, xl, 3, (3, 32, 32), (3, 32, 32))

    log(f"occlusion 1x28x28: {rounds} interleaved rounds (one image, batch {n_batch}, forward throughput)")
    small_contenders = [("Captum 1", captum_fn(cases[0])), ("ours 1", ours_fn(cases[0])),
                        ("ours 1 full", ours_fn(cases[0], "full")),
                        ("Captum batch", captum_fn(cases[1])), ("ours batch", ours_fn(cases[1])),
                        ("ours batch full", ours_fn(cases[1], "full")),
                        ("forward sweep", lambda: _throughput(small, (1, 28, 28), *sweep_small))]
    t_small, r_small, k_small = _interleaved(small_contenders, rounds, gate, log, "occlusion 28x28")
    log(f"occlusion 3x128x128: {rounds} interleaved rounds (one image, forward throughput)")
    big_contenders = [("Captum", captum_fn(cases[2])), ("ours", ours_fn(cases[2])),
                      ("ours full", ours_fn(cases[2], "full")),
                      ("forward sweep", lambda: _throughput(big, (3, 128, 128), *sweep_big))]
    t_big, r_big, k_big = _interleaved(big_contenders, rounds, gate, log, "occlusion 128x128")

    best_small, rate_small, per_small = _best_rate(r_small["forward sweep"])
    best_big, rate_big, per_big = _best_rate(r_big["forward sweep"])
    measured = [  # (times, results, key of Captum, key of ours, images/s)
        (t_small, r_small, "Captum 1", "ours 1", rate_small),
        (t_small, r_small, "Captum batch", "ours batch", rate_small),
        (t_big, r_big, "Captum", "ours", rate_big),
    ]
    log("occlusion: agreement checks (Captum at another perturbations_per_eval; exact maps in float64)")
    rows, speedups, floors, rels, selfs, per_evals, errs, cap_errs = [], [], [], [], [], [], [], []
    for case, (times, results, kc, ko, rate) in zip(cases, measured, strict=True):
        name, model, x, t, w, s, cw, cs = case
        grid = occlusion_grid(x.shape[1:], w, s)
        chunk = _region_chunk(model, x, grid)
        copies = len(x) * grid.size
        floor = copies / rate
        tc, to, tf = times[kc], times[ko], times[ko + " full"]
        ours_map, cap_map = results[ko][-1], results[kc][-1]
        rel = _rel(ours_map, cap_map)
        # Captum's own float32 spread: one image at the full passes' chunk size, a batch at two perturbations per
        # forward pass
        per_eval = occlusion_batch_size(x.shape[1:]) if len(x) == 1 else 2
        spread = _rel(captum(model, x, t, cw, cs, per_eval=per_eval), cap_map)
        # the exact map: Captum in float64 (its forward batches of 64), ours in float64 for the 128x128 image,
        # which equals Captum's there (the float64 check below)
        m64, x64 = copy.deepcopy(model).double(), x.double()
        exact = (occlusion(m64, x64, t, window=w, stride=s) if x.shape[-1] == 128
                 else captum(m64, x64, t, cw, cs, per_eval=64))
        err, cap_err = _rel(ours_map, exact), _rel(cap_map, exact)
        speedups.append(tc / to)
        floors.append(to / floor)
        rels.append(rel)
        selfs.append(spread)
        per_evals.append(per_eval)
        errs.append(err)
        cap_errs.append(cap_err)
        rows.append([name, f"{copies:,}", f"{chunk}", f"{tc:.3f}", f"{to:.3f}", f"{tc / to:.2f}x", f"{floor:.3f}",
                     f"{to / floor:.2f}x", _fmt_rel(rel), f"{_fmt_rel(spread)} ({per_eval})",
                     f"{_fmt_rel(err)} / {_fmt_rel(cap_err)}"])
        full_rel = _rel(results[ko + " full"][-1], cap_map)
        rows.append(["  same, full passes (info)", f"{copies:,}", f"{occlusion_batch_size(x.shape[1:])}",
                     f"{tc:.3f}", f"{tf:.3f}", f"{tc / tf:.2f}x", f"{floor:.3f}", f"{tf / floor:.2f}x",
                     _fmt_rel(full_rel), "", f"{_fmt_rel(_rel(results[ko + ' full'][-1], exact))}"])
    # float64: both at window 8 stride 8 on the 3x128x128 image
    big64, xl64 = copy.deepcopy(big).double(), xl.double()
    rel64 = _rel(occlusion(big64, xl64, 3, window=(8, 8), stride=8), captum(big64, xl64, 3, (3, 8, 8), (3, 8, 8)))
    rel64_full = _rel(occlusion(big64, xl64, 3, window=(8, 8), stride=8, recompute="full"),
                      captum(big64, xl64, 3, (3, 8, 8), (3, 8, 8)))

    section = Section(
        f"Occlusion (Captum semantics) vs Captum {__import__('captum').__version__}'s default "
        f"perturbations_per_eval=1 (median of {min(k_small, k_big)} interleaved rounds after a warm-up)",
        ["case", "copies", "chunk", "Captum s", "ours s", "speed-up", "floor s", "ours/floor", "rel diff",
         "Captum self (k)", "err vs f64: ours / Captum"],
        rows=rows,
        notes=[
            "nnsee cnn (conv 16-32, kernel 5, seeded random weights), inputs uniform [0, 1), logit targets; "
            "window 4 stride 1 on 28x28 = 625 positions per image",
            "ours = occlusion() as users call it: the nnsee cnn is an nn.Sequential of conv/ReLU/pool, so only the "
            "region each window changes is recomputed (recompute='auto' -> 'region'); the info rows force "
            "recompute='full' (every copy through the whole model)",
            "floor = occluded copies / the model's best measured forward images/s (same rounds): full passes can "
            "only approach it, the region recomputation goes below it; chunk = copies per pass (chosen "
            "automatically)",
            "rel diff = max|ours - Captum| / max|Captum|; Captum self (k) = the same for Captum at "
            "perturbations_per_eval=k vs its default 1: its own float32 noise across batch sizes",
            "err vs f64 = max|map - exact| / max|exact|, exact = the same map computed in float64 (Captum's, and "
            "for 3x128x128 ours, equal to Captum's in float64); float32 rounding differs between the region "
            "recomputation (channels-last convolutions) and Captum's full passes, so their difference is the sum of "
            "two float32 errors of the same size",
            f"float64 (model and image in double), 3x128x128 window 8 stride 8: max|ours - Captum|/max|Captum| = "
            f"{rel64:.1e} (region), {rel64_full:.1e} (full passes)",
            _sweep_note("1x28x28", per_small, best_small),
            _sweep_note("3x128x128", per_big, best_big),
        ],
    )
    names = ["one 28x28 image", f"batch of {n_batch} 28x28", "one 3x128x128 image"]
    for name, speedup, bound in zip(names, speedups, (8.0, 1.2, 1.4), strict=True):
        section.targets.append(Target(f"occlusion speed-up vs Captum, {name}", speedup, ">=", bound, fmt=".3f",
                                      skip=skip))
    section.targets.append(Target("occlusion never slower than Captum's default (smallest speed-up)", min(speedups),
                                  ">=", 1.0, fmt=".3f", skip=skip))
    for name, ratio in zip(names, floors, strict=True):
        section.targets.append(Target(f"occlusion time / forward-throughput floor, {name}", ratio, "<=", 1.1,
                                      fmt=".3f", skip=skip))
    for name, rel, spread, err, cap_err in zip(names, rels, selfs, errs, cap_errs, strict=True):
        noise = rel > AGREE and rel <= err + cap_err
        section.targets.append(Target(
            f"occlusion map vs Captum, {name}: max|diff|/max|Captum|", rel, "<=", AGREE, fmt=".1e",
            note=f"Captum vs itself: {spread:.1e}",
            skip=f"float32 noise: the difference is within ours + Captum's own errors vs the exact float64 map "
                 f"({err:.1e} + {cap_err:.1e})" if noise else ""))
        # the same float32 noise level as Captum's default: at most 1.5x its error (or 1e-6)
        section.targets.append(Target(
            f"occlusion map error vs the exact float64 map, {name}: ours <= max(1e-6, 1.5 x Captum's {cap_err:.1e})",
            err, "<=", max(AGREE, 1.5 * cap_err), fmt=".1e"))
    section.targets.append(Target("occlusion map vs Captum in float64, 3x128x128 window 8 stride 8", rel64, "<=",
                                  AGREE, fmt=".1e"))
    section.raw = {"seconds": {**{f"28x28 {k}": v for k, v in t_small.items()},
                               **{f"128x128 {k}": v for k, v in t_big.items()}},
                   "throughput_28": per_small, "throughput_128": per_big, "rel": rels, "captum_self": selfs,
                   "rel_float64_128": rel64, "err_float64": errs, "captum_err_float64": cap_errs}
    return section


def _region_chunk(model: Any, x: Any, grid: Any) -> int:
    """The copies per pass occlusion() chooses for the region recomputation."""
    import torch

    from nnsee.methods.attribution.occlusion import region_batch_size
    from nnsee.methods.attribution.occlusion_region import RegionForward, region_plan

    with torch.no_grad():
        return region_batch_size(RegionForward(region_plan(model), x).copy_elements(*grid.window[1:]))


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
        times, results, kept = _interleaved([(name, repeat(fn)) for name, fn in calls], rounds, gate, log,
                                            "gradients")
    last = {name: r[-1] for name, r in results.items()}
    base = times["plain autograd"]
    agree = {
        "saliency": _rel(last["saliency"], last["Captum Saliency"]),
        "guided backprop": _rel(last["guided backprop"], last["Captum GuidedBackprop"]),
        "deconvnet": _rel(last["deconvnet"], last["Captum Deconvolution"]),
    }
    sal_vs_plain = _rel(last["saliency"], last["plain autograd"].abs())
    rows = []
    for name, _ in calls:
        rel = agree.get(name)
        rows.append([name, f"{1000 * times[name] / inner:.2f}", f"{times[name] / base:.2f}x",
                     _fmt_rel(rel) if rel is not None else "-"])
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
    import torch
    from captum.attr import IntegratedGradients

    from nnsee.methods.attribution.integrated_gradients import ig_batch_size, integrated_gradients, step_points
    from nnsee.models import build_model

    skip = "--quick" if quick else ""
    rounds = 2 if quick else 5
    steps = 50
    gen = torch.Generator().manual_seed(seed + 2)
    model = build_model("cnn", (3, 128, 128), 10).eval()
    x = torch.rand(1, 3, 128, 128, generator=gen)
    target = 3
    alphas, _ = step_points("gausslegendre", steps)
    chunk = ig_batch_size(x.shape[1:])
    chunk = -(-steps // -(-steps // chunk))  # the even split integrated_gradients makes

    def plain_loop() -> Any:
        """The floor of chunking: autograd.grad over the same path points in the same chunks, nothing else."""
        total = torch.zeros_like(x)
        a = torch.as_tensor(alphas, dtype=x.dtype)
        for start in range(0, steps, chunk):
            points = (a[start:start + chunk].view(-1, 1, 1, 1) * x).requires_grad_(True)
            (g,) = torch.autograd.grad(model(points)[:, target].sum(), points)
            total += g.sum(0)
        return total

    contenders = [
        ("Captum default", lambda: IntegratedGradients(model).attribute(x, target=target, n_steps=steps)),
        ("ours", lambda: integrated_gradients(model, x, target, steps=steps, method="gausslegendre")),
        ("plain loop", plain_loop),
        *([] if quick else [("ours, chunk 8", lambda: integrated_gradients(model, x, target, steps=steps,
                                                                           batch_size=8))]),
    ]
    log(f"integrated gradients: warm-up, then {rounds} interleaved rounds")
    for _, fn in contenders:
        fn()
    times, results, kept = _interleaved(contenders, rounds, gate, log, "integrated gradients")
    ours = results["ours"][-1]
    cap_attr, cap_delta = IntegratedGradients(model).attribute(x, target=target, n_steps=steps,
                                                               return_convergence_delta=True)
    rel = _rel(ours.attributions, results["Captum default"][-1])
    spread = _rel(IntegratedGradients(model).attribute(x, target=target, n_steps=steps,
                                                       internal_batch_size=ig_batch_size(x.shape[1:])),
                  results["Captum default"][-1])
    with torch.no_grad():
        scale = float(model(x)[0, target] - model(torch.zeros_like(x))[0, target])
    speedup = times["Captum default"] / times["ours"]
    section = Section(
        f"Integrated gradients, one 3x128x128 input, {steps} steps gausslegendre, vs Captum's default (all steps in "
        f"one batch) (median of {kept} interleaved rounds after a warm-up)",
        ["contender", "path points per pass", "median s", "speed-up", "convergence delta"],
        rows=[["Captum IntegratedGradients", f"{steps}", f"{times['Captum default']:.3f}", "1.00x",
               f"{float(cap_delta[0]):+.2e}"],
              ["nnsee integrated_gradients", f"{chunk}", f"{times['ours']:.3f}",
               f"{speedup:.2f}x", f"{float(ours.delta[0]):+.2e}"],
              ["  plain autograd loop, same chunks (info)", f"{chunk}", f"{times['plain loop']:.3f}",
               f"{times['Captum default'] / times['plain loop']:.2f}x", "-"],
              *([["  same, batch_size=8 given (info)", "8", f"{times['ours, chunk 8']:.3f}",
                  f"{times['Captum default'] / times['ours, chunk 8']:.2f}x",
                  f"{float(results['ours, chunk 8'][-1].delta[0]):+.2e}"]] if "ours, chunk 8" in times else [])],
        notes=[f"f(x) - f(baseline 0) = {scale:+.4f} (logit); Captum's delta from a separate untimed call with "
               "return_convergence_delta=True (ours always computes it, in float64)",
               f"attributions: max|ours - Captum|/max|Captum| = {rel:.1e}; Captum with internal_batch_size="
               f"{ig_batch_size(x.shape[1:])} vs its default: {spread:.1e} (float32 noise across batch sizes)",
               "nnsee cnn (conv 16-32, kernel 5) with seeded random weights, input uniform [0, 1)",
               "plain autograd loop = the same path points and chunks through torch.autograd.grad, summed, without "
               "targets, baselines, the delta or numpy: the most chunking alone can gain"],
    )
    section.targets.append(Target("integrated gradients speed-up vs Captum's default", speedup, ">=", 1.7, fmt=".3f",
                                  skip=skip))
    section.targets.append(Target("integrated gradients map vs Captum: max|diff|/max|Captum|", rel, "<=", AGREE,
                                  fmt=".1e", note=f"Captum vs itself: {spread:.1e}"))
    section.raw = {"seconds": times, "rel": rel, "captum_self": spread, "delta_ours": float(ours.delta[0]),
                   "delta_captum": float(cap_delta[0])}
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

    from nnsee.methods.dataset_views.top_activations import auto_batch_size, top_activations
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
        top_activations(model, images, LAYER, k=9)
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

    from nnsee.methods.dataset_views.top_activations import auto_batch_size, top_activations
    from nnsee.models import build_model

    skip = "--quick" if quick else ""
    rounds = 1 if quick else 4
    n = 6000 if quick else None
    model = build_model("cnn", (1, 28, 28), 10).eval()
    images = _images(n)
    batch = auto_batch_size(model, torch.from_numpy(images[:1]), LAYER)
    prefix = _prefix(model, LAYER)
    contenders = [
        (f"forward to {LAYER}", lambda: _forward_loop(prefix, images, batch)),
        ("top-9 streaming", lambda: top_activations(model, images, LAYER, k=9)),
        ("forward, whole model", lambda: _forward_loop(model, images, batch)),
    ]
    log(f"top-9 over {len(images):,} Fashion-MNIST images at {LAYER!r} (batch {batch}): warm-up, then {rounds} "
        "interleaved rounds")
    warm = images[: 16 * batch]
    _forward_loop(model, warm, batch)
    top_activations(model, warm, LAYER, k=9)
    times, results, kept = _interleaved(contenders, rounds, gate, log, "top-9")
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
               "top_activations' auto_batch_size, the forward loops use the same",
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
