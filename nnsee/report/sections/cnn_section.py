"""The CNN section (Zeiler & Fergus): first-layer filters, top-9 images per feature map with their deconvnet
projections, occlusion maps for test images, feature evolution across snapshots, and the randomization check."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from torch import nn

from nnsee.render import data_uri, grid, image_tile, mosaic, symmetric_scale, weight_tile
from nnsee.report.sections.common import MAX_CLASSES, ReportInput, dropped_note, snapshots_note, spread, upscale_for

# Ten distinguishable colours (matplotlib's tab10), cycled, for "most probable class" maps.
PALETTE = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
                    [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]], np.uint8)


def conv_layers(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def cnn_section(inp: ReportInput, n_occlusion: int = 4, max_channels: int = 32) -> dict[str, Any] | None:
    model = inp.run.model
    convs = conv_layers(model)
    if not convs:
        return None
    occlusion = _occlusion(inp, convs[-1], n_occlusion)
    names = inp.class_names
    on_maps = sorted({k for r in (occlusion or {}).get("rows", []) for k in r.pop("classes")})
    # the legend lists every class, or when there are too many, the classes the maps show
    legend = list(range(len(names))) if len(names) <= MAX_CLASSES else on_maps[:MAX_CLASSES]
    return {
        "filters": _filters(model),
        "layer": convs[-1],
        "top9": _top9(inp, convs[-1], max_channels),
        "occlusion": occlusion,
        "evolution": _evolution(inp, convs[-1]),
        "sanity": _sanity(inp),
        "palette": [{"name": names[k], "rgb": "#" + bytes(PALETTE[k % len(PALETTE)]).hex()} for k in legend],
        "palette_note": dropped_note(f"the colours of the {len(legend)} classes these maps show", len(legend),
                                     len(names), f" (the colours repeat every {len(PALETTE)} classes)"),
    }


def _filters(model: nn.Module) -> dict[str, Any]:
    from nnsee.methods.attribution.filters import first_layer_filters

    w = first_layer_filters(model)
    scale = symmetric_scale(w)
    tiles = [weight_tile(f, scale, max(4, round(40 / w.shape[-1]))) for f in w]
    return {"uri": data_uri(grid(tiles, ncols=min(16, len(tiles)), pad=3)), "count": len(w), "scale": scale,
            "shape": list(w.shape[1:]), "rgb": w.shape[1] == 3}


def _top9(inp: ReportInput, layer: str, max_channels: int) -> dict[str, Any]:
    from nnsee.methods.dataset_views.projections import top9_projections
    from nnsee.methods.dataset_views.top_images import top_images_per_channel

    topk = top_images_per_channel(inp.run.model, inp.train_std, layer, k=9)
    channels = min(max_channels, len(topk.values))
    projections = top9_projections(inp.run.model, inp.train_std, topk, layer)
    rf = projections.rf
    raw_crops = _raw_crops(inp, topk, rf, channels)
    up = max(1, upscale_for(raw_crops.shape[-3:], 96) // 3)
    rows = []
    for c in range(channels):
        proj = projections.projection_crops[c]
        scale = symmetric_scale(proj)
        tiles = [weight_tile(p, scale, up) for p in proj]
        rows.append({"channel": c, "best": float(topk.values[c, 0]),
                     "images": data_uri(mosaic(raw_crops[c], ncols=3, upscale=up)),
                     "projections": data_uri(grid(tiles, ncols=3, pad=1))})
    return {"rows": rows, "n_images": topk.n_images, "rf": int(rf.size[0]) if hasattr(rf, "size") else None,
            "channels": len(topk.values)}


def _raw_crops(inp: ReportInput, topk: Any, rf: Any, channels: int) -> np.ndarray:
    """Receptive-field crops of the raw training images (what a person recognises), (channels, k, C, h, w)."""
    from nnsee.methods.dataset_views.receptive_field import crop

    images = inp.splits.train.images
    return np.stack([np.stack([crop(images[i], tuple(p), rf, fill=1.0)
                               for i, p in zip(topk.image_index[c], topk.position[c], strict=True)])
                     for c in range(channels)])


def _occlusion(inp: ReportInput, layer: str, n: int) -> dict[str, Any] | None:
    from nnsee.methods.attribution.occlusion_paper import occlusion_maps
    from nnsee.methods.attribution.registry import occlusion_window

    if len(inp.splits.test) == 0:
        return None
    index = np.linspace(0, len(inp.splits.test) - 1, num=min(n, len(inp.splits.test))).astype(int)
    window, _ = occlusion_window(inp.shape)
    stride = occlusion_map_stride(inp.shape)
    labels = inp.splits.test.labels[index]
    maps = occlusion_maps(inp.run.model, inp.test_std[index], labels, window=window, stride=stride, layer=layer)
    up = upscale_for(inp.shape, 96)
    side = max(1, round(96 / maps.prob_true.shape[-1]))
    rows = []
    for j, i in enumerate(index):
        activity = maps.strongest_map_activity[j]
        span = float(activity.max() - activity.min()) or 1.0
        colours = PALETTE[maps.most_probable[j] % len(PALETTE)].repeat(side, 0).repeat(side, 1)
        rows.append({
            "index": int(i), "true": inp.class_names[int(labels[j])],
            "image": data_uri(image_tile(np.clip(inp.splits.test.images[i], 0, 1), up)),
            "prob_true": data_uri(image_tile(maps.prob_true[j][None], side)),
            "over_photo": data_uri(image_tile(over_photo(inp.splits.test.images[i], maps.prob_true[j]), up)),
            "activity": data_uri(image_tile(((activity - activity.min()) / span)[None], side)),
            "most_probable": data_uri(Image.fromarray(np.ascontiguousarray(colours), "RGB")),
            "channel": int(maps.strongest_channel[j]),
            "p_min": float(maps.prob_true[j].min()),
            "classes": {int(k) for k in np.unique(maps.most_probable[j])},
        })
    return {"rows": rows, "window": window, "stride": stride, "layer": layer}


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
    subset = inp.splits.train.images[: min(len(inp.splits.train), 2000)]
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


def _sanity(inp: ReportInput, n: int = 4) -> dict[str, Any] | None:
    """The randomization check of every registered method that applies to the model (its defaults, the logit)."""
    from nnsee.methods.sanity import randomization_check

    if len(inp.splits.test) == 0:
        return None
    x = inp.test_std[:n]
    scores = randomization_check(inp.run.model, x, np.asarray(inp.splits.test.labels[:n]))
    return {"rows": [{"method": name, **values} for name, values in scores.items()], "n": len(x)}


TEMPLATE = """\
{% set c = sections.cnn %}
<h2 id="cnn">What the convolutions see (Zeiler &amp; Fergus)</h2>
<h3>First-layer filters</h3>
<p>The {{ c.filters.count }} filters of the first convolution ({{ c.filters.shape|join('×') }} each), shared scale ±{{ c.filters.scale|num }}.
{% if c.filters.rgb %}Display: each filter's three input channels drawn as one colour image, 255·(½ + ½·w/s) per channel with
s = ±{{ c.filters.scale|num }} for all filters, so 0 is mid-grey and a filter that favours red looks red. Photos and crops are
shown as loaded (pixel values 0..1 times 255, not rescaled); the nine projections of a map share one symmetric scale.{% endif %}</p>
<img src="{{ c.filters.uri }}" alt="first-layer filters">
<h3>Top 9 images per feature map of <span class="math">{{ c.layer }}</span>, and their deconvnet projections</h3>
<p>For each feature map, the nine training images (of {{ c.top9.n_images }}, in one streaming pass) whose strongest
activation in that map is highest, cut to the map's receptive field, and beside them the projection of that single
activation back to pixels by the deconvnet (every other activation of the layer set to zero).
{% if c.top9.channels > c.top9.rows|length %}The first {{ c.top9.rows|length }} of {{ c.top9.channels }} maps are shown.{% endif %}</p>
<div class="flex">{% for r in c.top9.rows %}<div class="tile" style="max-width:none">map {{ r.channel }}<br>
<img src="{{ r.images }}" alt="top 9 images of map {{ r.channel }}"> <img src="{{ r.projections }}" alt="projections of map {{ r.channel }}"></div>{% endfor %}</div>
{% if c.occlusion %}<h3>Occlusion (a grey square of {{ c.occlusion.window }}×{{ c.occlusion.window }} pixels moved over each image in steps of {{ c.occlusion.stride }})</h3>
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
{% if c.sanity %}<h3>Sanity check: do the maps depend on what the model learned?</h3>
<p>Each method's maps for {{ c.sanity.n }} test images, from the trained model and from the same model with every weight
re-initialised (Adebayo et al. 2018). A high similarity means the map mostly shows the input, not the model.</p>
<table><tr><th class="name">method</th><th>Spearman of |maps|</th><th>Spearman (signed)</th><th>SSIM</th></tr>
{% for r in c.sanity.rows %}<tr><td class="name">{{ r.method }}</td><td>{{ r.spearman|num(2) }}</td><td>{{ r.spearman_signed|num(2) }}</td><td>{{ r.ssim|num(2) }}</td></tr>{% endfor %}</table>{% endif %}
"""  # noqa: E501
