"""Occlusion on a deep net: ResNet-18's shape at 3×224×224, one photo, window 16 stride 8 (27 × 27 = 729 occluded
copies), side by side with Captum at its default and best ``perturbations_per_eval``, in one interleaved run.

The region recomputation follows the occluded region through the residual blocks (:mod:`nnsee.methods.attribution.
occlusion_region`); the share of a full pass's convolution and linear multiply-adds that its crops skip is the bound
on what it can gain over full passes, reported beside the speed-ups. Maps are judged as in :mod:`benchmarks.occlusion`
against the brute-force float64 reference. ``--quick``: the same model and code path at 3×64×64 (49 copies), one
round, speed not judged.
"""

from __future__ import annotations

from typing import Any

from benchmarks import occlusion
from benchmarks.common import IdleGate, Section, Target

#: targets (issue 13): region ≥ 2× Captum's default, ≥ 1.4× Captum at its best perturbations_per_eval
VS_DEFAULT, VS_BEST, VS_FULL = 2.0, 1.4, 1.3
#: float32 maps through 20 layers to 1,000 logits: e ≤ MAP_BOUND. The drops (largest 0.33) are small beside the
#: logits, so float32 rounding is a larger share of them than on the small CNNs: measured e = 202 for Captum's own map,
#: 680-740 for ours (full passes and region alike; ours in float64: 8.6e-7); a drop scaled by 1.001 still gives 8,400
MAP_BOUND = 2048.0
#: full passes: ≤ FLOOR_BOUND × the forward floor (the chunk tuner times sizes from 1 up on its first call; measured
#: 1.21 with other processes on 0.8 of the 2 cores)
FLOOR_BOUND = 1.25
#: the crops must skip at least this share of the multiply-adds (54% at 224 px through layer3; a plan stopping at the
#: first residual block would skip under 5%)
MIN_SKIPPED = 0.45


def plan(quick: bool, seed: int) -> occlusion.Plan:
    import torch

    from benchmarks.deep_models import photo_batch, resnet18

    side = 64 if quick else 224
    model = resnet18(1000, seed=seed)
    x = photo_batch(1, side, seed=seed)
    with torch.no_grad():
        target = int(model(x).argmax())
    sweep = ((1, 4, 8, 16), 8, 0.2) if quick else ((1, 4, 8, 16, 32), 32, 1.0)
    case = occlusion.Case(f"ResNet-18 3x{side}x{side}, 1 photo, window 16 stride 8", model, x, target, 16, 8,
                          VS_DEFAULT, VS_BEST, VS_FULL, sweep=sweep, map_bound=MAP_BOUND, floor_bound=FLOOR_BOUND)
    return occlusion.Plan(cases=[case], rounds=1 if quick else 3, per_eval=(1, 8) if quick else (1, 8, 32),
                          notes=["ResNet-18's shape (benchmarks/deep_models.py, seeded random weights, eval-mode "
                                 "BatchNorm with non-trivial statistics), a scikit-image photo crop standardized "
                                 "with ImageNet's statistics, target = the model's top class"])


def skipped_work(case: occlusion.Case) -> float:
    """The fraction of a full pass's convolution and linear multiply-adds that the region plan's crops skip."""
    import torch

    from nnsee.methods.attribution.occlusion_region import layout, region_plan

    with torch.no_grad():
        lay = layout(region_plan(case.model.eval()), case.x, (case.window, case.window))
    return 0.0 if lay is None else lay.skipped


def bench(quick: bool, seed: int, gate: IdleGate, log: Any) -> Section:
    import captum

    p = plan(quick, seed)
    case = p.cases[0]
    skipped = skipped_work(case)
    m = occlusion._measure(case, p, gate, log)
    section = Section(
        f"Occlusion on ResNet-18's shape vs Captum {captum.__version__} at its default and best "
        f"perturbations_per_eval (median of {p.rounds} interleaved rounds after a warm-up)",
        ["case / contender", "median s", "x Captum default", "x Captum best", "x ours full", "x floor",
         "map error e"],
        rows=occlusion._rows(case, m), notes=list(p.notes))
    section.targets += occlusion.judge(case, m, quick)
    bound = 1 / (1 - skipped) if skipped < 1 else float("inf")
    section.targets.append(Target(f"{case.name}: share of a full pass's multiply-adds the crops skip", skipped, ">=",
                                  MIN_SKIPPED, fmt=".3f", skip="--quick: 64 px" if quick else "",
                                  note=f"bound on the speed-up over full passes: {bound:.2f}x"))
    section.notes.append(f"{case.name}: Captum by ppe " + ", ".join(
        f"{k}: {m['times'][f'Captum ppe {k}']:.3f}s" for k in p.per_eval)
        + f"; region plan skips {skipped:.1%} of the convolution and linear multiply-adds of a full pass (speed-up "
        f"bound {bound:.2f}x over full passes; measured {m['times']['ours full'] / m['times']['ours region']:.2f}x); "
        f"max|ref| {m['max_ref']:.3g}; {m['sweep']}")
    section.raw = {case.name: {**m, "skipped": skipped}}
    return section
