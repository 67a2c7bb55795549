"""Occlusion (Captum semantics) side by side with Captum, every map judged against an independent float64 reference.

Correctness. For each case (images ``x``, a ``w × w`` window over all ``C`` channels, stride ``s``, logit targets),
the reference ``R`` is the map by brute force in float64 (:func:`reference`: float64 copies of the model and the
images, one occluded copy per window position, at the *same* window and stride), code that shares nothing with
nnsee's or Captum's. (Captum in float64 is not exact where windows overlap: it divides its sums in float32.) A map
``M``'s error is

    e(M) = max |M − R| / (ε₃₂ · max |R|),      ε₃₂ = 2⁻²³ ≈ 1.19e-7,

and the float32 maps (ours by region recomputation, ours by full passes, and Captum's own at its default, which
shows the bound is one float32 rounding reaches) must have ``e ≤ MAP_BOUND``; ours computed in float64
``e ≤ FLOAT64_BOUND`` (float64 rounding; ``e ≤ 1``, the output's rounding, where the map comes back in
float32). Float32 rounding gives 20–70 units on these models; every
drop scaled by 1.001 gives about 8,400, a reference at the wrong stride far more.

Speed, in one interleaved run per case (median of the undisturbed rounds after a warm-up):

* full passes (``recompute="full"``) against the forward-throughput floor ``copies / max_b(images per second at
  batch b)``: at most ``FLOOR_BOUND`` times it;
* the region recomputation (``recompute="auto"``; the nnsee cnn is an ``nn.Sequential`` of conv/ReLU/pool) against
  full passes, against Captum's default ``perturbations_per_eval=1``, and against Captum at its best
  ``perturbations_per_eval`` among ``Plan.per_eval`` (the fastest median of the same run).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

from benchmarks.common import IdleGate, Section, Target
from benchmarks.rounds import FORWARD_BATCHES, best_rate, eps_error, fastest, interleaved, sweep_note, throughput

#: float32 maps: e(M) ≤ MAP_BOUND (units of ε₃₂ · max|R|)
MAP_BOUND = 256.0
#: ours in float64: e(M) ≤ 1e-4 (about 1e-11 of max|R|: float64 rounding); 1 for a map returned in float32
FLOAT64_BOUND, FLOAT32_OUTPUT_BOUND = 1e-4, 1.0
#: full passes: time ≤ FLOOR_BOUND × the forward-throughput floor
FLOOR_BOUND = 1.1
#: elements per forward pass of the float64 reference (window positions × images × image elements)
REFERENCE_ELEMENTS = 2**19


@dataclass
class Case:
    """One occlusion problem and its speed targets (speed-ups of the region recomputation)."""

    name: str
    model: Any
    x: Any
    target: Any
    window: int
    stride: int
    vs_default: float  # ≥ this speed-up over Captum's default perturbations_per_eval=1
    vs_best: float  # ≥ this over Captum at its best perturbations_per_eval
    vs_full: float  # ≥ this over full passes
    sweep: tuple[tuple[int, ...], int, float] = (FORWARD_BATCHES, 4096, 0.4)  # batches, min images, min seconds
    map_bound: float = MAP_BOUND  # float32 maps: e ≤ this
    floor_bound: float = FLOOR_BOUND  # full passes: time ≤ this × the forward floor

    @property
    def captum_window(self) -> tuple[int, int, int]:
        return (int(self.x.shape[1]), self.window, self.window)

    @property
    def captum_stride(self) -> tuple[int, int, int]:
        return (int(self.x.shape[1]), self.stride, self.stride)

    def positions(self) -> int:
        return (-(-(self.x.shape[2] - self.window) // self.stride) + 1) * (
            -(-(self.x.shape[3] - self.window) // self.stride) + 1)


@dataclass
class Plan:
    cases: list[Case]
    rounds: int
    per_eval: tuple[int, ...]  # Captum's perturbations_per_eval values searched (1, its default, first)
    notes: list[str] = field(default_factory=list)


def plan(quick: bool, seed: int) -> Plan:
    """The cases: one 28x28 image, a batch of 32 28x28 images (window 4 stride 1), one 3x128x128 image (window 8
    stride 4). ``--quick``: stride 2, a batch of 4, a 3x48x48 image: the same code paths, a tenth of the copies."""
    import torch

    from nnsee.models import build_model

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    small = build_model("cnn", (1, 28, 28), 10).eval()
    side, n, s = (48, 4, 2) if quick else (128, 32, 1)
    big = build_model("cnn", (3, side, side), 10).eval()
    x1, xb = torch.rand(1, 1, 28, 28, generator=gen), torch.rand(n, 1, 28, 28, generator=gen)
    tb = torch.randint(0, 10, (n,), generator=gen)
    xl = torch.rand(1, 3, side, side, generator=gen)
    big_sweep = (FORWARD_BATCHES[:6], 16, 0.2) if quick else (FORWARD_BATCHES, 128, 0.6)
    small_sweep = (FORWARD_BATCHES, 512, 0.2) if quick else (FORWARD_BATCHES, 4096, 0.4)
    return Plan(
        cases=[Case(f"1x28x28, 1 image, window 4 stride {s}", small, x1, 3, 4, s, 8.0, 1.5, 1.5, sweep=small_sweep),
               Case(f"1x28x28, batch {n}, window 4 stride {s}", small, xb, tb, 4, s, 1.2, 1.5, 2.0,
                    sweep=small_sweep),
               Case(f"3x{side}x{side}, 1 image, window 8 stride 4", big, xl, 3, 8, 4, 1.4, 1.5, 4.0,
                    sweep=big_sweep)],
        rounds=1 if quick else 3,
        per_eval=(1, 32) if quick else (1, 8, 32, 128),
        notes=["nnsee cnn (conv 16-32, kernel 5, seeded random weights), inputs uniform [0, 1), logit targets"],
    )


def captum(case: Case, per_eval: int = 1, model: Any = None, x: Any = None) -> Any:
    """Captum's ``Occlusion(model).attribute`` at the case's window and stride (over all channels)."""
    from captum.attr import Occlusion

    return Occlusion(case.model if model is None else model).attribute(
        case.x if x is None else x, sliding_window_shapes=case.captum_window, strides=case.captum_stride,
        target=case.target, perturbations_per_eval=per_eval)


def ours(case: Case, recompute: str = "auto", model: Any = None, x: Any = None) -> Any:
    from nnsee.methods.attribution.occlusion import occlusion

    return occlusion(case.model if model is None else model, case.x if x is None else x, case.target,
                     window=(case.window, case.window), stride=case.stride, recompute=recompute)


def _starts(size: int, window: int, stride: int) -> list[int]:
    """Captum's window starts along an axis: ``0, s, 2s, …``, ``⌈(D − w) / s⌉ + 1`` of them (the last one may stick
    out of the image and is cut off)."""
    return [i * stride for i in range(-(-(size - window) // stride) + 1)]


def reference(case: Case) -> Any:
    """The independent reference, written here from the definition in float64 (model and images): for every window
    position, the images with the window (all channels) set to 0 give ``drop = f(x)[t] − f(x_occluded)[t]``, added
    to every element the window covers; each element's sum is divided by the number of windows covering it.

    Not Captum in float64: Captum divides its sums in float32 (``single_attrib.float() / weight`` in its
    feature ablation), which rounds a float64 map to float32 wherever windows overlap."""
    import torch

    model, x = copy.deepcopy(case.model).double(), case.x.double()
    n, _, height, width = x.shape
    w = case.window
    boxes = [(y, x0) for y in _starts(height, w, case.stride) for x0 in _starts(width, w, case.stride)]
    rows = torch.arange(n)
    t = torch.as_tensor(case.target).expand(n)
    total, count = torch.zeros_like(x), torch.zeros(height, width, dtype=torch.float64)
    per_pass = max(1, REFERENCE_ELEMENTS // (n * x[0].numel()))
    with torch.no_grad():
        clean = model(x)[rows, t]
        for first in range(0, len(boxes), per_pass):
            part = boxes[first:first + per_pass]
            copies = x.repeat(len(part), 1, 1, 1)  # position-major: copy k * n + i is image i
            for k, (y, x0) in enumerate(part):
                copies[k * n:(k + 1) * n, :, y:y + w, x0:x0 + w] = 0.0
            drops = clean.repeat(len(part)) - model(copies)[torch.arange(len(copies)), t.repeat(len(part))]
            for k, (y, x0) in enumerate(part):
                total[:, :, y:y + w, x0:x0 + w] += drops[k * n:(k + 1) * n, None, None, None]
                count[y:y + w, x0:x0 + w] += 1
    return total / count


def _warm(case: Case, per_eval: tuple[int, ...]) -> None:
    """One untimed call of every contender on a coarse grid (few positions): first-call costs out of the rounds."""
    side = max(case.window, min(case.x.shape[2:]) // 4)
    coarse = replace(case, window=side, stride=side)
    for k in per_eval:
        captum(coarse, k)
    ours(coarse)
    ours(coarse, "full")


def _measure(case: Case, p: Plan, gate: IdleGate, log: Any) -> dict[str, Any]:
    """Times (interleaved rounds), maps and errors of one case."""
    import torch

    batches, min_images, min_seconds = case.sweep
    warmed: set[int] = set()
    _warm(case, p.per_eval)
    throughput(case.model, case.x.shape[1:], batches, 1, 0.0, warmed)
    contenders = [*((f"Captum ppe {k}", lambda k=k: captum(case, k)) for k in p.per_eval),
                  ("ours region", lambda: ours(case)), ("ours full", lambda: ours(case, "full")),
                  ("forward sweep", lambda: throughput(case.model, case.x.shape[1:], batches, min_images,
                                                       min_seconds, warmed))]
    log(f"occlusion {case.name}: {p.rounds} interleaved rounds")
    times, results, kept = interleaved(contenders, p.rounds, gate, log, f"occlusion {case.name}")
    log(f"occlusion {case.name}: the float64 reference (brute force) and ours in float64")
    ref = reference(case)
    best_bs, rate, per = best_rate(results["forward sweep"])
    copies = len(case.x) * case.positions()
    ours64 = ours(case, model=copy.deepcopy(case.model).double(), x=case.x.double())
    with torch.no_grad():
        logit = float(case.model(case.x).abs().max())
    return {
        "times": times, "kept": kept, "copies": copies, "floor": copies / rate,
        "best": fastest(times, [f"Captum ppe {k}" for k in p.per_eval]),
        "errors": {"ours region": eps_error(results["ours region"][-1], ref),
                   "ours full": eps_error(results["ours full"][-1], ref),
                   "Captum ppe 1": eps_error(results["Captum ppe 1"][-1], ref),
                   "ours region float64": eps_error(ours64, ref)},
        "float64_out": str(ours64.dtype) == "float64",
        "max_ref": float(abs(ref).max()), "max_logit": logit, "sweep": sweep_note(case.name, per, best_bs),
    }


def judge(case: Case, m: dict[str, Any], quick: bool) -> list[Target]:
    """The case's targets: speed (not judged with --quick) and map errors against the float64 reference (always)."""
    skip = "--quick: speed not judged" if quick else ""
    t, e, best = m["times"], m["errors"], m["best"]
    region, full = t["ours region"], t["ours full"]
    unit = "e = max|map - ref| / (eps32 max|ref|), ref = brute force in float64"
    return [
        Target(f"{case.name}: region speed-up over Captum's default (ppe 1)", t["Captum ppe 1"] / region, ">=",
               case.vs_default, skip=skip),
        Target(f"{case.name}: region speed-up over Captum's best ({best.removeprefix('Captum ')})", t[best] / region,
               ">=", case.vs_best, skip=skip),
        Target(f"{case.name}: region speed-up over full passes", full / region, ">=", case.vs_full, skip=skip),
        Target(f"{case.name}: full passes / forward floor", full / m["floor"], "<=", case.floor_bound, fmt=".3f",
               skip=skip),
        Target(f"{case.name}: region map error e", e["ours region"], "<=", case.map_bound, fmt=".1f", note=unit),
        Target(f"{case.name}: full-pass map error e", e["ours full"], "<=", case.map_bound, fmt=".1f"),
        Target(f"{case.name}: Captum's float32 map error e (the bound's calibration)", e["Captum ppe 1"], "<=",
               case.map_bound, fmt=".1f"),
        Target(f"{case.name}: region map in float64, error e", e["ours region float64"], "<=",
               FLOAT64_BOUND if m.get("float64_out", True) else FLOAT32_OUTPUT_BOUND, fmt=".2g"),
    ]


def _rows(case: Case, m: dict[str, Any]) -> list[list[str]]:
    t, e, best = m["times"], m["errors"], m["best"]
    default, full, floor = t["Captum ppe 1"], t["ours full"], m["floor"]

    def row(label: str, s: float, err: float | None) -> list[str]:
        return [label, f"{s:.3f}", f"{default / s:.2f}x", f"{t[best] / s:.2f}x", f"{full / s:.2f}x",
                f"{s / floor:.2f}x", "-" if err is None else f"{err:.1f}"]

    return [[f"{case.name} ({m['copies']:,} copies; floor {floor:.3f}s)", "", "", "", "", "", ""],
            row("  Captum default (ppe 1)", default, e["Captum ppe 1"]),
            row(f"  Captum best ({best.removeprefix('Captum ')})", t[best], None),
            row("  ours, full passes", full, e["ours full"]),
            row("  ours, region (auto)", t["ours region"], e["ours region"])]


def bench(quick: bool, seed: int, gate: IdleGate, log: Any) -> Section:
    import captum

    p = plan(quick, seed)
    section = Section(
        f"Occlusion (Captum semantics) vs Captum {captum.__version__} at its default and best perturbations_per_eval "
        f"(ppe), full passes vs the forward floor (median of {p.rounds} interleaved rounds after a warm-up)",
        ["case / contender", "median s", "x Captum default", "x Captum best", "x ours full", "x floor",
         "map error e"],
        notes=list(p.notes))
    raw = {}
    for case in p.cases:
        m = _measure(case, p, gate, log)
        section.rows += _rows(case, m)
        section.targets += judge(case, m, quick)
        section.notes.append(f"{case.name}: Captum by ppe " + ", ".join(
            f"{k}: {m['times'][f'Captum ppe {k}']:.3f}s" for k in p.per_eval)
            + f"; max|ref| {m['max_ref']:.3g}, max|logit| {m['max_logit']:.3g}; ours (region) in float64: e = "
            f"{m['errors']['ours region float64']:.2g}; {m['sweep']}")
        raw[case.name] = m
    section.notes += [
        "x Y = Y's median seconds / this row's (a speed-up over Y); floor = occluded copies / the model's best "
        "forward images per second over batch sizes (same rounds): full passes can only approach it, the region "
        "recomputation goes below it",
        f"map error e = max|map - ref| / (eps32 max|ref|), eps32 = 2^-23, ref = the map by brute force in float64 "
        f"(model and images) at the same window and stride; float32 maps must reach e <= {MAP_BOUND:g} (a drop "
        f"scaled by 1.001 gives ~8,400), ours in float64 e <= {FLOAT64_BOUND:g} ({FLOAT32_OUTPUT_BOUND:g} if the map "
        "comes back in float32); Captum in float64 is not exact where windows overlap (it divides its sums in "
        "float32)",
    ]
    section.raw = raw
    return section
