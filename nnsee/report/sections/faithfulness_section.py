"""Which map to trust: deletion and insertion curves of every applicable method on a stratified test sample.

Every registered method that applies to the model maps the sample's images for their predicted class; the pixels are
then removed (set to the standardized mean) or revealed onto it in each map's order
(:mod:`nnsee.methods.deletion_insertion`), and the mean curves are drawn beside the mean of seeded random orders.
Methods whose estimated cost exceeds the section's budget on this model are left out, and the page says which.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from nnsee.report.sections.common import ReportInput

PER_CLASS = 2
MAX_IMAGES = 10
STEPS = 20
RANDOM_REPEATS = 3
#: Most multiply-adds a method's maps may take on the sample (:func:`passes` × images × one forward),
#: and all the curves together (orders × 2 curves × (steps + 1) × images × one forward): about 0.03 s and 0.05 s of
#: this machine's matrix products. The Fashion-MNIST MLP (0.24 M a forward) keeps every method and 10 images.
METHOD_MACS = 2e9
CURVES_MACS = 4e9
#: Okabe–Ito colours (colour-blind safe), one per method; the random floor is grey and dashed.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
RANDOM = "random order"


def sample(labels: np.ndarray, n_classes: int, per_class: int = PER_CLASS, most: int = MAX_IMAGES) -> np.ndarray:
    """Up to ``per_class`` test images of each class, the first of each class in turn (class 0, 1, …, then the
    second of each), at most ``most``: deterministic and stratified."""
    by_class = [np.flatnonzero(labels == k)[:per_class] for k in range(n_classes)]
    chosen = [int(c[d]) for d in range(per_class) for c in by_class if d < len(c)]
    return np.array(chosen[:most], dtype=np.int64)


def passes(name: str, shape: tuple[int, ...]) -> int:
    """Forwards per image a registered method costs with its default options: occlusion one per window (and one
    of the image); a gradient method 3 per pass (a backward costs about two forwards) times its steps or samples."""
    from nnsee.methods.attribution.registry import METHODS, occlusion_window

    if name == "occlusion":
        window, stride = occlusion_window(shape)
        h, w = shape[-2:]
        return ((h - window) // stride + 1) * ((w - window) // stride + 1) + 1
    defaults = {o.name: o.default for o in METHODS[name].options}
    return 3 * int(defaults.get("steps") or defaults.get("samples") or 1)


def faithfulness_section(inp: ReportInput) -> dict[str, Any] | None:
    from nnsee.methods.attribution.registry import applicable
    from nnsee.methods.deletion_insertion import deletion_insertion, random_curves

    test = inp.splits.test
    if len(test) == 0:
        return None
    methods = applicable(inp.run.model, inp.shape)
    if not methods:
        inp.notes.append(f"which map to trust: no attribution method applies to this model ({inp.caps.describe()})")
        return None
    started = time.perf_counter()
    macs = forward_macs(inp.run.model, inp.shape)
    index = sample(np.asarray(test.labels), len(inp.class_names))
    kept = {n: m for n, m in methods.items() if passes(n, inp.shape) * macs * len(index) <= METHOD_MACS}
    left_out = [n for n in methods if n not in kept]
    affordable = int(CURVES_MACS // ((len(kept) + RANDOM_REPEATS) * 2 * (STEPS + 1) * macs))
    if not kept or affordable < 1:
        inp.notes.append(f"which map to trust: deletion and insertion curves cost too much for the report on this "
                         f"model ({macs / 1e6:,.0f} M multiply-adds a forward); nnsee explain RUN IMAGE --method "
                         "NAME --json gives them for one image")
        return None
    index = index[:affordable]
    x = inp.inputs(test.images, index)
    target = inp.test_logits[index].argmax(1)
    results = {}
    for name, method in kept.items():
        maps = method.attribute(inp.run.model, x, target).input_maps(inp.shape)
        results[name] = deletion_insertion(inp.run.model, x, maps, target, steps=STEPS)
    results[RANDOM] = random_curves(inp.run.model, x, target, steps=STEPS, repeats=RANDOM_REPEATS)
    rows = [{"name": name, "deletion": float(c.deletion_auc.mean()), "deletion_std": float(c.deletion_auc.std()),
             "insertion": float(c.insertion_auc.mean()), "insertion_std": float(c.insertion_auc.std()),
             "score": float((c.insertion_auc - c.deletion_auc).mean()), "random": name == RANDOM}
            for name, c in results.items()]
    rows.sort(key=lambda r: -r["score"])
    colours = {name: COLOURS[i % len(COLOURS)] for i, name in enumerate(kept)}
    fractions = results[RANDOM].fractions
    charts = [curves_svg({n: c.deletion.mean(0) for n, c in results.items()}, fractions, colours,
                         "deletion: pixels removed, most important first (lower is better)"),
              curves_svg({n: c.insertion.mean(0) for n, c in results.items()}, fractions, colours,
                         "insertion: pixels revealed, most important first (higher is better)")]
    return {"rows": rows, "charts": charts, "n": len(index), "per_class": PER_CLASS, "most": MAX_IMAGES, "steps": STEPS,
            "repeats": RANDOM_REPEATS, "left_out": left_out, "seconds": time.perf_counter() - started}


def forward_macs(model: Any, shape: tuple[int, ...]) -> float:
    """Multiply-adds of one image's forward pass: the conv layers' (measured by the CNN section's probe) plus one
    per weight of every Linear layer."""
    from torch import nn

    from nnsee.report.sections.cnn_section import probe

    dense = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    return max(1.0, probe(model, shape).macs + dense)


def curves_svg(series: dict[str, np.ndarray], fractions: np.ndarray, colours: dict[str, str], title: str,
               width: int = 440, height: int = 280, floor: str = RANDOM, x_label: str = "share of pixels") -> str:
    """Curves ``{method: values}`` over ``fractions`` 0..1, value axis 0..1, with a legend; the series named
    ``floor`` (the random order) grey and dashed. Labels are XML-escaped."""
    from nnsee.render.svg import xml_text

    left, top, pw, ph = 40, 22, width - 170, height - 56

    def point(f: float, p: float) -> str:
        return f"{left + f * pw:.1f},{top + (1 - min(max(p, 0.0), 1.0)) * ph:.1f}"

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} '
           f'{height}" font-family="sans-serif" font-size="10" role="img">',
           f'<text x="{width / 2:.0f}" y="13" text-anchor="middle" font-size="11">{xml_text(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        y, x = top + (1 - t) * ph, left + t * pw
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                   f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{t:g}</text>'
                   f'<text x="{x:.1f}" y="{top + ph + 13}" text-anchor="middle">{t:.0%}</text>')
    out.append(f'<text x="{left + pw / 2:.0f}" y="{height - 6}" text-anchor="middle">{xml_text(x_label)}</text>')
    for i, (name, values) in enumerate(series.items()):
        random = name == floor
        colour = "#777" if random else colours[name]
        dash = ' stroke-dasharray="5 3"' if random else ""
        points = " ".join(point(float(f), float(p)) for f, p in zip(fractions, values, strict=True))
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.7"{dash} points="{points}"/>'
                   f'<line x1="{left + pw + 10}" x2="{left + pw + 28}" y1="{top + 6 + 14 * i}" '
                   f'y2="{top + 6 + 14 * i}" stroke="{colour}" stroke-width="2"{dash}/>'
                   f'<text x="{left + pw + 32}" y="{top + 9 + 14 * i}">{xml_text(name)}</text>')
    out.append("</svg>")
    return "".join(out)


TEMPLATE = """\
{% set f = sections.faithfulness %}
<h2 id="faithfulness">Which map to trust: deletion and insertion</h2>
<p>Each method's map ranks the pixels of an image for its predicted class. Deletion sets the pixels to the
standardized mean (0 after standardization: an average pixel, not black) in that order, most important first, and
follows the class probability: a map that found what the model needs makes it fall fast (small area under the curve).
Insertion starts from the mean image and reveals the pixels in the same order: a good map makes the probability rise
fast (large area). The grey dashed line is a random order (the mean of {{ f.repeats }} seeded orders): a map should
beat it. Mean curves over {{ f.n }} test images (the first of each class in turn: at most {{ f.per_class }} per class and
{{ f.most }} in all, fewer where the curves would cost too much on the model), {{ f.steps }} steps; the areas are
trapezoids over the share of pixels, 0..1.</p>
<div class="flex">{% for c in f.charts %}{{ c|svg }}{% endfor %}</div>
<table><tr><th>rank</th><th>method</th><th>deletion AUC ↓ (mean ± std)</th><th>insertion AUC ↑ (mean ± std)</th><th>insertion − deletion</th></tr>
{% for r in f.rows %}<tr{% if r.random %} class="muted"{% endif %}><td>{{ loop.index }}</td><td>{{ r.name }}</td><td>{{ r.deletion|num(3) }} ± {{ r.deletion_std|num(2) }}</td><td>{{ r.insertion|num(3) }} ± {{ r.insertion_std|num(2) }}</td><td>{{ r.score|num(3) }}</td></tr>
{% endfor %}</table>
<p class="muted">Ranked by insertion − deletion (mean over the images).{% if f.left_out %} Left out: their maps would
cost too much on this model: {{ f.left_out|join(', ') }}; <span class="math">nnsee explain RUN IMAGE --method NAME --json</span>
gives their curves for one image.{% endif %}</p>
"""  # noqa: E501
