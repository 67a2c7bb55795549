"""Integrated gradients on the ResNet-18 shape at 224 px, and whether the chunk tuner follows the machine (issue 13).

One 3x224x224 photo (``benchmarks.deep_models``: ResNet-18 layout, seeded weights, ImageNet-standardized crop), 50
Gauss–Legendre steps, the target its top class. Side by side in one interleaved run (median of the undisturbed
rounds after a warm-up that lets the tuner settle):

* ``ours``: ``integrated_gradients`` with its chunks from the tuner (:mod:`nnsee.models.chunking`, at most
  ``ig_batch_size`` path points a pass);
* a plain chunked autograd loop over the same path points in the spans ours runs (the chosen size, evenly filled)
  — ``x ⊙ Σ w_i ∇f(α_i x)``, nothing else: judged ``ours / plain ≤ 1.05``;
* ``integrated_gradients(batch_size=b)`` at every size the tuner may choose (powers of two below the cap, and the
  cap): judged ``ours / the fastest of them ≤ 1.10`` — the check that the tuner found the machine's best size;
* the plain loop at fixed chunks of a small sweep (also beyond the memory cap: what the cap costs) and Captum's
  ``IntegratedGradients`` at its default (all 50 points in one batch) and several ``internal_batch_size`` (info).

The same tuner check runs on a small case, the nnsee cnn at 1x28x28 (each contender repeated ``INNER`` times a
round). A table lists the sizes the tuner settles on at 1x28x28, 3x128x128 and 3x224x224 on the nnsee cnn and the
ResNet-18 shape, with the seconds per path point it measured at each size. The map is judged against Captum's in
units of float32 rounding. Speed ratios are judged on the median over rounds of the ratio within each round (the
load other processes put on a shared machine changes between rounds more than within one); the ratio of the medians
is printed beside. ``--quick``: 64 px instead of 224, one round, the same code path; speed not judged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import IdleGate, Section, Target, median
from benchmarks.rounds import eps_error, fastest, interleaved

STEPS = 50
#: fixed chunks of the plain loop besides the tuner's (info: beyond the cap shows what the memory bound costs)
PLAIN_SWEEP = (4, 8, 16)
CAPTUM_BATCHES = (5, 25)
#: ours / plain loop at the same chunks; ours / the fastest fixed batch_size the tuner may choose
PLAIN_BOUND, TUNER_BOUND = 1.05, 1.10
#: the map against Captum's, in units of ε₃₂ · max|Captum| (Captum against itself across batch sizes is reported)
MAP_BOUND = 256.0
#: calls of the small case per round
INNER = 20


def bench(quick: bool, seed: int, gate: IdleGate, log: Any) -> Section:
    """The section (see the module docstring)."""
    import torch

    from benchmarks.deep_models import photo_batch, resnet18

    skip = "--quick" if quick else ""
    side, rounds = (64, 1) if quick else (224, 5)
    model = resnet18(seed=seed)
    x = photo_batch(1, side, seed=seed)
    with torch.no_grad():
        target = int(model(x).argmax())
    log(f"deep IG: ResNet-18 shape, one 3x{side}x{side} photo, {STEPS} steps, target {target}")
    big = _ig_case(model, x, target, rounds, 1, gate, log, f"ResNet-18 {side}px", plain=True, quick=quick)
    small = _small_case(seed, 1 if quick else 5, 3 if quick else INNER, gate, log)
    choices = _choices(quick, seed, log)

    section = Section(
        f"Integrated gradients on the ResNet-18 shape, one 3x{side}x{side} photo, {STEPS} steps gausslegendre "
        f"(median of {big['kept']} interleaved rounds after the tuner settled)",
        ["contender", "points per pass", "median s", "x ours"],
        rows=[[name, str(points), f"{big['times'][name]:.3f}", f"{big['times'][name] / big['times']['ours']:.2f}x"]
              for name, points in big["points"].items()],
        notes=[f"tuner: cap {big['cap']} points a pass (ig_batch_size), settled on {big['chosen']} before the rounds "
               f"({big['chosen_after']} after them; None: searching again); seconds per point it measured: "
               f"{_fmt_measured(big['measured'])}",
               f"plain loop at the best of its sweep: chunk {big['plain_best']} "
               f"({big['times'][big['plain_best_name']]:.3f}s)",
               f"map: max|ours - Captum default| = {big['eps']:.1f} eps32 x max|Captum|; Captum internal_batch_size "
               f"{CAPTUM_BATCHES[0]} vs its default: {big['captum_self']:.1f}",
               f"small case, nnsee cnn 1x28x28, {small['inner']} IG calls a contender a round: tuner cap "
               f"{small['cap']} (this call's 50 points), settled on {small['chosen']}; ours "
               f"{small['times']['ours']:.3f}s, fastest fixed {small['best_name']} "
               f"{small['times'][small['best_name']]:.3f}s; all: "
               + ", ".join(f"{n.split('=')[-1]}: {t:.3f}" for n, t in small["times"].items() if n != "ours"),
               "the sizes the tuner settles on (IG, 50 points; seconds per point by size): "
               + "; ".join(f"{label}: {chosen} (cap {cap}; {_fmt_measured(m)})" for label, chosen, cap, m in choices),
               "plain loop = autograd.grad of model(α_i x)[:, target].sum() w.r.t. the points, weighted sum, times x "
               "(baseline 0), in the same chunks; ours also computes f(x) and f(0) and the float64 delta"],
    )
    t, pair, pair_small = big["times"], big.pop("paired"), small.pop("paired")
    section.targets += [
        Target(f"IG ours / plain loop at the same chunks ({big['chosen']}), ResNet-18 at {side}px",
               pair("ours", "plain loop, same chunks"), "<=", PLAIN_BOUND, fmt=".3f", skip=skip,
               note=f"ratio of medians {t['ours'] / t['plain loop, same chunks']:.3f}"),
        Target(f"IG tuner / fastest fixed batch_size ({big['best_name']}), ResNet-18 at {side}px",
               pair("ours", big["best_name"]), "<=", TUNER_BOUND, fmt=".3f", skip=skip,
               note=f"ratio of medians {t['ours'] / t[big['best_name']]:.3f}"),
        Target(f"IG tuner / fastest fixed batch_size ({small['best_name']}), nnsee cnn 1x28x28",
               pair_small("ours", small["best_name"]), "<=", TUNER_BOUND, fmt=".3f", skip=skip,
               note=f"ratio of medians {small['times']['ours'] / small['times'][small['best_name']]:.3f}"),
        Target("IG map vs Captum's default, units of eps32 x max|Captum|", big["eps"], "<=", MAP_BOUND, fmt=".1f",
               note=f"Captum vs itself: {big['captum_self']:.1f}"),
    ]
    section.raw = {"resnet": {k: v for k, v in big.items() if k != "points"}, "small": small,
                   "choices": [{"case": c[0], "chosen": c[1], "cap": c[2], "measured": c[3]} for c in choices]}
    return section


def _fmt_measured(measured: dict[int, float]) -> str:
    return ", ".join(f"{size}: {seconds * 1000:.2f} ms" for size, seconds in measured.items())


def _settle(model: Any, x: Any, target: int, limit: int = 16) -> tuple[tuple[Any, ...], int | None]:
    """Runs ours until the tuner settled, then 3 calls more (its early rechecks, which may resume the search), then
    until it settled again (at most ``limit`` calls in all); returns (key, chosen size)."""
    import torch

    from nnsee.methods.attribution.integrated_gradients import integrated_gradients
    from nnsee.models.chunking import TUNER, chunk_key

    key = chunk_key(model, "ig", x.shape[1:], x.dtype, torch.device("cpu"))
    extra = 3
    for _ in range(limit):
        if TUNER.chosen(key) is not None:
            if extra == 0:
                break
            extra -= 1
        integrated_gradients(model, x, target, steps=STEPS)
    return key, TUNER.chosen(key)


def _spans(total: int, size: int) -> list[tuple[int, int]]:
    """``range(total)`` in ``ceil(total / size)`` evenly filled spans (as the tuner cuts a settled call)."""
    parts = -(-total // size)
    step = -(-total // parts)
    return [(s, min(total, s + step)) for s in range(0, total, step)]


def _plain(model: Any, x: Any, target: int, spans: list[tuple[int, int]]) -> Callable[[], Any]:
    """The plain chunked autograd loop over the Gauss–Legendre points in ``spans``."""
    import torch

    from nnsee.methods.attribution.integrated_gradients import step_points

    alphas, weights = (torch.as_tensor(v, dtype=x.dtype) for v in step_points("gausslegendre", STEPS))

    def run() -> Any:
        acc = torch.zeros_like(x[0])
        for lo, hi in spans:
            points = (alphas[lo:hi].view(-1, 1, 1, 1) * x).requires_grad_(True)
            (grad,) = torch.autograd.grad(model(points)[:, target].sum(), points)
            acc += torch.tensordot(weights[lo:hi], grad, dims=1)
        return acc * x[0]
    return run


def _clocked(fn: Callable[[], Any], inner: int) -> Callable[[], tuple[float, Any]]:
    """``fn`` run ``inner`` times, returning (its own seconds, the last result): the rounds' times, for ratios
    within a round (which cancel the load other processes put on the machine between rounds)."""
    def run() -> tuple[float, Any]:
        started = time.perf_counter()
        for _ in range(inner - 1):
            fn()
        result = fn()
        return time.perf_counter() - started, result
    return run


def _ig_case(model: Any, x: Any, target: int, rounds: int, inner: int, gate: IdleGate, log: Any, label: str,
             plain: bool, quick: bool = False) -> dict[str, Any]:
    """Ours (tuned) against fixed batch sizes (the tuner's candidates) and, with ``plain``, the plain loop and
    Captum, interleaved (``quick``: the plain loop's sweep only at 8, Captum at its default and one batch size)."""
    from nnsee.methods.attribution.integrated_gradients import ig_batch_size, integrated_gradients
    from nnsee.models.chunking import TUNER, candidates

    key, chosen = _settle(model, x, target)
    cap = min(ig_batch_size(x.shape[1:]), STEPS)
    chosen = chosen or cap

    contenders = {"ours": lambda: integrated_gradients(model, x, target, steps=STEPS)}
    points = {"ours": chosen}
    for b in candidates(cap):
        contenders[f"batch_size={b}"] = lambda b=b: integrated_gradients(model, x, target, steps=STEPS, batch_size=b)
        points[f"batch_size={b}"] = b
    if plain:
        contenders["plain loop, same chunks"] = _plain(model, x, target, _spans(STEPS, chosen))
        points["plain loop, same chunks"] = chosen
        for b in (8,) if quick else PLAIN_SWEEP:
            contenders[f"plain loop, chunk {b}"] = _plain(model, x, target, _spans(STEPS, b))
            points[f"plain loop, chunk {b}"] = b
        contenders.update(_captum(model, x, target, points, CAPTUM_BATCHES[:1] if quick else CAPTUM_BATCHES))
    runs = [(name, _clocked(fn, inner)) for name, fn in contenders.items()]
    for _, fn in runs:  # warm-up: every batch shape seen once
        fn()
    times, clocked, kept = interleaved(runs, rounds, gate, log, label)
    results = {name: [r for _, r in kept_runs] for name, kept_runs in clocked.items()}
    seconds = {name: [t for t, _ in kept_runs] for name, kept_runs in clocked.items()}
    fixed = [name for name in times if name.startswith("batch_size=")]
    out = {"times": times, "kept": kept, "cap": cap, "chosen": chosen, "chosen_after": TUNER.chosen(key),
           "measured": TUNER.measured(key),
           "paired": lambda a, b: median([ta / tb for ta, tb in zip(seconds[a], seconds[b], strict=True)]),
           "best_name": fastest(times, fixed), "points": points}
    if plain:
        sweep = [name for name in times if name.startswith("plain loop, chunk")]
        out["plain_best_name"] = fastest(times, sweep)
        out["plain_best"] = points[out["plain_best_name"]]
        ref = results["Captum default"][-1]
        out["eps"] = eps_error(results["ours"][-1].attributions, ref)
        out["captum_self"] = eps_error(results[f"Captum ibs {CAPTUM_BATCHES[0]}"][-1], ref)
    return out


def _captum(model: Any, x: Any, target: int, points: dict[str, int], batches: tuple[int, ...]
            ) -> dict[str, Callable[[], Any]]:
    from captum.attr import IntegratedGradients

    runs: dict[str, Callable[[], Any]] = {}
    for batch in (None, *batches):
        name = "Captum default" if batch is None else f"Captum ibs {batch}"
        runs[name] = lambda batch=batch: IntegratedGradients(model).attribute(
            x, target=target, n_steps=STEPS, internal_batch_size=batch).detach()
        points[name] = batch or STEPS
    return runs


def _small_case(seed: int, rounds: int, inner: int, gate: IdleGate, log: Any) -> dict[str, Any]:
    import torch

    from nnsee.models import build_model

    torch.manual_seed(seed)
    model = build_model("cnn", (1, 28, 28), 10).eval()
    x = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    out = _ig_case(model, x, 3, rounds, inner, gate, log, "cnn 1x28x28", plain=False)
    out.pop("points")
    return {**out, "inner": inner}


def _choices(quick: bool, seed: int, log: Any) -> list[tuple[str, int | None, int, dict[int, float]]]:
    """(case, settled size, cap, seconds per point by size) of IG on the nnsee cnn and the ResNet-18 shape."""
    import torch

    from benchmarks.deep_models import photo_batch, resnet18
    from nnsee.methods.attribution.integrated_gradients import ig_batch_size
    from nnsee.models import build_model
    from nnsee.models.chunking import TUNER

    shapes = [(1, 28)] if quick else [(1, 28), (3, 128), (3, 224)]
    out = []
    for channels, side in shapes:
        cnn = build_model("cnn", (channels, side, side), 10).eval()
        cases = [("cnn", cnn)] + ([("ResNet-18", resnet18(seed=seed))] if channels == 3 else [])
        for name, model in cases:
            x = (photo_batch(1, side, seed=seed) if channels == 3
                 else torch.rand(1, 1, side, side, generator=torch.Generator().manual_seed(seed)))
            key, chosen = _settle(model, x, 0)
            label = f"{name} {channels}x{side}x{side}"
            log(f"  tuner on {label}: {chosen}")
            out.append((label, chosen, min(ig_batch_size(x.shape[1:]), STEPS), TUNER.measured(key)))
    return out
