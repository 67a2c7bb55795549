"""Evolution: the weight images at each snapshot epoch, as a strip and an animated GIF.

The weight images are :func:`nnsee.methods.weight_evolution.weight_images`: the class templates of a softmax model,
the incoming weights of an MLP's first hidden units, or the filters of a CNN's first convolution (a ResNet's or a
VGG's included: grey or colour, drawn as the CNN section draws them).
"""

from __future__ import annotations

import base64
from typing import Any

from torch import nn

from nnsee.methods import templates_over_training
from nnsee.render import animated_gif, data_uri, grid, symmetric_scale, weight_tile
from nnsee.report.sections.common import ReportInput, snapshots_note, spread, upscale_for


def evolution_section(inp: ReportInput, n_units: int = 10, n_filters: int = 16) -> dict[str, Any] | None:
    run, caps = inp.run, inp.caps
    if not run.snapshot_epochs:
        return None
    if not (caps.dense_chain or caps.conv_layers):
        inp.notes.append(f"evolution: the weight images need a fully connected chain (its first layer's rows are "
                         f"images) or a convolution (its first layer's filters); this model is {caps.describe()}")
        return None
    if caps.conv_layers and not caps.dense_chain:
        first = next(m for m in run.model.modules() if isinstance(m, nn.Conv2d))
        if first.in_channels != inp.shape[0]:
            inp.notes.append(f"evolution: the first convolution registered in the model, {caps.conv_layers[0]}, takes "
                             f"{first.in_channels} channels, not the image's {inp.shape[0]}, so its filters are not "
                             "images (it is not the input layer)")
            return None
    epochs = spread(run.snapshot_epochs)
    snapshots = {epoch: run.snapshot_state(epoch) for epoch in epochs}
    count = n_filters if caps.conv_layers else n_units
    frames_by_epoch = templates_over_training(run.model, snapshots, run.input_shape, n_units=count)
    if not frames_by_epoch:
        return None
    scale = symmetric_scale(list(frames_by_epoch.values()))
    first = next(iter(frames_by_epoch.values()))
    if caps.conv_layers:
        upscale = max(4, round(40 / first.shape[-1]))
        what = (f"The first {len(first)} filters of the first convolution, {caps.conv_layers[0]} "
                f"({'×'.join(map(str, first.shape[1:]))} each),")
    else:
        upscale = upscale_for(inp.shape, 56)
        what = "The same weight images"
    strips, frames = [], []
    for epoch, weights in sorted(frames_by_epoch.items()):
        image = grid([weight_tile(w, scale, upscale) for w in weights], ncols=len(weights),
                     title=f"epoch {epoch}")
        frames.append(image)
        strips.append({"epoch": epoch, "uri": data_uri(image)})
    gif = animated_gif(frames, 700)
    return {"strips": strips, "gif": "data:image/gif;base64," + base64.b64encode(gif).decode("ascii"),
            "gif_bytes": gif, "scale": scale, "what": what,
            "note": snapshots_note(epochs, len(run.snapshot_epochs))}


def evolution_gif(context: dict[str, Any]) -> dict[str, bytes]:
    """``evolution.gif`` beside the page: the weight images at each snapshot epoch, animated."""
    return {"evolution.gif": context.pop("gif_bytes")}


TEMPLATE = """\
{% set e = sections.evolution %}
<h2 id="evolution">Evolution during training</h2>
<p>{{ e.what }} at each snapshot epoch (shared scale ±{{ e.scale|num }}).</p>
{% if e.note %}<p class="muted">{{ e.note }}</p>{% endif %}
<img src="{{ e.gif }}" alt="weights during training (animated)">
{% for s in e.strips %}<div><img src="{{ s.uri }}" alt="weights at epoch {{ s.epoch }}"></div>{% endfor %}
"""  # noqa: E501
