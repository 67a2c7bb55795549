"""The CNN section (Zeiler & Fergus): first-layer filters; per stage of the network (the last conv module of each
resolution, lifted to the block it ends, or the layers chosen with ``layers=``) the top-9 images per feature map
with their deconvnet projections, cut to the receptive field where one is smaller than the image; Grad-CAM at each
stage; occlusion maps for test images; feature evolution across snapshots; the randomization check.

At large inputs (sides above :data:`LARGE_SIDE` px, or more than :data:`LARGE_MACS` multiply-adds an image, e.g.
ResNet-18 at 224 px: 1.8e9) the occlusion and Grad-CAM tables show 2 test images (not 4) and the randomization
check runs with :func:`cheap_options`, one image at a time; the page says so.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image
from torch import nn

from nnsee.render import data_uri, grid, image_tile, mosaic, symmetric_scale, weight_tile
from nnsee.report.sections.common import (
    MAX_CLASSES,
    ReportInput,
    dropped_note,
    head,
    snapshots_note,
    spread,
    upscale_for,
)

# Ten distinguishable colours (matplotlib's tab10), cycled, for "most probable class" maps.
PALETTE = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
                    [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]], np.uint8)


def conv_layers(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


#: Inputs above this side, or models above LARGE_MACS multiply-adds an image, get the cheaper checks (said on the page).
LARGE_SIDE = 64
LARGE_MACS = 100e6
#: The longest side of a crop tile on the page; larger crops (a deep stage's field, whole images) are averaged down.
TILE_SIDE = 64
#: The longest side of a Grad-CAM tile (photos above it averaged down, so a row of five stages fits the page).
GRAD_CAM_SIDE = 128


@dataclass(frozen=True)
class Probe:
    """One forward pass of a zero image: each module's output shape at its last call (batch axis dropped), the
    modules in the order their last call ended, and the conv layers' multiply-adds for one image."""

    shapes: dict[str, tuple[int, ...]]
    order: list[str]
    macs: float


def probe(model: nn.Module, shape: tuple[int, ...]) -> Probe:
    from nnsee.methods.base import param_of
    from nnsee.models.hooks import eval_mode, forward_hooks

    names = {id(m): n for n, m in model.named_modules() if n}
    shapes: dict[str, tuple[int, ...]] = {}
    ended: dict[str, int] = {}
    macs = [0.0]
    tick = itertools.count()

    def seen(m: nn.Module, _i: object, out: object) -> None:
        name = names.get(id(m))
        if name is None or not isinstance(out, torch.Tensor):
            return
        shapes[name], ended[name] = tuple(out.shape[1:]), next(tick)
        if isinstance(m, nn.Conv2d):
            macs[0] += out[0].numel() * m.weight[0].numel()

    device, dtype = param_of(model)
    with eval_mode(model), forward_hooks([m for n, m in model.named_modules() if n], seen):
        model(torch.zeros(1, *shape, device=device, dtype=dtype))
    return Probe(shapes, sorted(ended, key=ended.get), macs[0])


def stage_layers(model: nn.Module, seen: Probe) -> list[str]:
    """The stages of a CNN: the last Conv2d (in call order) of each output resolution, each lifted to the outermost
    module around it that ends at the same resolution (a ResNet's ``conv1, layer1 .. layer4``; a plain chain's
    convs before each pooling)."""
    convs = set(conv_layers(model))
    last: dict[tuple[int, ...], str] = {}
    for name in seen.order:
        shape = seen.shapes[name]
        if len(shape) == 3 and name in convs:
            last[shape[1:]] = name
    stages = []
    for name in sorted(last.values(), key=seen.order.index):
        parts = name.split(".")
        for i in range(1, len(parts)):
            outer = ".".join(parts[:i])
            if len(seen.shapes.get(outer, ())) == 3 and seen.shapes[outer][1:] == seen.shapes[name][1:]:
                name = outer
                break
        stages.append(name)
    return list(dict.fromkeys(stages))


def chosen_stages(inp: ReportInput, seen: Probe) -> list[str]:
    """``inp.layers`` (each checked: a layer of the model that gives feature maps), or :func:`stage_layers`."""
    from nnsee.errors import MethodError
    from nnsee.models.hooks import get_module

    if inp.layers is None:
        return stage_layers(inp.run.model, seen)
    if not inp.layers:
        raise MethodError("--layers names no layer: give dotted names such as layer2,layer4 (nnsee layers RUN)")
    for name in inp.layers:
        get_module(inp.run.model, name)  # an unknown name: one line listing the layers
        shape = seen.shapes.get(name)
        if shape is None or len(shape) != 3:
            gives = "is not called in the forward pass" if shape is None else f"gives {'x'.join(map(str, shape))}"
            raise MethodError(f"layer {name!r} {gives}, not feature maps (channels x h x w): give conv layers or "
                              "blocks of conv layers (nnsee layers RUN lists the output shapes)")
    return list(dict.fromkeys(inp.layers))


def cnn_section(inp: ReportInput, n_occlusion: int = 4, max_channels: int = 32) -> dict[str, Any] | None:
    model = inp.run.model
    if not conv_layers(model):
        return None
    seen = probe(model, inp.shape)
    stages = chosen_stages(inp, seen)
    large = min(inp.shape[-2:]) > LARGE_SIDE or seen.macs > LARGE_MACS
    index = _test_images(inp, 2 if large else n_occlusion)
    occlusion = _occlusion(inp, stages[-1], index, large)
    names = inp.class_names
    on_maps = sorted({k for r in (occlusion or {}).get("rows", []) for k in r.pop("classes")})
    # the legend lists every class, or when there are too many, the classes the maps show
    legend = list(range(len(names))) if len(names) <= MAX_CLASSES else on_maps[:MAX_CLASSES]
    per_stage = max_channels if len(stages) == 1 else max(8, max_channels // len(stages))
    return {
        "filters": _filters(model, inp.shape[0]),
        "layer": stages[-1],
        "stages": _top9(inp, stages, per_stage),
        "chosen": inp.layers is not None,
        "tile_side": TILE_SIDE,
        "missing": _missing(inp),
        "grad_cam": _grad_cams(inp, stages, index),
        "occlusion": occlusion,
        "evolution": _evolution(inp, stages[-1]),
        "sanity": _sanity(inp, large),
        "palette": [{"name": names[k], "rgb": "#" + bytes(PALETTE[k % len(PALETTE)]).hex()} for k in legend],
        "palette_note": dropped_note(f"the colours of the {len(legend)} classes these maps show", len(legend),
                                     len(names), f" (the colours repeat every {len(PALETTE)} classes)"),
    }


def _missing(inp: ReportInput) -> list[str]:
    """One line for each view of this section that cannot apply here, saying why."""
    lines = []
    if len(inp.splits.test) == 0:
        lines.append("Grad-CAM, occlusion and the sanity check: the run's data has no test images to explain.")
    if not any(isinstance(m, nn.Conv2d) and m.in_channels == inp.shape[0] for m in inp.run.model.modules()):
        lines.append(f"First-layer filters: no nn.Conv2d of this model takes the image's {inp.shape[0]} channels, so "
                     "no filter is an image.")
    if len(inp.run.snapshot_epochs) < 2:
        lines.append(f"Feature evolution during training: it needs weight snapshots of two epochs or more; this run "
                     f"has {len(inp.run.snapshot_epochs)} (an adopted model has only its final weights; "
                     "nnsee.track(model, out=RUN) saves them from your own training loop).")
    return lines


def _filters(model: nn.Module, channels: int) -> dict[str, Any] | None:
    """The filters of the first registered Conv2d that takes the image's ``channels`` (the input layer; a conv
    registered before it but called later takes other channels), or None when there is none."""
    from nnsee.methods.attribution.filters import first_layer_filters

    name = next((n for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.in_channels == channels), None)
    if name is None:
        return None
    w = first_layer_filters(model, name)
    scale = symmetric_scale(w)
    tiles = [weight_tile(f, scale, max(4, round(40 / w.shape[-1]))) for f in w]
    return {"uri": data_uri(grid(tiles, ncols=min(16, len(tiles)), pad=3)), "count": len(w), "scale": scale,
            "shape": list(w.shape[1:]), "rgb": w.shape[1] == 3}


def release_memory() -> None:
    """Hand the heap's freed memory back to the system (glibc's ``malloc_trim(0)``; nothing elsewhere). glibc keeps
    freed blocks for reuse, so without it each phase's peak stays resident under the next one's: measured on
    ResNet-18 at 224 px, the resident size grew 380 MB over the five stages' projections."""
    import contextlib
    import ctypes
    import ctypes.util

    with contextlib.suppress(OSError, AttributeError, TypeError):
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)


def shrunk(a: np.ndarray, side: int = TILE_SIDE) -> np.ndarray:
    """``a`` (..., C, h, w) averaged down (area interpolation) so its longer side is at most ``side``."""
    h, w = a.shape[-2:]
    if max(h, w) <= side:
        return a
    size = (max(1, round(h * side / max(h, w))), max(1, round(w * side / max(h, w))))
    flat = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).reshape(-1, 1, h, w)
    return F.interpolate(flat, size=size, mode="area").reshape(*a.shape[:-2], *size).numpy()


def _top9(inp: ReportInput, stages: list[str], channels: int) -> list[dict[str, Any]]:
    """Per stage, the top-9 training images of its first ``channels`` maps (one streaming pass for all stages,
    standardized per batch) and the deconvnet projections of those maps' top activations only."""
    from nnsee.analysis.report import top_images
    from nnsee.methods.dataset_views.projections import top9_projections
    from nnsee.methods.dataset_views.receptive_field import field_of
    from nnsee.methods.dataset_views.top_images import top_images_per_layer
    from nnsee.models.capabilities import capabilities

    model, images = inp.run.model, inp.splits.train.images
    no_projection = capabilities(model).relu_rule
    tops = top_images(inp.top_from, stages) if inp.top_from is not None else None  # an analysis holds them
    if tops is None:
        tops = top_images_per_layer(model, images, stages, k=9, transform=inp.run.standardize)
    release_memory()
    out = []
    for layer in stages:
        topk = tops[layer]
        shown = min(channels, len(topk.values))
        first = replace(topk, values=topk.values[:shown], image_index=topk.image_index[:shown],
                        position=topk.position[:shown])
        if no_projection is None:
            projections = top9_projections(model, images, first, layer, transform=inp.run.standardize)
            rf, how = projections.rf, projections.how
        else:  # the deconvnet changes nn.ReLU modules' backward rule: the crops only, and the page says why
            projections = None
            rf, how = field_of(model, layer, tuple(images.shape[1:]))
        raw_crops = shrunk(_raw_crops(inp, first, rf, shown))
        up = max(1, upscale_for(raw_crops.shape[-3:], 96) // 3)
        rows = []
        for c in range(shown):
            row = {"channel": c, "best": float(topk.values[c, 0]),
                   "images": data_uri(mosaic(raw_crops[c], ncols=3, upscale=up)), "projections": None}
            if projections is not None:
                proj = shrunk(projections.projection_crops[c])
                scale = symmetric_scale(proj)
                row["projections"] = data_uri(grid([weight_tile(p, scale, up) for p in proj], ncols=3, pad=1))
            rows.append(row)
        out.append({"layer": layer, "rows": rows, "n_images": topk.n_images, "field": how,
                    "no_projection": no_projection,
                    "channels": len(topk.values), "shape": "x".join(map(str, topk.map_shape))})
        del projections, raw_crops
        release_memory()
    return out


def _raw_crops(inp: ReportInput, topk: Any, rf: Any, channels: int) -> np.ndarray:
    """Receptive-field crops of the raw training images (what a person recognises), (channels, k, C, h, w)."""
    from nnsee.methods.dataset_views.receptive_field import crop

    images = inp.splits.train.images
    return np.stack([np.stack([crop(x, tuple(p), rf, fill=1.0)  # a channel's k images in one read (only those)
                               for x, p in zip(images[topk.image_index[c]], topk.position[c], strict=True)])
                     for c in range(channels)])


def _test_images(inp: ReportInput, n: int) -> np.ndarray:
    """``n`` test images evenly spread over the test set (their indices)."""
    return np.linspace(0, len(inp.splits.test) - 1, num=min(n, len(inp.splits.test))).astype(int)


def _test_inputs(inp: ReportInput, index: np.ndarray) -> np.ndarray:
    """The test images at ``index`` as the model sees them (standardized: only these, not the whole test set)."""
    return inp.inputs(inp.splits.test.images, index)


def _grad_cams(inp: ReportInput, stages: list[str], index: np.ndarray) -> dict[str, Any] | None:
    """Grad-CAM of the true class at every stage for the occlusion's test images, over the photo: the photo
    darkened where the map is low, ``image * (0.25 + 0.75 cam / max cam)``, the map stretched bilinearly. Every
    stage's maps come from one forward and one backward pass per chunk of images (:func:`grad_cams`)."""
    from nnsee.methods.attribution.grad_cam import grad_cams

    if len(index) == 0:
        return None
    up = upscale_for(inp.shape, 96)
    labels = inp.splits.test.labels[index]
    photos = inp.splits.test.images[index]  # read once (of a streamed set: only these)
    cams = grad_cams(inp.run.model, inp.run.standardize(photos), np.asarray(labels, dtype=np.int64), stages)
    rows = []
    for j, (i, label) in enumerate(zip(index, labels, strict=True)):
        photo = photos[j]
        cells = []
        for layer in stages:
            cam = cams[layer][j]
            top = float(cam.max())
            over = shrunk(over_photo(photo, cam / top if top > 0 else cam), GRAD_CAM_SIDE)  # a row fits the page
            cells.append({"layer": layer, "uri": data_uri(image_tile(over, up)),
                          "flat": top <= 0, "shape": f"{cam.shape[0]}x{cam.shape[1]}"})
        rows.append({"index": int(i), "true": inp.class_names[int(label)],
                     "image": data_uri(image_tile(shrunk(np.clip(photo, 0, 1), GRAD_CAM_SIDE), up)), "cells": cells})
    return {"rows": rows, "stages": stages}


def _occlusion(inp: ReportInput, layer: str, index: np.ndarray, large: bool) -> dict[str, Any] | None:
    """Zeiler & Fergus Fig. 7 maps of the test images at ``index``, one image at a time (each image's occluded
    copies in chunks), so memory does not grow with the number of images."""
    from nnsee.methods.attribution.occlusion_paper import occlusion_maps
    from nnsee.methods.attribution.registry import occlusion_window

    if len(index) == 0:
        return None
    window, tiling = occlusion_window(inp.shape)
    stride = tiling if large else occlusion_map_stride(inp.shape)  # large: 13 x 13 positions at 224 px, not 25 x 25
    labels = inp.splits.test.labels[index]
    up = upscale_for(inp.shape, 96)
    rows = []
    for j, i in enumerate(index):
        photo = inp.splits.test.images[index[j : j + 1]]  # (1, C, H, W), read once
        maps = occlusion_maps(inp.run.model, inp.run.standardize(photo), labels[j : j + 1], window=window,
                              stride=stride, layer=layer)
        side = max(1, round(96 / maps.prob_true.shape[-1]))
        activity = maps.strongest_map_activity[0]
        span = float(activity.max() - activity.min()) or 1.0
        colours = PALETTE[maps.most_probable[0] % len(PALETTE)].repeat(side, 0).repeat(side, 1)
        rows.append({
            "index": int(i), "true": inp.class_names[int(labels[j])],
            "image": data_uri(image_tile(np.clip(photo[0], 0, 1), up)),
            "prob_true": data_uri(image_tile(maps.prob_true[0][None], side)),
            "over_photo": data_uri(image_tile(over_photo(photo[0], maps.prob_true[0]), up)),
            "activity": data_uri(image_tile(((activity - activity.min()) / span)[None], side)),
            "most_probable": data_uri(Image.fromarray(np.ascontiguousarray(colours), "RGB")),
            "channel": int(maps.strongest_channel[0]),
            "p_min": float(maps.prob_true[0].min()),
            "classes": {int(k) for k in np.unique(maps.most_probable[0])},
        })
    return {"rows": rows, "window": window, "stride": stride, "layer": layer, "large": large}


def over_photo(image: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """The photo (C, H, W) in [0, 1] darkened where occluding hurts: ``image * (0.25 + 0.75 * p)``, with the map
    ``p`` of occluder positions (each window's corner) stretched bilinearly over the image. (C, H, W) in [0, 1]."""
    h, w = image.shape[-2:]
    p = Image.fromarray(np.ascontiguousarray(np.clip(prob, 0, 1), dtype=np.float32), mode="F")
    stretched = np.asarray(p.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
    return np.clip(image, 0, 1) * (0.25 + 0.75 * np.clip(stretched, 0, 1))[None]


def occlusion_map_stride(shape: tuple[int, ...]) -> int:
    """The report's occluder step: max(1, round(side / 28)), so a map has about 25 x 25 positions at every size
    (1 px up to 42 px images; 8 px at 224: 25 x 25 forward passes per image instead of 193 x 193 at 1 px)."""
    return max(1, round(min(shape[-2:]) / 28))


def _evolution(inp: ReportInput, layer: str) -> dict[str, Any] | None:
    from nnsee.methods.dataset_views.feature_evolution import features_over_training

    run = inp.run
    if len(run.snapshot_epochs) < 2:
        return None
    chosen = spread(run.snapshot_epochs)
    snapshots = {epoch: run.snapshot_state(epoch) for epoch in chosen}
    subset = head(inp.splits.train.images, 2000)
    by_epoch = features_over_training(run.model, snapshots, subset, layer, k=1, projections=True,
                                      transform=run.standardize)
    epochs = sorted(by_epoch)
    channels = min(8, by_epoch[epochs[-1]].topk.values.shape[0])
    up = max(2, upscale_for(inp.shape, 56))
    rows = []
    for c in range(channels):
        crops = [by_epoch[e].projections.projection_crops[c, 0] for e in epochs]
        scale = symmetric_scale(crops)
        rows.append({"channel": c, "uri": data_uri(grid([weight_tile(p, scale, up) for p in crops],
                                                        ncols=len(crops), pad=2))})
    return {"epochs": epochs, "rows": rows, "n_images": len(subset),
            "note": snapshots_note(chosen, len(run.snapshot_epochs))}


def cheap_options(shape: tuple[int, ...]) -> dict[str, dict[str, int]]:
    """The randomization check's options at large inputs: integrated gradients with 16 path points (not 50),
    SmoothGrad with 8 noisy copies (not 25), occlusion with windows side by side (stride = window: 7 x 7
    positions at 224 px, not 13 x 13)."""
    from nnsee.methods.attribution.registry import occlusion_window

    window, _ = occlusion_window(shape)
    return {"integrated-gradients": {"steps": 16}, "smoothgrad": {"samples": 8},
            "occlusion": {"window": window, "stride": window}}


def _sanity(inp: ReportInput, large: bool, n: int = 4) -> dict[str, Any] | None:
    """The randomization check of every registered method that applies to the model (the logit; its defaults, or
    on large inputs 2 images, one at a time, with :func:`cheap_options`)."""
    from nnsee.methods.sanity import randomization_check

    if len(inp.splits.test) == 0:
        return None
    n = 2 if large else n
    x = _test_inputs(inp, np.arange(min(n, len(inp.splits.test))))
    options = cheap_options(inp.shape) if large else None
    scores = randomization_check(inp.run.model, x, np.asarray(inp.splits.test.labels[:n]), options=options,
                                 per_image=large)
    return {"rows": [{"method": name, **values} for name, values in scores.items()], "n": len(x),
            "cheap": options}


TEMPLATE = """\
{% set c = sections.cnn %}
<h2 id="cnn">What the convolutions see (Zeiler &amp; Fergus)</h2>
{% if c.filters %}<h3>First-layer filters</h3>
<p>The {{ c.filters.count }} filters of the first convolution ({{ c.filters.shape|join('×') }} each), shared scale ±{{ c.filters.scale|num }}.
{% if c.filters.rgb %}Display: each filter's three input channels drawn as one colour image, 255·(½ + ½·w/s) per channel with
s = ±{{ c.filters.scale|num }} for all filters, so 0 is mid-grey and a filter that favours red looks red. Photos and crops are
shown as loaded (pixel values 0..1 times 255, not rescaled); the nine projections of a map share one symmetric scale.{% endif %}</p>
<img src="{{ c.filters.uri }}" alt="first-layer filters">{% endif %}
<h3>Top 9 images per feature map, stage by stage, and their deconvnet projections</h3>
<p>Stages: {{ c.stages|map(attribute='layer')|join(', ') }}{% if c.chosen %} (chosen with --layers){% else %} (the last
conv module of each resolution, taken with the block it ends; --layers NAMES picks others){% endif %}. For each feature
map, the nine training images (of {{ c.stages[0].n_images }}, in one streaming pass for every stage) whose strongest
activation in that map is highest, cut to the receptive field of that unit, and beside them the projection of that
single activation back to pixels by the deconvnet (every other activation of the layer set to zero; through eval
BatchNorm by its per-channel scale, and down both paths of each residual add, summed where they fork). Crops larger
than {{ c.tile_side }} px are averaged down for the page.</p>
{% for st in c.stages %}<h4>Top 9 images per feature map of <span class="math">{{ st.layer }}</span> ({{ st.shape }})</h4>
<p class="muted">Receptive field: {{ st.field }}.{% if st.channels > st.rows|length %} The first {{ st.rows|length }} of {{ st.channels }} maps are shown.{% endif %}{% if st.no_projection %} No deconvnet projections: {{ st.no_projection }}.{% endif %}</p>
<div class="flex">{% for r in st.rows %}<div class="tile" style="max-width:none">{{ st.layer }} map {{ r.channel }}<br>
<img src="{{ r.images }}" alt="top 9 images of map {{ r.channel }} of {{ st.layer }}">{% if r.projections %} <img src="{{ r.projections }}" alt="projections of map {{ r.channel }} of {{ st.layer }}">{% endif %}</div>{% endfor %}</div>
{% endfor %}
{% if c.grad_cam %}<h3>Grad-CAM at each stage</h3>
<p>Grad-CAM of the true class (Selvaraju et al. 2017: relu(Σ_k mean(∂logit/∂A_k) A_k) over the maps A_k of the stage),
over the test image: the photo darkened where the map is low, image·(0.25 + 0.75·cam/max cam), the map stretched
bilinearly over the image. Deeper stages are coarser (their map size is under each tile).</p>
<table><tr><th>image</th>{% for layer in c.grad_cam.stages %}<th class="math">{{ layer }}</th>{% endfor %}</tr>
{% for r in c.grad_cam.rows %}<tr><td class="name"><img src="{{ r.image }}" alt="test image {{ r.index }}"><br>{{ r.true }}</td>
{% for cell in r.cells %}<td><img src="{{ cell.uri }}" alt="grad-cam at {{ cell.layer }}"><br>{{ cell.shape }}{% if cell.flat %}, zero map{% endif %}</td>{% endfor %}</tr>{% endfor %}</table>{% endif %}
{% if c.occlusion %}<h3>Occlusion (a grey square of {{ c.occlusion.window }}×{{ c.occlusion.window }} pixels moved over each image in steps of {{ c.occlusion.stride }})</h3>
{% if c.occlusion.large %}<p class="muted">At this input size the square moves in steps of its half width (about 13 x 13
positions at 224 px, not 25 x 25), and {{ c.occlusion.rows|length }} test images are shown.</p>{% endif %}
<p>By occluder position: the probability of the true class (dark = the square hides what the network needs), the most
probable class (colours below), and the total activity of the feature map of <span class="math">{{ c.occlusion.layer }}</span>
that is strongest on the whole image.</p>
<table><tr><th>image</th><th>p(true class)</th><th>over the image (darker: lower p)</th><th>most probable class</th><th>strongest map's activity</th></tr>
{% for r in c.occlusion.rows %}<tr><td class="name"><img src="{{ r.image }}" alt="test image {{ r.index }}"><br>{{ r.true }}</td>
<td><img src="{{ r.prob_true }}" alt="p(true)"><br>min {{ r.p_min|num(2) }}</td><td><img src="{{ r.over_photo }}" alt="p(true) over the image"></td><td><img src="{{ r.most_probable }}" alt="most probable class"></td>
<td><img src="{{ r.activity }}" alt="activity"><br>map {{ r.channel }}</td></tr>{% endfor %}</table>
{% if c.palette_note %}<p class="muted">{{ c.palette_note }}</p>
{% endif %}<p>{% for p in c.palette %}<span style="display:inline-block;width:10px;height:10px;background:{{ p.rgb }}"></span> {{ p.name }} &nbsp;{% endfor %}</p>{% endif %}
{% if c.evolution %}<h3>Feature evolution during training</h3>
<p>For the first feature maps of <span class="math">{{ c.layer }}</span>, the deconvnet projection of the strongest activation over
{{ c.evolution.n_images }} training images at each snapshot epoch ({{ c.evolution.epochs|join(', ') }}).</p>
{% if c.evolution.note %}<p class="muted">{{ c.evolution.note }}</p>{% endif %}
{% for r in c.evolution.rows %}<div>map {{ r.channel }} <img src="{{ r.uri }}" alt="evolution of map {{ r.channel }}"></div>{% endfor %}{% endif %}
{% for line in c.missing %}<p class="muted">Not shown: {{ line }}</p>
{% endfor %}{% if c.sanity %}<h3>Sanity check: do the maps depend on what the model learned?</h3>
<p>Each method's maps for {{ c.sanity.n }} test images, from the trained model and from the same model with every weight
re-initialised (Adebayo et al. 2018). A high similarity means the map mostly shows the input, not the model.</p>
{% if c.sanity.cheap %}<p class="muted">For this input size and model, the check is made affordable without changing what
it compares: {{ c.sanity.n }} test images (not 4), each run on its own; integrated gradients with {{ c.sanity.cheap['integrated-gradients'].steps }}
path points (not 50), SmoothGrad with {{ c.sanity.cheap.smoothgrad.samples }} noisy copies (not 25), occlusion with
{{ c.sanity.cheap.occlusion.window }}-px windows side by side (stride {{ c.sanity.cheap.occlusion.stride }}, not half a window).
The trained and the randomized model get exactly the same settings.</p>{% endif %}
<table><tr><th class="name">method</th><th>Spearman of |maps|</th><th>Spearman (signed)</th><th>SSIM</th></tr>
{% for r in c.sanity.rows %}<tr><td class="name">{{ r.method }}</td><td>{{ r.spearman|num(2) }}</td><td>{{ r.spearman_signed|num(2) }}</td><td>{{ r.ssim|num(2) }}</td></tr>{% endfor %}</table>{% endif %}
"""  # noqa: E501
