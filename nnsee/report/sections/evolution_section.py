"""Evolution: the weight images at each snapshot epoch, as a strip and an animated GIF."""

from __future__ import annotations

import base64
from typing import Any

from nnsee.methods import templates_over_training
from nnsee.render import animated_gif, data_uri, grid, symmetric_scale, weight_tile
from nnsee.report.sections.common import ReportInput, snapshots_note, spread, upscale_for


def evolution_section(inp: ReportInput, n_units: int = 10) -> dict[str, Any] | None:
    run = inp.run
    if not run.snapshot_epochs:
        return None
    if not inp.caps.dense_chain:
        inp.notes.append(f"evolution: the weight images need a fully connected chain (its first layer's rows are "
                         f"images); this model is {inp.caps.describe()}")
        return None
    epochs = spread(run.snapshot_epochs)
    snapshots = {epoch: run.snapshot_state(epoch) for epoch in epochs}
    frames_by_epoch = templates_over_training(run.model, snapshots, run.input_shape, n_units=n_units)
    if not frames_by_epoch:
        return None
    scale = symmetric_scale(list(frames_by_epoch.values()))
    upscale = upscale_for(inp.shape, 56)
    strips, frames = [], []
    for epoch, weights in sorted(frames_by_epoch.items()):
        image = grid([weight_tile(w, scale, upscale) for w in weights], ncols=len(weights),
                     title=f"epoch {epoch}")
        frames.append(image)
        strips.append({"epoch": epoch, "uri": data_uri(image)})
    gif = animated_gif(frames, 700)
    return {"strips": strips, "gif": "data:image/gif;base64," + base64.b64encode(gif).decode("ascii"),
            "gif_bytes": gif, "scale": scale, "note": snapshots_note(epochs, len(run.snapshot_epochs))}


def evolution_gif(context: dict[str, Any]) -> dict[str, bytes]:
    """``evolution.gif`` beside the page: the weight images at each snapshot epoch, animated."""
    return {"evolution.gif": context.pop("gif_bytes")}


TEMPLATE = """\
{% set e = sections.evolution %}
<h2 id="evolution">Evolution during training</h2>
<p>The same weight images at each snapshot epoch (shared scale ±{{ e.scale|num }}).</p>
{% if e.note %}<p class="muted">{{ e.note }}</p>{% endif %}
<img src="{{ e.gif }}" alt="weights during training (animated)">
{% for s in e.strips %}<div><img src="{{ s.uri }}" alt="weights at epoch {{ s.epoch }}"></div>{% endfor %}
"""  # noqa: E501
